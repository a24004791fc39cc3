"""The dock benchmark's offload measurements: `Spool.seal` of the scanned recording, as a
session calls it (its fsyncs timed apart), and the same read pass with no spool disk."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import CpuMeter
from _dock_volume import (
    BigVolume,
    drop_cache,
    resident_fraction,
    storage_read_bytes,
    wait_stable,
)

from dock.profiles import builtin_profiles
from dock.spool import Spool
from dock.volume import open_root, scan_volume
from evidence.crypto import keywrap
from evidence.upload_metadata import seal_for_ingest

PROFILE = builtin_profiles()["bwc-msc/1"]


def other_cores(busy: float, own_cpu: float, seconds: float) -> float:
    """Cores busy with anything but us (other processes, kernel threads) meanwhile."""
    return max(0.0, busy * (os.cpu_count() or 1) - own_cpu / seconds)


@contextmanager
def _fsyncs_timed() -> Iterator[list[float]]:
    """Time every os.fsync of this process meanwhile: Spool.seal's time, split."""
    real, spent = os.fsync, []

    def timed(fd: int) -> None:
        began = time.perf_counter()
        real(fd)
        spent.append(time.perf_counter() - began)

    os.fsync = timed
    try:
        yield spent
    finally:
        os.fsync = real


def seal_once(volume: BigVolume, spool_dir: Path, *, drop: bool) -> dict[str, Any]:
    """Time `Spool.seal` of the scanned recording, as a session calls it: one read pass
    that hashes (helper thread) and encrypts into a new spool file, fsynced with its
    folder. With drop, the recording's pages are dropped from the page cache first."""
    private, public = keywrap.new_ingest_keypair()
    del private  # nothing here decrypts; the wrap to the public half is the dock's cost
    wait_stable(volume.root, PROFILE.limits.stability_window_seconds)
    root_fd = open_root(volume.root)
    try:
        scan = scan_volume(root_fd, PROFILE, now=datetime.now(UTC))
        (candidate,) = [c for c in scan.candidates if c.path_raw.endswith(b".MP4")]
        if drop:
            drop_cache(volume.recording)
        resident = resident_fraction(volume.recording)
        spool = Spool(spool_dir, 64 * 1024**3)
        fetched, cpu, system = storage_read_bytes(), time.process_time(), os.times().system
        meter = CpuMeter()
        meter.start()
        began = time.perf_counter()
        with _fsyncs_timed() as fsyncs:
            spooled = spool.seal(
                root_fd,
                candidate,
                ingest_public_key=public,
                ingest_key_version="bench",
                camera_serial=volume.serial,
                file_identity=f"{candidate.path_raw.decode()}@{volume.start.isoformat()}",
                media_type="video/mp4",
                extra={},
            )
        seconds = time.perf_counter() - began
        busy = meter.busy()
        cpu, system = time.process_time() - cpu, os.times().system - system
        fetched = storage_read_bytes() - fetched
        spool.remove(spooled.name)
    finally:
        os.close(root_fd)
    os.sync()  # the next measurement must not meet this one's writeback
    if spooled.sha256 != volume.sha256:
        raise RuntimeError("the spool's digest differs from the recording's")
    return {
        "bytes": spooled.size,
        "ciphertext_bytes": spooled.ciphertext_size,
        "seconds": seconds,
        "MB_per_s": spooled.size / seconds / 1e6,
        "fsync_s": sum(fsyncs),
        "fsyncs": len(fsyncs),
        "cpu_s": cpu,
        "system_s": system,
        "resident_before": resident,
        "storage_read_bytes": fetched,
        "page_cache_dropped": drop,
        "other_load_cores": other_cores(busy, cpu, seconds),
    }


def seal_to_null(volume: BigVolume) -> dict[str, Any]:
    """The same read pass with no spool disk: `seal_for_ingest` (what Spool.seal runs)
    from the recording, its pages dropped, to /dev/null: the pass's own limit."""
    _, public = keywrap.new_ingest_keypair()
    drop_cache(volume.recording)
    fetched, cpu = storage_read_bytes(), time.process_time()
    meter = CpuMeter()
    meter.start()
    began = time.perf_counter()
    with open(volume.recording, "rb", buffering=0) as src, open(os.devnull, "wb") as dst:
        result, _ = seal_for_ingest(
            src,
            dst,
            ingest_public_key=public,
            ingest_key_version="bench",
            camera_serial=volume.serial,
            file_identity="BWC00001.MP4@bench",
            file_name=b"BWC00001.MP4",
            media_type="video/mp4",
        )
    seconds = time.perf_counter() - began
    busy, cpu = meter.busy(), time.process_time() - cpu
    if result.plaintext_sha256 != volume.sha256:
        raise RuntimeError("the sealed digest differs from the recording's")
    return {
        "bytes": result.plaintext_size,
        "seconds": seconds,
        "MB_per_s": result.plaintext_size / seconds / 1e6,
        "cpu_s": cpu,
        "storage_read_bytes": storage_read_bytes() - fetched,
        "other_load_cores": other_cores(busy, cpu, seconds),
    }
