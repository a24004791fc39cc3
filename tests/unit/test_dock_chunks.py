"""The dock's PATCH bodies: read from the spool (directly where its disk allows) into two
reused buffers, each hashed for Upload-Checksum, from any offset the service names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import dock.client as client
from dock.client import _Chunks

CHUNK = 3 * 4096 + 100  # not a whole number of disk blocks


@pytest.fixture(params=["direct", "page cache"])
def direct(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param == "page cache":
        monkeypatch.setattr(client, "open_direct", lambda path, flags, like=None: None)
    return request.param == "direct"


def _spool(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "spool.sealed"
    path.write_bytes(data)
    return path, data


def test_chunks_in_order_are_the_file_and_carry_their_digests(tmp_path: Path, direct: bool) -> None:
    path, data = _spool(tmp_path, 5 * CHUNK + 777)
    seen = []
    with _Chunks(path, len(data), CHUNK) as chunks:
        assert (chunks._direct is not None) == direct
        offset = 0
        while offset < len(data):
            chunk = chunks.at(offset)
            piece = bytes(chunk.data)
            assert piece == data[offset : offset + CHUNK]
            assert chunk.digest == hashlib.sha256(piece).digest()
            seen.append(piece)
            offset += len(piece)
    assert b"".join(seen) == data


@pytest.mark.parametrize("resume_at", [1, 4095, 4097, CHUNK + 1, 2 * CHUNK - 3])
def test_a_resume_at_any_offset_reads_from_exactly_there(
    tmp_path: Path, direct: bool, resume_at: int
) -> None:
    """After a cut the service's offset can be any byte: the chunk read ahead for the old
    offset is dropped and the body starts where the service says."""
    path, data = _spool(tmp_path, 4 * CHUNK)
    with _Chunks(path, len(data), CHUNK) as chunks:
        assert bytes(chunks.at(0).data) == data[:CHUNK]  # reads CHUNK.. ahead
        chunk = chunks.at(resume_at)
        assert bytes(chunk.data) == data[resume_at : resume_at + CHUNK]
        following = chunks.at(resume_at + CHUNK)
        assert bytes(following.data) == data[resume_at + CHUNK : resume_at + 2 * CHUNK]


def test_a_spool_shorter_than_recorded_is_a_clear_error(tmp_path: Path, direct: bool) -> None:
    path, data = _spool(tmp_path, 2 * CHUNK)
    with _Chunks(path, len(data) + 10, CHUNK) as chunks:
        chunks.at(0)
        chunks.at(CHUNK)
        with pytest.raises(client.ServiceError, match="shorter than recorded"):
            chunks.at(2 * CHUNK)
