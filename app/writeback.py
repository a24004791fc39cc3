"""Start writing a file's dirty pages to disk now, without waiting (Linux).

On a machine with plenty of memory the kernel leaves freshly written pages in memory
until a tenth of it is dirty; an upload's fsync at the end of each PATCH would then
write the whole PATCH while the client waits. Asking for writeback as the bytes arrive
(sync_file_range with SYNC_FILE_RANGE_WRITE, which only queues the I/O) lets the disk
work while the next bytes are received, and the fsync finds little left to do. It
changes nothing about durability: the fsync is still what makes an offset safe to
report. Where the call does not exist this is a no-op."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_SYNC_FILE_RANGE_WRITE = 2


def _load() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Queue [offset, offset + length) of fd for writing to disk; never waits for it.
    A failure is not an error here (the fsync that follows reports real I/O errors)."""
    if _sync_file_range is None or length <= 0:
        return
    if _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:  # type: ignore[operator]
        logger.debug("sync_file_range failed (errno %d)", ctypes.get_errno())
