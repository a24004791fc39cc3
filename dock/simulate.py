"""Write a realistic `bwc-msc/1` camera volume (DESIGN.md §6) for demos and tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dock._simulate_events import plan_shift
from dock._simulate_media import CODECS, ClipSpec, write_clip

RECORDING_DIR = "DCIM/100BWC"
EVENT_LOG = "LOGS/EVENTS.LOG"
PRE_EVENT_SECONDS = 30


class SimulateError(Exception):
    """The simulator was asked for something it cannot write (the CLI exits 2)."""


@dataclass(frozen=True)
class SimulatedClip:
    """One recording as written; start and end are the camera's clock, not true time."""

    path: Path
    sidecar: Path
    sha256: str
    size: int
    start: datetime
    end: datetime
    duration_ms: int
    trigger: str


@dataclass(frozen=True)
class SimulatedVolume:
    """What simulate_volume wrote under root."""

    root: Path
    device_json: Path
    event_log: Path
    clips: tuple[SimulatedClip, ...]
    serial: str
    badge: str
    clock_offset_seconds: float
    docked_at: datetime  # camera time of the DOCKED event, the camera's "now"

    @property
    def clip_paths(self) -> tuple[Path, ...]:
        return tuple(clip.path for clip in self.clips)


def rfc3339(moment: datetime) -> str:
    """UTC with millisecond precision and a Z, as the camera firmware writes it."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SimulateError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise SimulateError(f"--out {out} is not empty; refusing to write a volume into it")


def _check_shape(
    *, clips: int, seconds: float, width: int, height: int, fps: int, seed: int
) -> None:
    if not 1 <= clips <= 99_999:
        raise SimulateError("clips must be between 1 and 99999 (five-digit file names)")
    if not 0 < seconds <= 3600:
        raise SimulateError("seconds must be more than 0 and at most 3600")
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise SimulateError("width and height must be even and at least 64 (yuv420p)")
    if not 1 <= fps <= 120:
        raise SimulateError("fps must be between 1 and 120")
    if seed < 0:
        raise SimulateError("seed must not be negative")


def simulate_volume(
    out: Path,
    *,
    serial: str = "BWC-0002",
    badge: str = "SRO-0001",
    clips: int = 3,
    seconds: float = 6.0,
    clock_offset_seconds: float = 0.0,
    start: datetime | None = None,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seed: int = 0,
    model: str = "EC-1",
    vendor: str = "ExampleCam",
    firmware: str = "1.4.2",
    codec: str = "h264",
) -> SimulatedVolume:
    """Write a camera volume into out (created; must be absent or empty).

    start is the true UTC time the first recording began; by default it is chosen so
    the DOCKED event falls at the true time now. Every time on the volume (sidecars,
    event log, burnt-in clock, MP4 creation_time) is the camera's clock: true time plus
    clock_offset_seconds. The same arguments, start included, give identical bytes."""
    _check_out(out)
    _check_shape(clips=clips, seconds=seconds, width=width, height=height, fps=fps, seed=seed)
    if codec not in CODECS:
        raise SimulateError(f"codec must be one of {', '.join(CODECS)}")
    if start is not None and start.tzinfo is None:
        raise SimulateError("start must be timezone-aware")
    frames = max(1, round(seconds * fps))
    duration_ms = round(frames * 1000 / fps)
    plan = plan_shift(clips=clips, duration_ms=duration_ms, seed=seed)
    if start is None:
        start = datetime.now(UTC) - timedelta(milliseconds=plan.docked_ms)
    offset = timedelta(milliseconds=round(clock_offset_seconds * 1000))
    camera_zero = start.astimezone(UTC) + offset
    camera_zero -= timedelta(microseconds=camera_zero.microsecond % 1000)  # firmware keeps ms

    def camera(ms: int) -> datetime:
        return camera_zero + timedelta(milliseconds=ms)

    recordings = out / RECORDING_DIR
    recordings.mkdir(parents=True)
    (out / EVENT_LOG).parent.mkdir()
    device = {
        "schema": "bwc-device/1",
        "serial": serial,
        "model": model,
        "vendor": vendor,
        "firmware": firmware,
        "recording_dirs": [RECORDING_DIR],
        "officer_badge": badge,
    }
    _write_json(out / "DEVICE.JSON", device)

    written: list[SimulatedClip] = []
    for index, planned in enumerate(plan.clips):
        path = recordings / planned.name
        mute = None
        if planned.mute_ms is not None:
            mute = (planned.mute_ms[0] / 1000, planned.mute_ms[1] / 1000)
        clip_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        began, ended = camera(planned.start_ms), camera(planned.start_ms + duration_ms)
        write_clip(path, ClipSpec(width, height, fps, frames, began, clip_seed, mute, codec))
        with path.open("rb") as media:
            sha256 = hashlib.file_digest(media, "sha256").hexdigest()
        size = path.stat().st_size
        sidecar = path.with_suffix(".JSON")
        _write_json(
            sidecar,
            {
                "schema": "bwc-sidecar/1",
                "file": planned.name,
                "camera_serial": serial,
                "officer_badge": badge,
                "start_utc": rfc3339(began),
                "end_utc": rfc3339(ended),
                "duration_ms": duration_ms,
                "size": size,
                "sha256": sha256,
                "activation": {"trigger": planned.trigger, "pre_event_seconds": PRE_EVENT_SECONDS},
            },
        )
        written.append(
            SimulatedClip(path, sidecar, sha256, size, began, ended, duration_ms, planned.trigger)
        )

    lines = [
        json.dumps({"seq": seq, "t": rfc3339(camera(ms)), **fields}, separators=(",", ":"))
        for seq, (ms, fields) in enumerate(plan.events, start=1)
    ]
    (out / EVENT_LOG).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return SimulatedVolume(
        root=out,
        device_json=out / "DEVICE.JSON",
        event_log=out / EVENT_LOG,
        clips=tuple(written),
        serial=serial,
        badge=badge,
        clock_offset_seconds=clock_offset_seconds,
        docked_at=camera(plan.docked_ms),
    )
