"""Staged uploads: PATCH bodies appended (direct I/O where the disk takes it), fsynced."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import app.staging as staging_module
from app.staging import BUFFER_BYTES, Staging
from evidence.direct_io import ALIGN, open_direct

UPLOAD = "0123456789abcdef0123456789abcdef"


def _body(data: bytes, pieces: int = 7000, cut_after: int | None = None) -> Callable:
    """A readinto over data in pieces of at most `pieces` bytes, as a socket gives them;
    ConnectionError once cut_after bytes were given."""
    position = 0

    def readinto(buffer: memoryview) -> int:
        nonlocal position
        if cut_after is not None and position >= cut_after:
            raise ConnectionError("the client went away")
        end = min(len(data), position + len(buffer), position + pieces)
        if cut_after is not None:
            end = min(end, cut_after)
        buffer[: end - position] = data[position:end]
        given, position = end - position, end
        return given

    return readinto


@pytest.fixture(params=["direct", "page cache"])
def staging(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Staging]:
    """A staging folder; with "page cache" the filesystem is made to refuse direct I/O."""
    opened: list[int] = []
    real = staging_module.open_direct

    def spy(path: os.PathLike[str] | str, flags: int, *, like: int | None = None) -> int | None:
        if request.param == "page cache":
            return None
        fd = real(path, flags, like=like)
        assert fd is not None, "this test's folder must take direct I/O"
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        opened.append(fd)
        return fd

    staging_module.open_direct, saved = spy, staging_module.open_direct  # type: ignore[assignment]
    try:
        folder = Staging(tmp_path / "uploads")
        folder.create(UPLOAD)
        yield folder
    finally:
        staging_module.open_direct = saved  # type: ignore[assignment]
    if request.param == "direct":
        assert opened, "the direct path was never taken"


# PATCH sizes that start and end inside blocks, on block edges and across buffers
SIZES = [1, ALIGN - 1, ALIGN, ALIGN + 1, 3 * ALIGN + 17, BUFFER_BYTES - 5, BUFFER_BYTES + 4099]


@pytest.mark.parametrize("first", SIZES)
def test_patches_of_any_size_leave_exactly_their_bytes(staging: Staging, first: int) -> None:
    data = os.urandom(first + sum(SIZES))
    chunks = [first, *SIZES]
    position = 0
    for size in chunks:
        piece = data[position : position + size]
        digest = hashlib.sha256()
        with staging.locked(UPLOAD) as staged:
            written, cut = staged.append(_body(piece), len(data) - position, [digest])
            assert (written, cut) == (size, False)
            position += size
            assert staged.offset == position
        assert digest.digest() == hashlib.sha256(piece).digest()
        assert staging.path(UPLOAD).read_bytes() == data[:position]  # no padding, ever


def test_a_cut_body_keeps_what_arrived(staging: Staging) -> None:
    data = os.urandom(3 * ALIGN + 100)
    with staging.locked(UPLOAD) as staged:
        staged.append(_body(data[: ALIGN + 10]), len(data))
        written, cut = staged.append(_body(data[ALIGN + 10 :], cut_after=ALIGN + 5), len(data))
    assert (written, cut) == (ALIGN + 5, True)
    assert staging.path(UPLOAD).read_bytes() == data[: 2 * ALIGN + 15]


def test_a_body_longer_than_the_upload_is_refused_and_truncated_away(staging: Staging) -> None:
    data = os.urandom(ALIGN + 10)
    with staging.locked(UPLOAD) as staged:
        staged.append(_body(data[:10]), len(data))
        with pytest.raises(ValueError, match="more bytes"):
            staged.append(_body(data[10:] + b"extra"), len(data) - 10)
        staged.truncate(10)
        assert staged.offset == 10
        staged.append(_body(data[10:]), len(data) - 10)
    assert staging.path(UPLOAD).read_bytes() == data


def test_a_rewritten_block_keeps_the_bytes_before_the_offset(staging: Staging) -> None:
    """The block holding the offset is re-read and written again with the new bytes:
    what an earlier PATCH left in it must come through unchanged, even when the page
    cache was dropped between the two."""
    data = os.urandom(2 * ALIGN)
    with staging.locked(UPLOAD) as staged:
        staged.append(_body(data[:100]), len(data))
    fd = os.open(staging.path(UPLOAD), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    with staging.locked(UPLOAD) as staged:
        staged.append(_body(data[100:]), len(data) - 100)
    assert staging.path(UPLOAD).read_bytes() == data


def test_open_direct_refuses_a_path_that_is_another_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    fd = os.open(tmp_path / "a", os.O_RDONLY)
    try:
        assert open_direct(tmp_path / "b", os.O_RDONLY, like=fd) is None
        same = open_direct(tmp_path / "a", os.O_RDONLY, like=fd)
        assert same is not None
        os.close(same)
    finally:
        os.close(fd)
