"""The encrypted spool: one read pass per camera file hashes and encrypts it to disk.

Only ciphertext ever reaches the dock's disk: the data key lives in this process's
memory until it is wrapped to the service's ingest key. A spool file is fsynced (and its
directory) before the journal records it, so a recorded spool file is a complete one;
files the journal does not know (a crash mid-write) are removed at start-up."""

from __future__ import annotations

import errno
import io
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dock._spool_writer import SpoolWriter
from dock.volume import Candidate, SourceChanged, open_for_read, still_same
from evidence.crypto import segments
from evidence.upload_metadata import seal_for_ingest

SUFFIX = ".bwce"
HEADROOM = 64 * 1024 * 1024  # never fill the dock's disk to the last byte


class SpoolFull(Exception):
    """The spool cannot take this file: the camera keeps it, untouched, until there is room."""


@dataclass(frozen=True)
class Spooled:
    name: str
    sha256: str
    size: int
    ciphertext_size: int
    metadata: dict[str, bytes]
    changed_after_copy: bool


class Spool:
    def __init__(self, directory: Path, limit_bytes: int) -> None:
        self.directory = directory
        self.limit = limit_bytes
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, name: str) -> Path:
        if "/" in name or not name.endswith(SUFFIX):
            raise ValueError("not a spool file name")
        return self.directory / name

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob(f"*{SUFFIX}"))

    def check_room(self, size: int) -> None:
        needed = segments.ciphertext_size(size) + HEADROOM
        free = shutil.disk_usage(self.directory).free
        if free < needed or self.used() + needed > self.limit:
            raise SpoolFull(
                f"the spool needs {needed >> 20} MiB more; {free >> 20} MiB free on the "
                f"dock's disk, limit {self.limit >> 20} MiB"
            )

    def seal(
        self,
        root_fd: int,
        candidate: Candidate,
        *,
        ingest_public_key: bytes,
        ingest_key_version: str,
        camera_serial: str,
        file_identity: str,
        media_type: str,
        extra: dict[str, str],
        fault: Callable[[str], None] = lambda point: None,
    ) -> Spooled:
        """Copy one camera file into the spool, encrypted, in one pass; SourceChanged if it
        is no longer the scanned file. SpoolFull when the disk or the limit would overflow."""
        self.check_room(candidate.size)
        name = f"{uuid.uuid4().hex}{SUFFIX}"
        target = self.path(name)
        source = open_for_read(root_fd, candidate)
        try:
            # The camera file is read once, front to back: let the kernel read ahead.
            os.posix_fadvise(source, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            writer = SpoolWriter(target)
            try:
                with open(source, "rb", buffering=0, closefd=False) as src:
                    result, meta = seal_for_ingest(
                        _Reading(src, fault),  # type: ignore[arg-type]
                        writer,  # type: ignore[arg-type]
                        ingest_public_key=ingest_public_key,
                        ingest_key_version=ingest_key_version,
                        camera_serial=camera_serial,
                        file_identity=file_identity,
                        file_name=candidate.path_raw.rsplit(b"/", 1)[-1],
                        media_type=media_type,
                        extra=extra,
                    )
                writer.finish()  # written and fsynced
            finally:
                writer.abort()
                writer.close()
            changed = not still_same(source, candidate) or result.plaintext_size != candidate.size
        except OSError as exc:
            target.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise SpoolFull("the dock's disk is full") from None
            raise
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        finally:
            os.close(source)
        if changed:
            target.unlink(missing_ok=True)
            raise SourceChanged("the camera file changed while it was copied")
        _fsync_dir(self.directory)
        return Spooled(
            name,
            result.plaintext_sha256,
            result.plaintext_size,
            result.ciphertext_size,
            meta,
            changed,
        )

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def remove_orphans(self, known: set[str]) -> int:
        """Delete spool files the journal never recorded (a crash mid-write)."""
        removed = 0
        for item in self.directory.glob(f"*{SUFFIX}"):
            if item.name not in known:
                item.unlink(missing_ok=True)
                removed += 1
        return removed


class _Reading(io.RawIOBase):
    """The camera file as read for sealing; tells `fault` once the read is under way."""

    def __init__(self, src: io.RawIOBase, fault: Callable[[str], None]) -> None:
        self._src = src
        self._fault = fault
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._read:
            self._fault("reading")
        n = self._src.readinto(buffer) or 0
        self._read += n
        return n


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
