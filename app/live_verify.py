"""Verifying a staged upload while it arrives, so the last PATCH only checks the tail.

After each PATCH is committed (its bytes fsynced, its checksum checked, its offset
recorded) the request tells this process's `LiveVerifier`. One thread per upload then
reads the staged file back from disk up to the committed offset, authenticates every
segment and hashes both the ciphertext and the plaintext (`evidence.vault.digest_chunks`),
and waits for the next commit. When the last byte is committed, `finish` waits for the
thread to reach the end and hands back the digest of the file as it is on disk, together
with the file's inode, so the local store can adopt that very file as the object.

This is only a shortcut. `finish` answers None whenever it cannot vouch for the whole
file: the PATCHes went to another worker process, this one restarted, the thread fell
behind past the wait, or reading failed. The caller then reads the stored object back
in full, as it would without this module. Bytes that fail authentication raise
`IntegrityError`, exactly as reading them back later would.

The data key lives in the thread's memory for as long as the upload is being received
(it was unwrapped by the request that started the thread). An upload that stops getting
commits is dropped after `idle_seconds`, its key with it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from evidence.crypto import segments
from evidence.errors import IntegrityError
from evidence.vault import Digest, digest_chunks

logger = logging.getLogger(__name__)

READ_SEGMENTS = 4  # sealed segments per read


@dataclass(frozen=True)
class Verified:
    """The whole staged file, read back from disk: its digest and its (st_dev, st_ino)."""

    digest: Digest
    inode: tuple[int, int]


class _Abandoned(Exception):
    """Internal: the run stopped waiting for commits (idle, or told to stop)."""


class _Run:
    def __init__(
        self, path: Path, length: int, dek: bytes, object_id: bytes, idle_seconds: float
    ) -> None:
        self.length = length
        self._path = path
        self._dek = dek
        self._object_id = object_id
        self._idle = idle_seconds
        self._committed = 0
        self._stopped = False
        self._changed = threading.Condition()
        self.done = threading.Event()
        self.result: Verified | None = None
        self.failed: IntegrityError | None = None
        self.thread = threading.Thread(target=self._main, name="bwc-live-verify", daemon=True)

    def commit(self, offset: int) -> None:
        with self._changed:
            self._committed = max(self._committed, offset)
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _main(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            self.done.set()
            return
        try:
            st = os.fstat(fd)
            digest = digest_chunks(self._chunks(fd), self._dek, self._object_id, self.length)
            self.result = Verified(digest, (st.st_dev, st.st_ino))
        except IntegrityError as failed:
            self.failed = failed
        except (_Abandoned, OSError):
            pass
        except Exception:  # a bug here must never fail an upload: the caller reads back
            logger.exception("live verification of %s stopped", self._path.name)
        finally:
            os.close(fd)
            self._dek = b""
            self.done.set()

    def _committed_end(self, position: int) -> int:
        """Wait until bytes past position are committed; the committed offset."""
        with self._changed:
            while self._committed <= position and not self._stopped:
                if not self._changed.wait(timeout=self._idle):
                    raise _Abandoned
            if self._stopped:
                raise _Abandoned
            return self._committed

    def _chunks(self, fd: int) -> Iterator[bytes | memoryview]:
        """The committed bytes in order: the header, then whole sealed segments read into
        two reused buffers, so segments are opened in place (no copy) and no new buffer is
        faulted in per read. Each piece is consumed before the next is read."""
        header = b""
        while len(header) < segments.HEADER_SIZE:
            end = min(self._committed_end(len(header)), segments.HEADER_SIZE)
            header += os.pread(fd, end - len(header), len(header))
        yield header
        sealed = segments.parse_header(header).segment_size + segments.TAG_SIZE
        buffers = [bytearray(READ_SEGMENTS * sealed) for _ in range(2)]
        position, turn = segments.HEADER_SIZE, 0
        while position < self.length:
            end = self._committed_end(position)
            while position < end:
                view = memoryview(buffers[turn])[: min(len(buffers[turn]), end - position)]
                got = os.preadv(fd, [view], position)
                if not got:
                    raise OSError("staged file shorter than its committed offset")
                position += got
                turn ^= 1
                yield view[:got]


class LiveVerifier:
    """This process's running verifications, one per upload id."""

    def __init__(self, *, idle_seconds: float = 900.0) -> None:
        self._idle = idle_seconds
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _table(self) -> dict[str, _Run]:
        if os.getpid() != self._pid:  # forked (a worker of a preloaded app): start empty
            self._runs, self._lock, self._pid = {}, threading.Lock(), os.getpid()
        return self._runs

    def committed(
        self,
        upload_id: str,
        path: Path,
        offset: int,
        length: int,
        key: Callable[[], tuple[bytes, bytes] | None],
    ) -> None:
        """Bytes [0, offset) of the staged file at path are committed. The first call for
        an upload in this process starts its run; `key` is asked for (data key, object
        id) only then, and None (the key cannot be unwrapped) starts nothing."""
        with self._lock:
            table = self._table()
            run = table.get(upload_id)
            if run is not None and run.done.is_set() and run.result is None and not run.failed:
                del table[upload_id]  # it gave up (idle): start again from the file
                run = None
            if run is None:
                unwrapped = key()
                if unwrapped is None:
                    return
                dek, object_id = unwrapped
                run = _Run(path, length, dek, object_id, self._idle)
                table[upload_id] = run
                run.thread.start()
        run.commit(offset)

    def finish(self, upload_id: str, *, wait_seconds: float) -> Verified | None:
        """The verified digest of the whole upload, if this process read it all back;
        None if it cannot say (see the module's doc). IntegrityError if it failed."""
        with self._lock:
            run = self._table().pop(upload_id, None)
        if run is None:
            return None
        if not run.done.wait(timeout=wait_seconds):
            run.stop()
            return None
        if run.failed is not None:
            raise run.failed
        return run.result

    def discard(self, upload_id: str) -> None:
        """Stop the upload's run, if any (terminated, rejected, expired)."""
        with self._lock:
            run = self._table().pop(upload_id, None)
        if run is not None:
            run.stop()

    def running(self) -> int:
        with self._lock:
            return sum(1 for run in self._table().values() if not run.done.is_set())
