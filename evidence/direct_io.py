"""Direct I/O (O_DIRECT): an upload's bytes to and from the disk without the page cache,
for the service's staged uploads and the dock's spool alike.

Taking a large upload into the page cache costs more system time than the disk needs to
store it, and that cost swings widely from minute to minute on virtual machines (2 GiB
written measured at 1.2-5.7 s of system time through the page cache, 0.1 s with direct
I/O, on this project's 2-core machines). It also pushes out pages the database and other
requests use. Reading the upload back directly means the verification reads what the
disk returns, not a copy the kernel kept in memory.

Direct I/O needs page-aligned buffers (`aligned_buffer`) and offsets and lengths in
whole `ALIGN` blocks. Where the filesystem refuses it (tmpfs, some network file
systems) `open_direct` answers None and the callers use ordinary I/O."""

from __future__ import annotations

import mmap
import os

ALIGN = 4096  # covers the logical block size of every disk this runs on
_DIRECT = getattr(os, "O_DIRECT", 0)


def open_direct(path: os.PathLike[str] | str, flags: int, *, like: int | None = None) -> int | None:
    """A descriptor of path opened with O_DIRECT (and O_NOFOLLOW, O_CLOEXEC), or None
    when the platform or the filesystem takes no direct I/O. With `like` (an open
    descriptor), None also when path is no longer that descriptor's file."""
    if not _DIRECT:
        return None
    try:
        fd = os.open(path, flags | _DIRECT | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if like is not None:
        mine, theirs = os.fstat(fd), os.fstat(like)
        if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
            os.close(fd)
            return None
    return fd


def aligned_buffer(size: int) -> mmap.mmap:
    """A zeroed, page-aligned buffer of at least size bytes (anonymous memory)."""
    return mmap.mmap(-1, align_up(max(size, 1)))


def align_down(n: int) -> int:
    return n - n % ALIGN


def align_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        done = os.pwrite(fd, data, offset)
        data, offset = data[done:], offset + done


def read_range(fd: int, direct: bool, buffer: mmap.mmap, start: int, stop: int) -> memoryview:
    """Bytes [start, stop) of the file open on fd, read into buffer; a view of them.

    With `direct` (fd opened by `open_direct`) the read covers whole `ALIGN` blocks
    around the range, so buffer must hold align_up(stop) - align_down(start) bytes.
    OSError when the file ends before stop."""
    lo, hi = (align_down(start), align_up(stop)) if direct else (start, stop)
    view = memoryview(buffer)[: hi - lo]
    done = 0
    while lo + done < stop:
        got = os.preadv(fd, [view[done:]], lo + done)
        if not got:
            raise OSError(f"the file ends at {lo + done}, before {stop}")
        done += got
    return view[start - lo : stop - lo]
