"""The session report vocabulary (DESIGN.md §6) and the report of one docking.

Every word here is contract: the service, the oversight dashboard and acceptance checks
read these reports. Values are closed enums so a typo cannot invent a new outcome."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Decision(StrEnum):
    ACCEPT = "accept"  # offload; wipe allowed per rule 7
    ACCEPT_NO_DELETE = "accept_no_delete"  # offload what is safe, wipe nothing, alert
    REFUSE = "refuse"  # read nothing, wipe nothing


class RefusalReason(StrEnum):
    USB_ID_NOT_ALLOWLISTED = "usb_id_not_allowlisted"
    UNEXPECTED_USB_INTERFACE = "unexpected_usb_interface"
    UNREGISTERED_SERIAL = "unregistered_serial"
    SERIAL_MISMATCH = "serial_mismatch"


class Outcome(StrEnum):
    INGESTED = "ingested"
    DUPLICATE = "duplicate"  # already held, same hash
    SKIPPED = "skipped"
    NOT_READ = "not_read"


class SkipReason(StrEnum):
    SYMLINK = "symlink"
    MULTIPLE_LINKS = "multiple_links"
    NOT_REGULAR_FILE = "not_regular_file"
    EXCEEDS_SIZE_LIMIT = "exceeds_size_limit"
    TOO_DEEP = "too_deep"
    FILE_UNSTABLE = "file_unstable"


class Flag(StrEnum):
    EMPTY_FILE = "empty_file"
    MALFORMED_CONTAINER = "malformed_container"
    MISSING_SIDECAR = "missing_sidecar"
    SIDECAR_UNPARSEABLE = "sidecar_unparseable"
    SIDECAR_HASH_MISMATCH = "sidecar_hash_mismatch"
    SIDECAR_SIZE_MISMATCH = "sidecar_size_mismatch"
    SIDECAR_SERIAL_MISMATCH = "sidecar_serial_mismatch"
    SIDECAR_PATH_REFERENCE_REJECTED = "sidecar_path_reference_rejected"
    ORPHAN_SIDECAR = "orphan_sidecar"
    CLOCK_SKEW = "clock_skew"
    TIME_INCONSISTENT = "time_inconsistent"
    NONSTANDARD_FILENAME = "nonstandard_filename"
    FS_IMPOSSIBLE_NAME = "fs_impossible_name"
    UNEXPECTED_LOCATION = "unexpected_location"
    FOREIGN_OS_ARTIFACT = "foreign_os_artifact"
    UNRECOGNIZED_FILE = "unrecognized_file"
    EVENT_LOG_UNPARSEABLE_LINES = "event_log_unparseable_lines"
    DEVICE_METADATA_UNPARSEABLE = "device_metadata_unparseable"


class Alert(StrEnum):
    DEVICE_REFUSED = "device_refused"
    VOLUME_INTEGRITY_SUSPECT = "volume_integrity_suspect"
    POSSIBLE_TAMPER = "possible_tamper"
    CUSTODY_ANOMALY = "custody_anomaly"
    MISSING_RECORDING = "missing_recording"
    CLOCK_SKEW = "clock_skew"
    FILE_TOO_LARGE = "file_too_large"
    SOURCE_CHANGED_AFTER_COPY = "source_changed_after_copy"
    UNEXPECTED_CONTENT = "unexpected_content"


def display_path(raw: bytes) -> str:
    """A printable form of raw name bytes (escapes, never interpretation)."""
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


@dataclass
class Entry:
    """One directory entry of the camera volume and what became of it."""

    path_raw: bytes  # relative to the volume root, as the filesystem gave it
    outcome: Outcome
    reason: SkipReason | None = None
    flags: set[Flag] = field(default_factory=set)
    size: int | None = None
    sha256: str | None = None
    evidence_id: str | None = None
    leaf_index: int | None = None
    wiped: bool = False

    @property
    def path(self) -> str:
        return display_path(self.path_raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "path_b64": base64.b64encode(self.path_raw).decode("ascii"),
            "outcome": self.outcome.value,
            "reason": self.reason.value if self.reason else None,
            "flags": sorted(f.value for f in self.flags),
            "size": self.size,
            "sha256": self.sha256,
            "evidence_id": self.evidence_id,
            "leaf_index": self.leaf_index,
            "wiped": self.wiped,
        }


@dataclass
class SessionReport:
    """The report of one docking session, written as JSON (one file per session)."""

    session_id: str
    started_at: str  # service-clock-independent: the dock's own UTC time, RFC 3339
    device: dict[str, Any]  # vid, pid, serial, manufacturer, product, interfaces, profile
    decision: Decision
    refusal_reasons: list[RefusalReason] = field(default_factory=list)
    alerts: set[Alert] = field(default_factory=set)
    entries: list[Entry] = field(default_factory=list)
    clock_offset_ms: int | None = None
    finished_at: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "bwc-session-report/1",
            "session_id": self.session_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "device": self.device,
            "decision": self.decision.value,
            "refusal_reasons": [r.value for r in self.refusal_reasons],
            "alerts": sorted(a.value for a in self.alerts),
            "clock_offset_ms": self.clock_offset_ms,
            "entries": [e.to_json() for e in self.entries],
            "errors": list(self.errors),
        }

    def write(self, directory: Path) -> Path:
        """Write atomically as <dir>/<session id>.json (temp file, fsync, rename)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = directory / f"{self.session_id}.json"
        temp = directory / f".{self.session_id}.json.tmp"
        data = json.dumps(self.to_json(), indent=2, sort_keys=True).encode("utf-8")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final
