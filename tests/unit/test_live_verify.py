"""LiveVerifier: a staged file read back and verified as committed bytes arrive."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from app.live_verify import PARTS_IN_FLIGHT, LiveVerifier
from evidence.crypto import segments
from evidence.errors import IntegrityError

SEGMENT = 4096


def _sealed(size: int) -> tuple[bytes, bytes, bytes, bytes]:
    """(plaintext, ciphertext, data key, object id)."""
    plaintext = os.urandom(size)
    dek, out = segments.new_data_key(), io.BytesIO()
    result = segments.encrypt_stream(io.BytesIO(plaintext), out, dek, segment_size=SEGMENT)
    return plaintext, out.getvalue(), dek, result.object_id


def _feed(
    verifier: LiveVerifier, path: Path, ciphertext: bytes, dek: bytes, oid: bytes, step: int
) -> None:
    """Append the ciphertext in `step` pieces, committing each as a PATCH would."""
    with path.open("ab") as handle:
        for start in range(0, len(ciphertext), step):
            handle.write(ciphertext[start : start + step])
            handle.flush()
            verifier.committed("u1", path, handle.tell(), len(ciphertext), lambda: (dek, oid))


@pytest.mark.parametrize("step", [1000, SEGMENT + 16, 10**9])
def test_the_whole_file_read_back_gives_both_digests_and_its_inode(
    tmp_path: Path, step: int
) -> None:
    plaintext, ciphertext, dek, oid = _sealed(5 * SEGMENT + 123)
    path, verifier = tmp_path / "u1", LiveVerifier()
    _feed(verifier, path, ciphertext, dek, oid, step)
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None
    assert verified.digest.sha256 == hashlib.sha256(plaintext).hexdigest()
    assert verified.digest.size == len(plaintext)
    assert verified.digest.stored_sha256 == hashlib.sha256(ciphertext).hexdigest()
    assert verified.digest.stored_size == len(ciphertext)
    st = path.stat()
    assert verified.inode == (st.st_dev, st.st_ino)
    assert verifier.finish("u1", wait_seconds=1) is None  # handed over once


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "page cache"])
@pytest.mark.parametrize("step", [7, 4095, 4097, 3 * SEGMENT + 1])
def test_reads_back_in_blocks_or_through_the_page_cache_give_the_same_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int, direct: bool
) -> None:
    """Commits that end anywhere inside a disk block: the direct reads cover whole blocks
    around each range and must hand back exactly the range; without direct I/O (a
    filesystem that refuses it) the same bytes come through the page cache."""
    import app.live_verify as live

    opened: list[int] = []
    real = live.open_direct

    def spy(path: Path, flags: int, *, like: int | None = None) -> int | None:
        fd = real(path, flags, like=like) if direct else None
        if fd is not None:
            opened.append(fd)
        return fd

    monkeypatch.setattr(live, "open_direct", spy)
    plaintext, ciphertext, dek, oid = _sealed(7 * SEGMENT + 5)
    path, verifier = tmp_path / "u1", LiveVerifier()
    ends = [2 * SEGMENT, *range(2 * SEGMENT + step, len(ciphertext), step), len(ciphertext)]
    with path.open("ab") as handle:
        for end in ends:
            handle.write(ciphertext[handle.tell() : end])
            handle.flush()
            verifier.committed("u1", path, end, len(ciphertext), lambda: (dek, oid))
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None
    assert verified.digest.sha256 == hashlib.sha256(plaintext).hexdigest()
    assert verified.digest.stored_sha256 == hashlib.sha256(ciphertext).hexdigest()
    assert bool(opened) == direct


def test_a_flipped_byte_on_disk_is_an_integrity_error(tmp_path: Path) -> None:
    _, ciphertext, dek, oid = _sealed(3 * SEGMENT)
    broken = bytearray(ciphertext)
    broken[SEGMENT + 200] ^= 0x04
    path, verifier = tmp_path / "u1", LiveVerifier()
    _feed(verifier, path, bytes(broken), dek, oid, 5000)
    with pytest.raises(IntegrityError):
        verifier.finish("u1", wait_seconds=30)


def test_bytes_beyond_the_committed_offset_are_never_read(tmp_path: Path) -> None:
    """Only committed bytes count: garbage after the offset (a PATCH whose checksum is
    still being checked) does not make the run fail, and it finishes once the real bytes
    are committed."""
    _, ciphertext, dek, oid = _sealed(4 * SEGMENT)
    path, verifier = tmp_path / "u1", LiveVerifier()
    half = len(ciphertext) // 2
    path.write_bytes(ciphertext[:half] + b"\0" * 5000)
    verifier.committed("u1", path, half, len(ciphertext), lambda: (dek, oid))
    assert verifier.finish("u1", wait_seconds=0.2) is None  # still waiting for the rest
    with path.open("r+b") as handle:
        handle.truncate(half)
        handle.seek(half)
        handle.write(ciphertext[half:])
    verifier.committed("u1", path, len(ciphertext), len(ciphertext), lambda: (dek, oid))
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None
    assert verified.digest.stored_sha256 == hashlib.sha256(ciphertext).hexdigest()


def test_no_run_for_an_upload_this_process_never_saw_or_whose_key_is_unknown(
    tmp_path: Path,
) -> None:
    verifier = LiveVerifier()
    assert verifier.finish("nobody", wait_seconds=1) is None
    _, ciphertext, _dek, _oid = _sealed(SEGMENT)
    path = tmp_path / "u2"
    path.write_bytes(ciphertext)
    verifier.committed("u2", path, len(ciphertext), len(ciphertext), lambda: None)
    assert verifier.running() == 0
    assert verifier.finish("u2", wait_seconds=1) is None


def test_an_idle_run_gives_up_and_a_later_commit_starts_again(tmp_path: Path) -> None:
    _, ciphertext, dek, oid = _sealed(3 * SEGMENT)
    path, verifier = tmp_path / "u1", LiveVerifier(idle_seconds=0.05)
    path.write_bytes(ciphertext[:100])
    verifier.committed("u1", path, 100, len(ciphertext), lambda: (dek, oid))
    run = verifier._runs["u1"]
    run.thread.join(timeout=10)
    assert not run.thread.is_alive() and run.result is None
    assert verifier.running() == 0
    path.write_bytes(ciphertext)
    asked = threading.Event()

    def key() -> tuple[bytes, bytes]:
        asked.set()
        return dek, oid

    verifier.committed("u1", path, len(ciphertext), len(ciphertext), key)
    assert asked.is_set()  # a new run, with the key asked for again
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None and verified.digest.stored_size == len(ciphertext)


def test_discard_stops_a_waiting_run(tmp_path: Path) -> None:
    _, ciphertext, dek, oid = _sealed(2 * SEGMENT)
    path, verifier = tmp_path / "u1", LiveVerifier()
    path.write_bytes(ciphertext[:10])
    verifier.committed("u1", path, 10, len(ciphertext), lambda: (dek, oid))
    run = verifier._runs["u1"]
    verifier.discard("u1")
    run.thread.join(timeout=10)
    assert not run.thread.is_alive()
    assert verifier.finish("u1", wait_seconds=1) is None


class _Sink:
    """Records the parts it is sent; can be told to fail one."""

    def __init__(self, part_size: int, fail_at: int | None = None) -> None:
        self.part_size = part_size
        self.parts: dict[int, bytes] = {}
        self.aborted = False
        self._fail_at = fail_at
        self._lock = threading.Lock()

    def send(self, number: int, chunk: memoryview) -> None:
        if number == self._fail_at:
            raise OSError("the store went away")
        with self._lock:
            self.parts[number] = bytes(chunk)

    def abort(self) -> None:
        self.aborted = True


@pytest.mark.parametrize("step", [777, 3 * SEGMENT, 10**9])
def test_bytes_read_back_are_also_sent_as_parts_in_order(tmp_path: Path, step: int) -> None:
    _, ciphertext, dek, oid = _sealed(9 * SEGMENT + 5)
    sink = _Sink(part_size=2 * SEGMENT + 10)
    path, verifier = tmp_path / "u1", LiveVerifier()
    with path.open("ab") as handle:
        for start in range(0, len(ciphertext), step):
            handle.write(ciphertext[start : start + step])
            handle.flush()
            verifier.committed(
                "u1", path, handle.tell(), len(ciphertext), lambda: (dek, oid), lambda: sink
            )
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None and verified.streamed is sink and not sink.aborted
    numbers = sorted(sink.parts)
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(len(sink.parts[n]) == sink.part_size for n in numbers[:-1])
    assert b"".join(sink.parts[n] for n in numbers) == ciphertext


def test_a_part_that_fails_to_send_ends_streaming_but_not_verification(
    tmp_path: Path,
) -> None:
    _, ciphertext, dek, oid = _sealed(9 * SEGMENT)
    sink = _Sink(part_size=2 * SEGMENT, fail_at=2)
    path, verifier = tmp_path / "u1", LiveVerifier()
    path.write_bytes(ciphertext)
    verifier.committed(
        "u1", path, len(ciphertext), len(ciphertext), lambda: (dek, oid), lambda: sink
    )
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None and verified.streamed is None and sink.aborted
    assert verified.digest.stored_sha256 == hashlib.sha256(ciphertext).hexdigest()


def test_a_tampered_upload_aborts_what_was_streamed(tmp_path: Path) -> None:
    _, ciphertext, dek, oid = _sealed(6 * SEGMENT)
    broken = bytearray(ciphertext)
    broken[4 * SEGMENT] ^= 1
    sink = _Sink(part_size=SEGMENT)
    path, verifier = tmp_path / "u1", LiveVerifier()
    path.write_bytes(bytes(broken))
    verifier.committed("u1", path, len(broken), len(broken), lambda: (dek, oid), lambda: sink)
    with pytest.raises(IntegrityError):
        verifier.finish("u1", wait_seconds=30)
    assert sink.aborted


def test_parts_are_filled_in_a_few_reused_buffers(tmp_path: Path) -> None:
    _, ciphertext, dek, oid = _sealed(40 * SEGMENT + 3)
    held: list[object] = []  # kept alive, so no two buffers can share an id

    class Recording(_Sink):
        def send(self, number: int, chunk: memoryview) -> None:
            with self._lock:
                held.append(chunk.obj)
            super().send(number, chunk)

    sink = Recording(part_size=SEGMENT)
    path, verifier = tmp_path / "u1", LiveVerifier()
    path.write_bytes(ciphertext)
    verifier.committed(
        "u1", path, len(ciphertext), len(ciphertext), lambda: (dek, oid), lambda: sink
    )
    verified = verifier.finish("u1", wait_seconds=30)
    assert verified is not None and verified.streamed is sink
    assert len(sink.parts) > 2 * (PARTS_IN_FLIGHT + 1)
    assert len({id(buffer) for buffer in held}) <= PARTS_IN_FLIGHT + 1
    assert b"".join(sink.parts[n] for n in sorted(sink.parts)) == ciphertext
