"""Camera volumes for the dock benchmark: a large recording-like `bwc-msc/1` volume written
in one fast pass, its event log written just before docking, the simulated-USB file that
docks it, and the page cache of a file (dropped, and how much of it is resident).

The recording is incompressible footage (`GeneratedMedia`: a random 1 MiB block, each
MiB stamped with its index) behind real ftyp/moov/mdat box headers, so the dock's
container check passes; its sidecar carries the true SHA-256, size and times, computed
while it was written."""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _vault_tus import GeneratedMedia, mp4_head

from dock.simulate import EVENT_LOG, RECORDING_DIR, rfc3339

MiB = 1024 * 1024
WRITE_BYTES = 8 * MiB
BITRATE = 14_000_000  # bits/s of the pretend recording: sets its duration from its size
RECORDING = "BWC00001.MP4"
USB_IDS = {"vid": "0xb0d1", "pid": "0xca01"}  # the bwc-msc/1 profile's


@dataclass(frozen=True)
class BigVolume:
    """What write_volume wrote under root; times are the camera's clock (= true time)."""

    root: Path
    serial: str
    recording: Path
    sidecar: Path
    size: int
    sha256: str
    start: datetime
    end: datetime
    write_seconds: float


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_volume(root: Path, *, serial: str, size: int, badge: str = "SRO-0001") -> BigVolume:
    """DEVICE.JSON, DCIM/100BWC/BWC00001.MP4 of `size` bytes and its sidecar, the
    recording fsynced. The event log is written later, by write_event_log."""
    folder = root / RECORDING_DIR
    folder.mkdir(parents=True)
    (root / EVENT_LOG).parent.mkdir()
    _write_json(
        root / "DEVICE.JSON",
        {
            "schema": "bwc-device/1",
            "serial": serial,
            "model": "EC-1",
            "vendor": "ExampleCam",
            "firmware": "1.4.2",
            "recording_dirs": [RECORDING_DIR],
            "officer_badge": badge,
        },
    )
    duration_ms = round(size * 8 / BITRATE * 1000)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(milliseconds=duration_ms)
    path = folder / RECORDING
    head = mp4_head(size)
    media = GeneratedMedia(size - len(head), os.urandom(MiB))
    digest = hashlib.sha256(head)
    buffer = bytearray(WRITE_BYTES)
    began = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, head)
        while n := media.readinto(buffer):
            view = memoryview(buffer)[:n]
            digest.update(view)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - began
    sidecar = path.with_suffix(".JSON")
    _write_json(
        sidecar,
        {
            "schema": "bwc-sidecar/1",
            "file": RECORDING,
            "camera_serial": serial,
            "officer_badge": badge,
            "start_utc": rfc3339(start),
            "end_utc": rfc3339(end),
            "duration_ms": duration_ms,
            "size": size,
            "sha256": digest.hexdigest(),
            "activation": {"trigger": "manual", "pre_event_seconds": 30},
        },
    )
    return BigVolume(root, serial, path, sidecar, size, digest.hexdigest(), start, end, seconds)


def write_event_log(volume: BigVolume, docked_at: datetime) -> None:
    """LOGS/EVENTS.LOG: power on, the recording's start and stop, and DOCKED at
    docked_at (the moment the dock will look, so the measured clock offset is ~0)."""
    events = [
        (volume.start - timedelta(minutes=2), {"event": "POWER_ON"}),
        (volume.start, {"event": "RECORD_START", "file": RECORDING, "trigger": "manual"}),
        (volume.end, {"event": "RECORD_STOP", "file": RECORDING, "reason": "incident_ended"}),
        (docked_at, {"event": "DOCKED"}),
    ]
    lines = [
        json.dumps({"seq": seq, "t": rfc3339(when), **fields}, separators=(",", ":"))
        for seq, (when, fields) in enumerate(events, start=1)
    ]
    (volume.root / EVENT_LOG).write_text("\n".join(lines) + "\n", encoding="utf-8")


def wait_stable(root: Path, window: float) -> float:
    """Sleep until every file under root is older than the profile's stability window
    (mtime and ctime: the scan skips files changed within it); the seconds slept."""
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in root.rglob("*"))
    remaining = newest + window + 0.2 - time.time()
    if remaining > 0:
        time.sleep(remaining)
    return max(0.0, remaining)


def simulated_usb(path: Path, volume: Path, serial: str) -> Path:
    """The `--simulated-usb` file: one bwc-msc/1 camera whose volume is `volume`."""
    device = {
        **USB_IDS,
        "serial": serial,
        "manufacturer": "ExampleCam",
        "product": "EC-1",
        "interfaces": ["mass_storage"],
        "volume": os.path.relpath(volume, path.parent),
    }
    path.write_text(json.dumps({"devices": [device]}), encoding="utf-8")
    return path


# --- The page cache ------------------------------------------------------------------------


def drop_cache(path: Path) -> None:
    """Ask the kernel to drop the file's clean pages (posix_fadvise DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def resident_fraction(path: Path) -> float | None:
    """How much of the file is in the page cache now (mincore(2) on a mapping that is
    never touched, so measuring faults nothing in); None if the kernel would not say."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 1.0
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vector = ctypes.create_string_buffer(pages)
            if _libc.mincore(address, size, vector) != 0:
                return None
            return sum(b & 1 for b in vector.raw) / pages
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)


def raw_read(path: Path) -> dict[str, Any]:
    """One sequential read of the whole file in 1 MiB readinto calls, its pages dropped
    first: the volume's read limit. Reports how much was resident before and after the
    drop, and what the process actually fetched from storage (/proc/self/io)."""
    before = resident_fraction(path)
    drop_cache(path)
    dropped = resident_fraction(path)
    buffer = memoryview(bytearray(MiB))
    fetched = storage_read_bytes()
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            total += n
    seconds = time.perf_counter() - started
    return {
        "bytes": total,
        "seconds": seconds,
        "MB_per_s": total / seconds / 1e6,
        "resident_before_drop": before,
        "resident_after_drop": dropped,
        "storage_read_bytes": storage_read_bytes() - fetched,
    }


def storage_read_bytes(pid: int | str = "self") -> int:
    """read_bytes of /proc/<pid>/io: bytes this process caused to be fetched from storage."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise LookupError("no read_bytes")


def raw_write_fsync(folder: Path, pool: bytes, total: int) -> dict[str, Any]:
    """os.write of 1 MiB blocks into a new file, then one fsync (as the spool writes),
    timed apart: writing into the page cache, then the disk taking the dirty pages.
    (`_vault_raw.disk_write_fsync` gives only their sum.)"""
    path = folder / "raw-write.bin"
    view = memoryview(pool)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        system = os.times().system
        started = time.perf_counter()
        for at in range(0, total, MiB):
            block = view[at % len(pool) : at % len(pool) + MiB]
            while block:
                block = block[os.write(fd, block) :]
        written = time.perf_counter()
        os.fsync(fd)
        done = time.perf_counter()
        system = os.times().system - system
    finally:
        os.close(fd)
        path.unlink()
    return {
        "bytes": total,
        "seconds": done - started,
        "MB_per_s": total / (done - started) / 1e6,
        "write_s": written - started,
        "fsync_s": done - written,
        "system_s": system,
    }
