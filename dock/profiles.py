"""Device profiles: data files describing a camera model's USB identity, volume layout
and limits (DESIGN.md §6). Profiles are data, never code: adding a model adds a file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

PROFILE_SCHEMA = "bwc-device-profile/1"


class ProfileError(Exception):
    """A profile file is missing, malformed or names an unknown profile."""


@dataclass(frozen=True)
class Limits:
    max_file_size: int
    max_depth: int
    max_entries: int
    max_metadata_bytes: int
    max_event_log_bytes: int
    max_event_line_bytes: int
    clock_skew_tolerance_seconds: int
    stability_window_seconds: float


@dataclass(frozen=True)
class Profile:
    id: str
    vid: int
    pid: int
    interfaces: tuple[str, ...]  # the exact set a genuine device presents
    filesystems: tuple[str, ...]
    device_metadata: str  # relative path of DEVICE.JSON
    device_metadata_schema: str
    recording_dirs: tuple[str, ...]
    recording_name: re.Pattern[str]
    sidecar_name: re.Pattern[str]
    sidecar_schema: str
    event_log: str
    never_wipe: tuple[str, ...]
    limits: Limits
    media_type: str


def _hex(value: object, what: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{4}", value):
        raise ProfileError(f"{what} must be a 4-digit hex string like 0xb0d1")
    return int(value, 16)


def parse_profile(raw: dict[str, Any]) -> Profile:
    try:
        if raw["schema"] != PROFILE_SCHEMA:
            raise ProfileError(f"profile schema must be {PROFILE_SCHEMA}")
        usb, volume, limits = raw["usb"], raw["volume"], raw["limits"]
        return Profile(
            id=str(raw["id"]),
            vid=_hex(usb["vid"], "usb.vid"),
            pid=_hex(usb["pid"], "usb.pid"),
            interfaces=tuple(str(i) for i in usb["interfaces"]),
            filesystems=tuple(str(f) for f in volume["filesystems"]),
            device_metadata=str(volume["device_metadata"]),
            device_metadata_schema=str(volume["device_metadata_schema"]),
            recording_dirs=tuple(str(d) for d in volume["recording_dirs"]),
            recording_name=re.compile(volume["recording_name"]),
            sidecar_name=re.compile(volume["sidecar_name"]),
            sidecar_schema=str(volume["sidecar_schema"]),
            event_log=str(volume["event_log"]),
            never_wipe=tuple(str(p) for p in volume["never_wipe"]),
            limits=Limits(
                max_file_size=int(limits["max_file_size"]),
                max_depth=int(limits["max_depth"]),
                max_entries=int(limits["max_entries"]),
                max_metadata_bytes=int(limits["max_metadata_bytes"]),
                max_event_log_bytes=int(limits["max_event_log_bytes"]),
                max_event_line_bytes=int(limits["max_event_line_bytes"]),
                clock_skew_tolerance_seconds=int(limits["clock_skew_tolerance_seconds"]),
                stability_window_seconds=float(limits["stability_window_seconds"]),
            ),
            media_type=str(raw.get("media_type", "application/octet-stream")),
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ProfileError(f"malformed device profile: {exc!r}") from None


def load_profile(path: Path) -> Profile:
    try:
        return parse_profile(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"cannot read device profile {path}: {exc}") from None


def builtin_profiles() -> dict[str, Profile]:
    """The profiles shipped with the agent (dock/profile_data/*.json), by id."""
    found: dict[str, Profile] = {}
    for item in resources.files("dock.profile_data").iterdir():
        if item.name.endswith(".json"):
            profile = parse_profile(json.loads(item.read_text(encoding="utf-8")))
            found[profile.id] = profile
    return found


def profile_for_usb(profiles: dict[str, Profile], vid: int, pid: int) -> Profile | None:
    """The profile whose USB identity is vid:pid (the allowlist), or None."""
    for profile in profiles.values():
        if (profile.vid, profile.pid) == (vid, pid):
            return profile
    return None
