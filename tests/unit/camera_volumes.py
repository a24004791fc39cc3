"""Hand-built bwc-msc/1 camera volumes for the dock tests: clean ones, and hostile edits."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dock.findings import Findings, decide_session, inspect_volume
from dock.profiles import Profile, builtin_profiles
from dock.report import Alert, Decision, Flag
from dock.volume import Candidate, VolumeScan, open_root, scan_volume

PROFILE = builtin_profiles()["bwc-msc/1"]
SERIAL = "BWC-0002"
REC_DIR = "DCIM/100BWC"


def limits(**changes: Any) -> Profile:
    """The reference profile with some limits changed."""
    return replace(PROFILE, limits=replace(PROFILE.limits, **changes))


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_bytes(payload: bytes = b"\x00\x00\x00\x10frame-data-here!") -> bytes:
    """A minimal but well-formed top-level ISO-BMFF layout: ftyp, moov, mdat."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    moov = box(b"moov", box(b"mvhd", bytes(100)))
    return ftyp + moov + box(b"mdat", payload)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rec_name(number: int) -> str:
    return f"BWC{number:05d}.MP4"


@dataclass
class Inspection:
    scan: VolumeScan
    findings: Findings
    decision: Decision
    alerts: set[Alert]

    def flags(self, path: str | bytes) -> set[Flag]:
        raw = path.encode() if isinstance(path, str) else path
        return self.findings.flags_for(raw)

    def candidate(self, path: str | bytes) -> Candidate:
        raw = path.encode() if isinstance(path, str) else path
        (found,) = [c for c in self.scan.candidates if c.path_raw == raw]
        return found

    @property
    def candidate_paths(self) -> set[bytes]:
        return {c.path_raw for c in self.scan.candidates}

    @property
    def skipped(self) -> dict[bytes, Any]:
        return {e.path_raw: e.reason for e in self.scan.skipped}


class CameraVolume:
    """A camera volume under root, written the way the reference firmware writes it.

    `now` is the dock's clock at docking; files are dated an hour earlier so the
    stability window (measured against ctime too) never applies unless a test wants it."""

    def __init__(self, root: Path, *, now: datetime | None = None) -> None:
        self.root = root
        self.now = now or datetime.now(UTC) + timedelta(seconds=30)
        self.events: list[dict[str, Any]] = []
        root.mkdir(parents=True)
        (root / REC_DIR).mkdir(parents=True)
        (root / "LOGS").mkdir()
        device = {"schema": "bwc-device/1", "serial": SERIAL, "model": "EC-1"}
        self.write("DEVICE.JSON", json.dumps(device).encode())
        self.event("POWER_ON", at=self.now - timedelta(hours=2))

    def path(self, rel: str | bytes) -> bytes:
        raw = rel.encode() if isinstance(rel, str) else rel
        return os.fsencode(self.root) + b"/" + raw

    def write(self, rel: str | bytes, data: bytes, *, mtime: datetime | None = None) -> bytes:
        path = self.path(rel)
        with open(path, "wb") as out:
            out.write(data)
        stamp = (mtime or self.now - timedelta(hours=1)).timestamp()
        os.utime(path, (stamp, stamp))
        return path

    def event(self, name: str, *, at: datetime | None = None, **fields: Any) -> None:
        moment = at or self.now - timedelta(minutes=30)
        self.events.append({"seq": len(self.events) + 1, "t": rfc3339(moment), "event": name})
        self.events[-1].update(fields)

    def sidecar_fields(self, name: str, data: bytes) -> dict[str, Any]:
        start = self.now - timedelta(hours=1)
        return {
            "schema": "bwc-sidecar/1",
            "file": name,
            "camera_serial": SERIAL,
            "officer_badge": "SRO-0001",
            "start_utc": rfc3339(start),
            "end_utc": rfc3339(start + timedelta(seconds=60)),
            "duration_ms": 60_000,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "activation": {"trigger": "manual", "pre_event_seconds": 30},
        }

    def recording(
        self,
        number: int = 1,
        *,
        data: bytes | None = None,
        sidecar: bool = True,
        logged: bool = True,
        **sidecar_changes: Any,
    ) -> str:
        """Write DCIM/100BWC/BWC0000n.MP4, its sidecar and its log events; the MP4's rel path."""
        name = rec_name(number)
        data = mp4_bytes(bytes([number]) * 32) if data is None else data
        self.write(f"{REC_DIR}/{name}", data)
        if sidecar:
            fields = self.sidecar_fields(name, data) | sidecar_changes
            self.write(f"{REC_DIR}/{name[:-4]}.JSON", json.dumps(fields).encode())
        if logged:
            self.event("RECORD_START", file=name, trigger="manual")
            self.event("RECORD_STOP", file=name, reason="incident_ended")
        return f"{REC_DIR}/{name}"

    def write_log(self, *, extra: bytes = b"", docked: bool = True) -> None:
        if docked:
            self.event("DOCKED", at=self.now)
        lines = b"".join(json.dumps(e).encode() + b"\n" for e in self.events)
        self.write("LOGS/EVENTS.LOG", lines + extra)

    def inspect(self, profile: Profile = PROFILE, *, now: datetime | None = None) -> Inspection:
        fd = open_root(self.root)
        try:
            scan = scan_volume(fd, profile, now=now or self.now)
            findings = inspect_volume(fd, scan, profile, usb_serial=SERIAL, dock_now=self.now)
        finally:
            os.close(fd)
        decision, alerts = decide_session(scan, findings)
        return Inspection(scan, findings, decision, alerts)


def clean_volume(root: Path, recordings: int = 2) -> CameraVolume:
    volume = CameraVolume(root)
    for number in range(1, recordings + 1):
        volume.recording(number)
    volume.write_log()
    return volume
