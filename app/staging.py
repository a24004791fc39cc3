"""Staged tus uploads: one ciphertext file per upload in the upload folder, under a lock.

The file's size is the upload's offset: bytes are appended and fsynced before the offset
is reported, so a resumed upload never skips bytes that were not kept. They go to the
disk with direct I/O (evidence/direct_io.py) in whole blocks, the last part block of a PATCH
through the page cache; where the filesystem takes no direct I/O they are written
through the page cache, their writeback started as they arrive (app/writeback.py).
A lock (flock) serialises requests on one upload across processes on a host; a
deployment with several app hosts shares the folder (and its locks) over the network
file system or pins an upload to one host."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

from app.writeback import start_writeback
from evidence.direct_io import ALIGN, align_down, aligned_buffer, open_direct, pwrite_all

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1024 * 1024
BUFFER_BYTES = 2 * CHUNK  # received, hashed and written at a time
WRITEBACK_BYTES = 8 * CHUNK  # queue the disk writes this often while a PATCH arrives


class UploadBusy(Exception):
    """Another request is writing to this upload right now."""


class StagedUpload:
    def __init__(self, path: Path, handle: BinaryIO | None, *, direct: bool = True) -> None:
        self.path = path
        self._file = handle
        self._direct = direct

    @property
    def _handle(self) -> BinaryIO:
        if self._file is None:
            raise FileNotFoundError(f"staged upload {self.path.name} has moved or gone")
        return self._file

    @property
    def offset(self) -> int:
        return os.fstat(self._handle.fileno()).st_size

    def append(
        self,
        readinto: Callable[[memoryview], int],
        limit: int,
        digests: Sequence[Hash] = (),
    ) -> tuple[int, bool]:
        """Append what `readinto` delivers (at most limit bytes), feeding it to each of
        digests; fsync; return (bytes written, cut short).

        `readinto(buffer)` fills the start of buffer and says how many bytes; 0 at the
        end of the body, ConnectionError if the client went away: what arrived is then
        kept and `cut short` is True. More than limit bytes is a ValueError. The bytes
        pass through one buffer, reused (no new memory per chunk). The fsync at the end
        is what makes the new offset safe to report.

        (Receiving on this thread while a helper hashed and wrote the previous buffer
        was tried: on this disk it was slower, the writes being what waits.)"""
        fd = self._handle.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        direct = open_direct(self.path, os.O_WRONLY, like=fd) if self._direct else None
        try:
            if direct is None:
                return self._append_buffered(fd, start, readinto, limit, digests)
            return self._append_direct(fd, direct, start, readinto, limit, digests)
        finally:
            if direct is not None:
                os.close(direct)

    def _append_direct(
        self,
        fd: int,
        direct: int,
        start: int,
        readinto: Callable[[memoryview], int],
        limit: int,
        digests: Sequence[Hash],
    ) -> tuple[int, bool]:
        """`append` with direct I/O: the buffer starts at the block holding the offset
        (its bytes already on disk read back in front of the new ones) and every whole
        block is written directly, by a writer thread while the next bytes are received
        into the other of two buffers (a direct write waits for the disk); what is left
        under one block at the end goes through the page cache (fd), so the file never
        holds padding past its true size."""
        base = align_down(start)
        carry = start - base  # bytes of the buffer not yet written (or, first, re-read)
        # carry is always under ALIGN
        views = [memoryview(aligned_buffer(ALIGN + BUFFER_BYTES)) for _ in range(2)]
        view = views[0]
        writer = ThreadPoolExecutor(1, thread_name_prefix="bwc-staged-write")
        pending: Future[None] | None = None  # the other buffer's write
        written, cut = 0, False
        try:
            if carry and os.preadv(fd, [view[:carry]], base) != carry:
                raise OSError(f"staged upload {self.path.name} changed while appended to")
            while not cut:
                room = view[carry : carry + min(BUFFER_BYTES, limit - written + 1)]
                filled, cut = _receive(readinto, room, limit - written, digests)
                written += filled
                total = carry + filled
                whole = align_down(total)
                carry = total - whole
                if whole:
                    other = views[1] if view is views[0] else views[0]
                    if pending is not None:
                        pending.result()  # the other buffer is written: free again
                    other[:carry] = view[whole:total]
                    pending = writer.submit(pwrite_all, direct, view[:whole], base)
                    base += whole
                    view = other
                if filled < len(room):
                    break
        finally:
            try:
                if pending is not None:
                    pending.result()
            finally:
                writer.shutdown(wait=True)
        if carry:
            pwrite_all(fd, view[:carry], base)
        os.fdatasync(fd)  # the data and the size that reaches it; not the times
        return written, cut

    def _append_buffered(
        self,
        fd: int,
        start: int,
        readinto: Callable[[memoryview], int],
        limit: int,
        digests: Sequence[Hash],
    ) -> tuple[int, bool]:
        """`append` through the page cache, the disk's writeback started every
        `WRITEBACK_BYTES` (app/writeback.py)."""
        flushed = start
        buffer = memoryview(bytearray(BUFFER_BYTES))
        written, cut = 0, False
        try:
            while not cut:
                room = buffer[: min(len(buffer), limit - written + 1)]
                filled, cut = _receive(readinto, room, limit - written, digests)
                view = room[:filled]
                while view:
                    view = view[os.write(fd, view) :]
                written += filled
                if start + written - flushed >= WRITEBACK_BYTES:
                    start_writeback(fd, flushed, start + written - flushed)
                    flushed = start + written
                if filled < len(room):
                    break
        finally:
            os.fdatasync(fd)  # the data and the size that reaches it; not the times
        return written, cut

    def truncate(self, offset: int) -> None:
        os.ftruncate(self._handle.fileno(), offset)
        os.fsync(self._handle.fileno())


def _receive(
    readinto: Callable[[memoryview], int], room: memoryview, left: int, digests: Sequence[Hash]
) -> tuple[int, bool]:
    """Fill room from readinto and feed what came to digests: (bytes, cut short).

    room may be one byte longer than the `left` the upload still takes: a body that
    fills it is too long (ValueError, nothing fed to digests)."""
    filled, cut = 0, False
    try:
        while filled < len(room) and (got := readinto(room[filled:])):
            filled += got
    except ConnectionError:
        cut = True
    if filled > left:
        raise ValueError("more bytes than the upload's length")
    for digest in digests:
        digest.update(room[:filled])
    return filled, cut


def _flock(path: Path, wait_seconds: float, name: str) -> int:
    """An open descriptor of the lock file at path, holding its exclusive lock;
    UploadBusy(name) if another holder keeps it longer than wait_seconds."""
    lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock_fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(lock_fd)
                raise UploadBusy(name) from None
            time.sleep(0.02)


class Staging:
    """The folder of staged uploads (and, in `identities/`, the file identities' locks)."""

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
        lock_fd = _flock(self.root / f"{upload_id}.lock", wait_seconds, upload_id)
        try:
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

    @contextmanager
    def file_lock(self, identity: str, *, wait_seconds: float = 600.0) -> Iterator[None]:
        """Hold the lock of one file identity (a camera, its file identity and the
        plaintext SHA-256) among every process sharing this folder, so two uploads of one
        file cannot both store an object and race to become its item. The identities
        share 64 lock files (by hash), so an unrelated upload may wait a moment: the lock
        is held only while an upload is stored and recorded. UploadBusy after
        wait_seconds."""
        stripe = int(hashlib.sha256(identity.encode()).hexdigest()[:2], 16) % 64
        folder = self.root / "identities"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = _flock(folder / f"{stripe:02d}.lock", wait_seconds, identity)
        try:
            yield
        finally:
            os.close(lock_fd)

    def remove(self, upload_id: str) -> None:
        self._path(upload_id).unlink(missing_ok=True)
        (self.root / f"{upload_id}.lock").unlink(missing_ok=True)
