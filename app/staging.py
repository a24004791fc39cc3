"""Staged tus uploads: one ciphertext file per upload in the upload folder, under a lock.

The file's size is the upload's offset: bytes are appended (their writeback started as
they arrive, app/writeback.py) and fsynced before the offset is reported, so a resumed
upload never skips bytes that were not kept. A lock (flock) serialises requests on one
upload across processes on a host; a deployment with several app hosts shares the
folder (and its locks) over the network file system or pins an upload to one host."""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

from app.writeback import start_writeback

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1024 * 1024
WRITEBACK_BYTES = 8 * CHUNK  # queue the disk writes this often while a PATCH arrives


class UploadBusy(Exception):
    """Another request is writing to this upload right now."""


class StagedUpload:
    def __init__(self, path: Path, handle: BinaryIO | None) -> None:
        self.path = path
        self._file = handle

    @property
    def _handle(self) -> BinaryIO:
        if self._file is None:
            raise FileNotFoundError(f"staged upload {self.path.name} has moved or gone")
        return self._file

    @property
    def offset(self) -> int:
        return os.fstat(self._handle.fileno()).st_size

    def append(
        self, chunks: Iterator[bytes], limit: int, digest: Hash | None = None
    ) -> tuple[int, bool]:
        """Append chunks (at most limit bytes), feeding each to digest; fsync; return
        (bytes written, cut short).

        `cut short` is True when the client went away mid-body: what arrived is kept.
        The disk's writeback is started every `WRITEBACK_BYTES` (app/writeback.py)."""
        written = 0
        fd = self._handle.fileno()
        start = flushed = os.lseek(fd, 0, os.SEEK_END)
        cut = False
        try:
            for chunk in chunks:
                if written + len(chunk) > limit:
                    raise ValueError("more bytes than the upload's length")
                if digest is not None:
                    digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(chunk)
                if start + written - flushed >= WRITEBACK_BYTES:
                    start_writeback(fd, flushed, start + written - flushed)
                    flushed = start + written
        except ConnectionError:
            cut = True
        finally:
            os.fsync(fd)
        return written, cut

    def truncate(self, offset: int) -> None:
        os.ftruncate(self._handle.fileno(), offset)
        os.fsync(self._handle.fileno())


class Staging:
    """The folder of staged uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ValueError("not an upload id")
        return self.root / upload_id

    def create(self, upload_id: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fsync(fd)
        os.close(fd)

    def exists(self, upload_id: str) -> bool:
        return self._path(upload_id).exists()

    def path(self, upload_id: str) -> Path:
        return self._path(upload_id)

    @contextmanager
    def locked(self, upload_id: str, *, wait_seconds: float = 5.0) -> Iterator[StagedUpload]:
        """Hold the upload's lock and open its staged file; UploadBusy if another request
        keeps the lock longer than wait_seconds (a client resuming right after a cut may
        race the old request). The lock lives in its own file, so it still serialises
        requests after the staged bytes moved into the object store; the staged file is
        then missing and FileNotFoundError is raised only when it is used."""
        path = self._path(upload_id)
        lock_fd = os.open(
            self.root / f"{upload_id}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise UploadBusy(upload_id) from None
                    time.sleep(0.05)
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            except FileNotFoundError:
                yield StagedUpload(path, None)
                return
            handle = os.fdopen(fd, "r+b", buffering=0)
            try:
                yield StagedUpload(path, handle)  # type: ignore[arg-type]
            finally:
                handle.close()
        finally:
            os.close(lock_fd)

    def remove(self, upload_id: str) -> None:
        self._path(upload_id).unlink(missing_ok=True)
        (self.root / f"{upload_id}.lock").unlink(missing_ok=True)
