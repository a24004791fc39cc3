"""Wiping a camera file (DESIGN.md §6 rule 7): re-hash right before, unlink by dir fd.

The caller has already established the session decision is `accept` and the service's
receipt for this file verified. Here the file is re-opened through the same O_NOFOLLOW
walk as every read, re-hashed whole, and unlinked from its own directory only if the
digest equals the confirmed one. Anything unexpected keeps the file on the camera."""

from __future__ import annotations

import errno
import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor

from dock.volume import Candidate, SourceChanged, open_for_read, still_same

_REHASH_BLOCK = 4 * 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_DIRECTORY | os.O_CLOEXEC


class WipeRefused(Exception):
    """The file stays on the camera; the message says why."""


def rehash(root_fd: int, candidate: Candidate) -> str:
    """SHA-256 of the whole camera file as it is now; SourceChanged if it changed meanwhile.

    Reads at most size + 1 bytes (a longer file changes the digest). The next block is
    read while the last one is hashed on a helper thread (both release the GIL), into
    two reused buffers."""
    fd = open_for_read(root_fd, candidate)
    try:
        digest = hashlib.sha256()
        limit = candidate.size + 1
        buffers = [memoryview(bytearray(_REHASH_BLOCK)) for _ in range(2)]
        offset = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehash-sha256") as hasher:
            pending: Future[None] | None = None
            turn = 0
            while offset < limit:
                buffer = buffers[turn][: min(_REHASH_BLOCK, limit - offset)]
                n = os.preadv(fd, [buffer], offset)
                if pending is not None:
                    pending.result()  # the other buffer is free again
                if not n:
                    pending = None
                    break
                pending = hasher.submit(digest.update, buffer[:n])
                offset += n
                turn ^= 1
            if pending is not None:
                pending.result()
        if not still_same(fd, candidate):
            raise SourceChanged("the camera file changed while it was re-hashed")
        return digest.hexdigest()
    finally:
        os.close(fd)


def wipe(root_fd: int, candidate: Candidate, confirmed_sha256: str) -> None:
    """Delete the camera file if it still hashes to confirmed_sha256; WipeRefused if not."""
    try:
        actual = rehash(root_fd, candidate)
    except (SourceChanged, OSError) as exc:
        raise WipeRefused(f"cannot re-hash before wiping: {exc}") from None
    if actual != confirmed_sha256:
        raise WipeRefused("the camera file no longer hashes to the confirmed SHA-256")
    *dirs, leaf = candidate.parts
    fd = os.dup(root_fd)
    try:
        for part in dirs:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        st = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (candidate.st_dev, candidate.st_ino):
            raise WipeRefused("another file took the camera file's place")
        os.unlink(leaf, dir_fd=fd)
        os.fsync(fd)
    except FileNotFoundError:
        return  # gone already (a wipe interrupted after the unlink): nothing to do
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise WipeRefused("the camera volume is mounted read-only") from None
        raise WipeRefused(f"cannot delete the camera file: {exc.strerror}") from None
    finally:
        os.close(fd)
