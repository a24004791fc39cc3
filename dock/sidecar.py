"""Recording sidecars (BWC00001.JSON): strict parsing and the checks against the recording."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dock.camera_data import (
    CameraDataError,
    bounded_str,
    loads_strict,
    parse_rfc3339,
    plausible,
    strict_int,
)
from dock.names import matches, plain_name
from dock.report import Flag

# A sidecar is the camera's claim about its recording: serial, times, size, hash. It is
# data to compare, never instructions: its "file" field is checked to name the recording
# beside it and is never opened (DESIGN.md §6 rule 2).
DURATION_SLACK_MS = 2000
MAX_FIELD = 256
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class SidecarUnparseable(ValueError):
    """The sidecar is not a strict bwc-sidecar/1 object with the required fields."""


@dataclass(frozen=True)
class Sidecar:
    """The parsed claims of one sidecar. Times are the camera's clock."""

    file: str  # as written: compared with the recording's name, never opened
    camera_serial: str
    start: datetime
    end: datetime
    duration_ms: int
    size: int
    sha256: str  # lowercase hex
    officer_badge: str | None = None
    trigger: str | None = None
    pre_event_seconds: int | None = None


def parse_sidecar(data: bytes, *, schema: str, limit: int) -> Sidecar:
    """Parse a sidecar of at most limit bytes, or raise SidecarUnparseable.

    Refuses duplicate keys (two "sha256" members could satisfy two different readers),
    other schemas, and required fields that are missing or of the wrong type."""
    try:
        obj = loads_strict(data, limit)
        if not isinstance(obj, dict) or obj.get("schema") != schema:
            raise SidecarUnparseable("not a sidecar of the profile's schema")
        return _build(obj)
    except CameraDataError as exc:
        raise SidecarUnparseable(str(exc)) from None


def _build(obj: dict[str, Any]) -> Sidecar:
    file, serial = obj.get("file"), bounded_str(obj.get("camera_serial"), MAX_FIELD)
    duration, size = strict_int(obj.get("duration_ms")), strict_int(obj.get("size"))
    digest = obj.get("sha256")
    if not isinstance(file, str) or len(file) > 4 * MAX_FIELD or serial is None:
        raise SidecarUnparseable("file or camera_serial missing")
    if duration is None or size is None or size < 0:
        raise SidecarUnparseable("duration_ms or size missing")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
        raise SidecarUnparseable("sha256 is not 64 hex digits")
    activation = obj.get("activation")
    activation = activation if isinstance(activation, dict) else {}
    return Sidecar(
        file=file,
        camera_serial=serial,
        start=parse_rfc3339(obj.get("start_utc")),
        end=parse_rfc3339(obj.get("end_utc")),
        duration_ms=duration,
        size=size,
        sha256=digest.lower(),
        officer_badge=bounded_str(obj.get("officer_badge"), MAX_FIELD),
        trigger=bounded_str(activation.get("trigger"), MAX_FIELD),
        pre_event_seconds=strict_int(activation.get("pre_event_seconds")),
    )


def check_reference(
    sidecar: Sidecar, *, recording: bytes | None, sidecar_name: bytes, pattern: re.Pattern[str]
) -> set[Flag]:
    """{sidecar_path_reference_rejected} unless "file" is the plain name of the recording
    beside the sidecar: the recording's exact name when one is on the volume, otherwise a
    name of the profile's recording pattern with the sidecar's own stem.

    "../../etc/passwd", "/etc/passwd", "C:\\x", names with NUL or controls, and another
    recording's name are all rejected the same way; none is ever opened."""
    file = sidecar.file
    if not plain_name(file) or not matches(pattern, file):
        return {Flag.SIDECAR_PATH_REFERENCE_REJECTED}
    if recording is not None:
        same = file.encode("utf-8") == recording
    else:
        own_stem = sidecar_name.rpartition(b".")[0]
        same = file.encode("utf-8").rpartition(b".")[0] == own_stem
    return set() if same else {Flag.SIDECAR_PATH_REFERENCE_REJECTED}


def check_serial(sidecar: Sidecar, usb_serial: str) -> set[Flag]:
    """{sidecar_serial_mismatch} when the sidecar claims another camera than the USB one."""
    return set() if sidecar.camera_serial == usb_serial else {Flag.SIDECAR_SERIAL_MISMATCH}


def check_times(
    sidecar: Sidecar,
    *,
    dock_now: datetime,
    camera_docked_at: datetime | None,
    tolerance: timedelta,
    clock_skewed: bool = False,
) -> set[Flag]:
    """time_inconsistent when the sidecar contradicts itself (end before start, duration
    off from end − start by over DURATION_SLACK_MS, dates before 2000 or from 2100);
    clock_skew when its times lie beyond what the dock or the camera's own DOCKED event
    say is now (plus tolerance), or when the session's measured offset is over tolerance.

    Camera times stay data (rule 8): these flags inform, they never correct."""
    flags: set[Flag] = set()
    start, end = sidecar.start, sidecar.end
    if not (plausible(start) and plausible(end)) or end < start or sidecar.duration_ms < 0:
        flags.add(Flag.TIME_INCONSISTENT)
    else:
        span_ms = (end - start) / timedelta(milliseconds=1)
        if abs(span_ms - sidecar.duration_ms) > DURATION_SLACK_MS:
            flags.add(Flag.TIME_INCONSISTENT)
    latest = max(start, end)
    if clock_skewed or latest > dock_now + tolerance:
        flags.add(Flag.CLOCK_SKEW)
    if camera_docked_at is not None and latest > camera_docked_at + tolerance:
        flags.add(Flag.CLOCK_SKEW)
    return flags


def check_sidecar_against(sidecar: Sidecar, sha256: str | None, size: int | None) -> set[Flag]:
    """Compare the sidecar's claims with what the dock measured while hashing.

    Either measurement may be None when not yet known (size is known from the scan,
    the digest only after the copy)."""
    flags: set[Flag] = set()
    if sha256 is not None and sha256.lower() != sidecar.sha256:
        flags.add(Flag.SIDECAR_HASH_MISMATCH)
    if size is not None and size != sidecar.size:
        flags.add(Flag.SIDECAR_SIZE_MISMATCH)
    return flags
