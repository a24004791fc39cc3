"""Playback media: the encrypted scratch file, the sealing reader, the decrypting reader,
probing what browsers play, and making a proxy from an HEVC original."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence import vault as vault_core
from evidence.adapters.local_store import LocalObjectStore
from evidence.crypto import segments
from evidence.crypto.sealing_reader import SealingReader
from evidence.errors import IntegrityError
from evidence.media.probe import MediaError, has_index_first, probe, top_level_boxes
from evidence.media.reader import PlaintextReader
from evidence.media.scratch import EncryptedScratch
from evidence.media.transcode import make_proxy
from tests.media_factory import make_clip

# --- the scratch file -----------------------------------------------------------------

_writes = st.lists(
    st.tuples(st.integers(0, 5000), st.binary(min_size=0, max_size=700)), max_size=25
)


@settings(max_examples=60, deadline=None)
@given(writes=_writes, reads=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 900))))
def test_scratch_reads_back_what_was_written_at_any_offset(
    tmp_path_factory: pytest.TempPathFactory,
    writes: list[tuple[int, bytes]],
    reads: list[tuple[int, int]],
) -> None:
    model = bytearray()
    with EncryptedScratch(tmp_path_factory.mktemp("scratch")) as scratch:
        for offset, data in writes:
            scratch.seek(offset)
            scratch.write(data)
            if offset > len(model):
                model.extend(bytes(offset - len(model)))
            model[offset : offset + len(data)] = data
        assert scratch.seek(0, io.SEEK_END) == len(model)
        for offset, length in reads:
            scratch.seek(offset)
            assert scratch.read(length) == bytes(model[offset : offset + length])


def test_scratch_leaves_no_name_and_no_plaintext_on_disk(tmp_path: Path) -> None:
    secret = b"footage of a pupil " * 4096
    with EncryptedScratch(tmp_path) as scratch:
        scratch.write(secret)
        assert list(tmp_path.iterdir()) == []  # unlinked at once
        on_disk = os.pread(scratch._fd, len(secret), 0)
        assert len(on_disk) == len(secret) and b"footage" not in on_disk
        scratch.seek(0)
        assert scratch.read() == secret


# --- sealing and reading back ---------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 50_000])
def test_sealing_reader_yields_the_segmented_format_of_its_source(size: int) -> None:
    plaintext = os.urandom(size)
    dek = segments.new_data_key()
    sealed = SealingReader(io.BytesIO(plaintext), size, dek, segment_size=4096)
    ciphertext = b""
    while chunk := sealed.read(777):
        ciphertext += chunk
    assert len(ciphertext) == sealed.expected_size
    assert sealed.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()
    opened = b"".join(
        segments.decrypt_stream([ciphertext], dek, expected_object_id=sealed.object_id)
    )
    assert opened == plaintext


def _stored(
    tmp_path: Path, plaintext: bytes
) -> tuple[LocalObjectStore, vault_core.EncryptedObject, bytes]:
    store = LocalObjectStore(tmp_path / "objects")
    dek = segments.new_data_key()
    sealed = SealingReader(io.BytesIO(plaintext), len(plaintext), dek, segment_size=4096)
    store.put("derivatives/t1", sealed, size=sealed.expected_size)  # type: ignore[arg-type]
    return (
        store,
        vault_core.EncryptedObject("derivatives/t1", sealed.object_id, sealed.expected_size),
        dek,
    )


def test_plaintext_reader_seeks_and_reads_any_slice(tmp_path: Path) -> None:
    plaintext = os.urandom(30_000)
    store, obj, dek = _stored(tmp_path, plaintext)
    reader = PlaintextReader(store, obj, dek, len(plaintext))
    for start, length in [(0, 10), (4090, 20), (29_990, 50), (12_345, 9000), (30_000, 5)]:
        reader.seek(start)
        assert reader.read(length) == plaintext[start : start + length]
    reader.seek(-100, io.SEEK_END)
    assert reader.read() == plaintext[-100:]


class _CountingStore:
    """A store that counts size look-ups and the bytes of ranged reads."""

    def __init__(self, store: LocalObjectStore) -> None:
        self._store = store
        self.sizes = 0
        self.ranges: list[int] = []

    def size(self, key: str) -> int:
        self.sizes += 1
        return self._store.size(key)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        self.ranges.append(length)
        return self._store.read_range(key, start, length)


def test_plaintext_reader_reads_a_small_head_first_and_checks_the_size_once(
    tmp_path: Path,
) -> None:
    """A probe reads a file's head and its index: the first window is 1 MiB, not the
    4 MiB that reads in order grow to; the stored size is looked up once per reader."""
    plaintext = os.urandom(9 * 1024 * 1024 + 7)
    store, obj, dek = _stored(tmp_path, plaintext)
    counting = _CountingStore(store)
    reader = PlaintextReader(counting, obj, dek, len(plaintext))  # type: ignore[arg-type]
    assert reader.read(32 * 1024) == plaintext[: 32 * 1024]
    assert sum(counting.ranges) <= 1024 * 1024 + 2 * 4096 + 64  # 1 MiB and its segments
    reader.seek(0)
    assert reader.read() == plaintext  # in order: windows grow, every byte still right
    reader.seek(len(plaintext) - 100)
    assert reader.read() == plaintext[-100:]
    assert counting.sizes == 1


def test_plaintext_reader_refuses_a_truncated_object_at_its_first_read(tmp_path: Path) -> None:
    plaintext = os.urandom(30_000)
    store, obj, dek = _stored(tmp_path, plaintext)
    path = tmp_path / "objects" / "derivatives" / "t1.obj"
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:-1])
    reader = PlaintextReader(store, obj, dek, len(plaintext))
    with pytest.raises(IntegrityError):
        reader.read(10)


def test_plaintext_reader_refuses_a_tampered_object(tmp_path: Path) -> None:
    plaintext = os.urandom(30_000)
    store, obj, dek = _stored(tmp_path, plaintext)
    path = tmp_path / "objects" / "derivatives" / "t1.obj"
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[segments.HEADER_SIZE + 5000] ^= 1
    path.write_bytes(bytes(data))
    reader = PlaintextReader(store, obj, dek, len(plaintext))
    reader.seek(4500)
    with pytest.raises(IntegrityError):
        reader.read(10)
    reader.seek(0)  # a window reaching the flipped segment gives nothing, not a prefix
    with pytest.raises(IntegrityError):
        reader.read(100)


# --- probing --------------------------------------------------------------------------


def _probe(data: bytes):  # type: ignore[no-untyped-def]
    return probe(io.BytesIO(data), len(data))


def test_hevc_with_its_index_last_does_not_play_in_browsers() -> None:
    found = _probe(make_clip(codec="libx265"))
    assert not found.plays_in_browsers
    assert found.video_codec == "hevc" and found.faststart is False
    assert "HEVC" in found.reason and "faststart" in found.reason


def test_h264_with_its_index_first_plays_as_it_is() -> None:
    found = _probe(make_clip(codec="libx264", faststart=True))
    assert found.plays_in_browsers and found.faststart is True
    assert found.video_codec == "h264" and found.audio_codec == "aac"


def test_h264_with_its_index_last_needs_a_proxy() -> None:
    found = _probe(make_clip(codec="libx264", faststart=False))
    assert not found.plays_in_browsers and found.reason.startswith("its index at the end")


@pytest.mark.parametrize(
    "data",
    [b"", b"not a video at all" * 100, os.urandom(5000), make_clip()[:3000]],
    ids=["empty", "text", "noise", "truncated"],
)
def test_what_is_not_a_readable_recording_is_a_media_error(data: bytes) -> None:
    with pytest.raises(MediaError):
        _probe(data)


class _Counting(io.BytesIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        piece = super().read(size)
        self.read_bytes += len(piece)
        return piece


def test_a_file_of_noise_is_refused_after_a_bounded_read() -> None:
    """Telling a container apart reads at most a bounded head of the file (FFmpeg would
    try every demuxer over 1 MiB of noise, about 90 ms of CPU, for each upload)."""
    noise = _Counting(os.urandom(4 << 20))
    with pytest.raises(MediaError):
        probe(noise, len(noise.getbuffer()))
    assert 0 < noise.read_bytes <= 512 * 1024


def test_a_bounded_probe_still_reads_a_recording_with_its_index_last() -> None:
    clip = make_clip(codec="libx264", faststart=False)
    found = probe(io.BytesIO(clip), len(clip))
    assert found.video_codec == "h264"
    assert found.faststart is False


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x04moov" + b"\x00" * 20,  # size smaller than its header
        b"\xff\xff\xff\xffmoov" + b"\x00" * 20,  # runs past the end
        b"\x00\x00\x00\x01mdat" + b"\xff" * 8,  # 64-bit size past the end
        b"\x00\x00\x00\x08free" * 20_000,  # more boxes than the walk allows
    ],
)
def test_the_box_walk_stops_on_hostile_sizes(data: bytes) -> None:
    boxes = top_level_boxes(io.BytesIO(data), len(data))
    assert len(boxes) <= 10_000
    assert not has_index_first(io.BytesIO(data), len(data))


# --- making a proxy -------------------------------------------------------------------


def test_an_hevc_original_becomes_h264_with_its_index_first_and_1s_keyframes(
    tmp_path: Path,
) -> None:
    original = make_clip(codec="libx265", seconds=3.0, fps=10)
    with EncryptedScratch(tmp_path) as scratch:
        info = make_proxy(io.BytesIO(original), len(original), scratch)
        scratch.seek(0)
        proxy = scratch.read()
    found = _probe(proxy)
    assert found.plays_in_browsers and found.faststart is True
    assert (found.video_codec, found.audio_codec) == ("h264", "aac")
    assert info.frames == 30 and abs(found.duration_seconds - 3.0) < 0.2  # type: ignore[operator]
    with av.open(io.BytesIO(proxy)) as container:
        stream = container.streams.video[0]
        keys = [
            float(p.pts * stream.time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.is_keyframe
        ]
    assert keys == pytest.approx([0.0, 1.0, 2.0], abs=0.01)


def test_odd_sizes_are_made_even_and_large_pictures_scaled_down(tmp_path: Path) -> None:
    original = make_clip(codec="libx265", width=322, height=182, seconds=1.0)
    with EncryptedScratch(tmp_path) as scratch:
        info = make_proxy(io.BytesIO(original), len(original), scratch, max_height=90)
    assert (info.width, info.height) == (158, 90)  # 322x182 scaled to 159.2x90, made even


def test_a_recording_without_video_makes_no_proxy(tmp_path: Path) -> None:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        sound = container.add_stream("aac", rate=16000, layout="mono")
        for packet in sound.encode():
            container.mux(packet)
    data = out.getvalue()
    with EncryptedScratch(tmp_path) as scratch, pytest.raises(MediaError):
        make_proxy(io.BytesIO(data), len(data), scratch)
