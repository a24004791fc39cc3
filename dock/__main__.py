"""`bwc-dock`: the docking-station agent's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc-dock",
        description="BWC Evidence docking-station agent. The offload, upload and wipe "
        "commands arrive with the dock agent; this release has none yet.",
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        print("bwc-dock: error: the dock agent is not part of this release yet", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
