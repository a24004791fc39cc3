"""`bwc-dock simulate`: write a simulated camera volume from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `simulate` on an argparse subparsers object; its handler is set as the
    `handler` default and raises SimulateError (exit 2) for a non-empty --out."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="write a realistic bwc-msc/1 camera volume",
        description="Write a simulated bwc-msc/1 camera volume: DEVICE.JSON, H.264 or HEVC "
        "(AAC audio) recordings with sidecars, and an event log, all in the camera's clock.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory to create (must be absent or empty)",
    )
    parser.add_argument("--serial", default="BWC-0002", help="camera serial (default BWC-0002)")
    parser.add_argument("--badge", default="SRO-0001", help="wearer badge (default SRO-0001)")
    parser.add_argument("--clips", type=_positive_int, default=3, help="recordings (default 3)")
    parser.add_argument(
        "--seconds", type=_positive_float, default=6.0, help="length of each recording (default 6)"
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="camera clock minus true time (default 0)",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="scene seed")
    parser.add_argument(
        "--codec",
        choices=("h264", "hevc"),
        default="h264",
        help="video codec (default h264; hevc, as many newer cameras record, needs a "
        "playback proxy in browsers)",
    )
    parser.set_defaults(handler=run_simulate)
    return parser


def run_simulate(args: argparse.Namespace) -> int:
    """Write the volume and print a one-line summary; SimulateError propagates."""
    # Imported here: PyAV, numpy and scikit-image cost a docking agent ~1 s and ~60 MiB.
    from dock.simulate import simulate_volume

    volume = simulate_volume(
        args.out,
        serial=args.serial,
        badge=args.badge,
        clips=args.clips,
        seconds=args.seconds,
        clock_offset_seconds=args.clock_offset,
        seed=args.seed,
        codec=args.codec,
    )
    total_bytes = sum(clip.size for clip in volume.clips)
    total_ms = sum(clip.duration_ms for clip in volume.clips)
    print(
        f"simulated camera {volume.serial} (badge {volume.badge}) at {volume.root}: "
        f"{len(volume.clips)} clips, {total_ms / 1000:.1f} s, {total_bytes} bytes, "
        f"camera clock offset {volume.clock_offset_seconds:+.3f} s"
    )
    return 0
