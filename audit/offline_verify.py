"""`bwc-verify`: the standalone offline verifier of export bundles.

It must depend only on the standard library and `cryptography`, so that a court or an
auditor can run it without trusting the rest of this project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bwc-verify",
        description="Verify an export bundle offline (checkpoint signature, inclusion "
        "proofs, custody-chain completeness). Bundle verification is not part of this "
        "release yet.",
    )
    parser.add_argument("bundle", help="path to a BagIt export bundle")
    parser.parse_args(argv)
    print("bwc-verify: error: bundle verification is not part of this release yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
