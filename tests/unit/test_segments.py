"""The segmented AES-256-GCM format: round trips, ranged reads, tampering, header checks."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable, Iterable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.crypto import segments
from evidence.crypto.segments import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    SegmentEncryptor,
    ciphertext_size,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    new_object_id,
    parse_header,
    plaintext_size,
)
from evidence.errors import IntegrityError

S = 4096  # the smallest segment size keeps the tests fast
SEALED = S + TAG_SIZE
DEK = bytes(range(32))
OTHER_DEK = bytes(range(1, 33))
OID = bytes(range(0xA0, 0xB0))
OTHER_OID = bytes(range(0xB0, 0xC0))
MESSAGE = "stored object failed authentication"
EDGE_SIZES = [0, 1, S - 1, S, S + 1, 2 * S, 2 * S + 1]

# From an independent encoder written from docs/encryption-format.md (the vectors there).
VECTOR_PLAINTEXT = bytes(i % 251 for i in range(10000))
VECTOR_HEADER = bytes.fromhex(
    "425743450101000000001000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    "fd8280232756c7646ac6d2dc881fadde580d90f0cfc744507e141e264d856a0f00000000"
)
VECTOR_SHA256 = {
    0: "a1fe926e3bd6bc01c28e75de25723cf2679a58fd713003b1e015870314a8a67f",
    8192: "db112aba739b8594d19c1aabff4fdc471f136311354186aa54fcdaf033d374c3",
    10000: "426e52820220f778c77a035ceeb4146c97b01c6ab969c180333dc183907055b9",
}


def encrypt(
    plaintext: bytes,
    dek: bytes = DEK,
    *,
    object_id: bytes = OID,
    segment_size: int = S,
    pieces: Iterable[int] = (),
) -> bytes:
    """Through SegmentEncryptor, feeding update() pieces of the given sizes, then the rest."""
    enc = SegmentEncryptor(dek, object_id=object_id, segment_size=segment_size)
    out = [enc.header()]
    view, at = memoryview(plaintext), 0
    for size in pieces:
        out.append(enc.update(view[at : at + size]))
        at += size
    out.append(enc.update(plaintext[at:]))
    out.append(enc.finalize())
    return b"".join(out)


def split(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    at = 0
    for size in sizes:
        yield data[at : at + size]
        at += size
    yield data[at:]


class RecordingSource:
    """A stored object that records every read_range call."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def read_range(self, start: int, length: int) -> bytes:
        self.reads.append((start, length))
        return self.data[start : start + length]


def pattern(size: int) -> bytes:
    """Plaintext whose segments differ, so a misplaced segment cannot pass unnoticed."""
    return b"".join(bytes([i % 256]) * S for i in range(-(-size // S)))[:size]


chunk_sizes = st.lists(st.integers(0, 3 * S), max_size=8)


# --- Round trips ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    size=st.sampled_from(EDGE_SIZES) | st.integers(0, 6 * S),
    pieces=chunk_sizes,
    reads=chunk_sizes,
    seed=st.binary(min_size=1, max_size=8),
)
def test_round_trip_with_any_chunking(
    size: int, pieces: list[int], reads: list[int], seed: bytes
) -> None:
    plaintext = (seed * (size // len(seed) + 1))[:size]
    ciphertext = encrypt(plaintext, pieces=pieces)
    assert len(ciphertext) == ciphertext_size(size, S)
    assert plaintext_size(len(ciphertext), S) == size
    out = list(decrypt_stream(split(ciphertext, reads), DEK, expected_object_id=OID))
    assert b"".join(out) == plaintext
    assert all(out)  # never an empty chunk
    assert all(len(chunk) <= S for chunk in out)  # one segment at a time


@pytest.mark.parametrize("size", [0, 1, DEFAULT_SEGMENT_SIZE, 2 * DEFAULT_SEGMENT_SIZE + 1])
def test_round_trip_with_the_default_segment_size(size: int) -> None:
    plaintext = pattern(size)
    sink = io.BytesIO()
    result = encrypt_stream(io.BytesIO(plaintext), sink, DEK)
    ciphertext = sink.getvalue()
    assert len(ciphertext) == ciphertext_size(size) == result.ciphertext_size
    assert parse_header(ciphertext).segment_size == DEFAULT_SEGMENT_SIZE
    chunks = (ciphertext[i : i + 300_000] for i in range(0, len(ciphertext), 300_000))
    assert b"".join(decrypt_stream(chunks, DEK, expected_object_id=result.object_id)) == plaintext
    a, b = max(0, size // 2 - 5), min(size, size // 2 + DEFAULT_SEGMENT_SIZE)
    got = decrypt_range(RecordingSource(ciphertext), len(ciphertext), DEK, a, b)
    assert b"".join(got) == plaintext[a:b]


@pytest.mark.parametrize("size", sorted(VECTOR_SHA256))
def test_output_matches_the_documented_vectors(size: int) -> None:
    ciphertext = encrypt(VECTOR_PLAINTEXT[:size])
    assert ciphertext[:HEADER_SIZE] == VECTOR_HEADER
    assert hashlib.sha256(ciphertext).hexdigest() == VECTOR_SHA256[size]


@pytest.mark.parametrize("size", EDGE_SIZES + [5 * S + 77])
def test_encrypt_stream_hashes_and_counts_what_it_encrypts(size: int) -> None:
    plaintext = pattern(size)
    sink = io.BytesIO()
    result = encrypt_stream(io.BytesIO(plaintext), sink, DEK, object_id=OID, segment_size=S)
    ciphertext = sink.getvalue()
    assert ciphertext == encrypt(plaintext)  # same bytes as the incremental encryptor
    assert result.object_id == OID
    assert result.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()
    assert result.plaintext_size == size
    assert result.ciphertext_size == len(ciphertext)


class Trickle(io.RawIOBase):
    """A raw stream that returns at most 1000 bytes per read, as pipes and sockets may."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        return self._src.readinto(memoryview(buffer)[:1000])


class ReadOnly:
    """A source with read() but no readinto()."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self._src.read(min(size, 777))


@pytest.mark.parametrize("wrap", [Trickle, ReadOnly])
def test_encrypt_stream_fills_segments_from_short_reads(wrap: Callable[[bytes], object]) -> None:
    plaintext = pattern(3 * S + 10)
    sink = io.BytesIO()
    result = encrypt_stream(wrap(plaintext), sink, DEK, object_id=OID, segment_size=S)
    assert sink.getvalue() == encrypt(plaintext)
    assert result.plaintext_size == len(plaintext)


def test_fresh_keys_and_object_ids_are_random() -> None:
    assert len(new_data_key()) == 32 and len(new_object_id()) == 16
    assert new_data_key() != new_data_key() and new_object_id() != new_object_id()
    enc = SegmentEncryptor(DEK, segment_size=S)
    assert len(enc.object_id) == 16 and enc.segment_size == S
    assert parse_header(enc.header()).object_id == enc.object_id


def test_the_encryptor_holds_back_a_full_segment_until_it_knows_more_follows() -> None:
    enc = SegmentEncryptor(DEK, object_id=OID, segment_size=S)
    enc.header()
    assert enc.update(bytes(S)) == b""
    assert len(enc.update(b"x")) == SEALED
    assert len(enc.finalize()) == 1 + TAG_SIZE


def test_the_encryptor_refuses_misuse() -> None:
    enc = SegmentEncryptor(DEK, segment_size=S)
    with pytest.raises(RuntimeError):
        enc.update(b"data before the header")
    enc.header()
    enc.finalize()
    with pytest.raises(RuntimeError):
        enc.update(b"more")
    with pytest.raises(RuntimeError):
        enc.finalize()
    with pytest.raises(ValueError):
        SegmentEncryptor(DEK[:31])
    with pytest.raises(ValueError):
        SegmentEncryptor(DEK, object_id=OID[:15])
    for bad in (S - 1, (64 << 20) + 1):
        with pytest.raises(ValueError):
            SegmentEncryptor(DEK, segment_size=bad)


def test_sizes_map_one_to_one_and_impossible_lengths_are_integrity_errors() -> None:
    valid = {ciphertext_size(n, S): n for n in range(3 * S + 2)}
    for length in range(max(valid) + 1):
        if length in valid:
            assert plaintext_size(length, S) == valid[length]
        else:
            with pytest.raises(IntegrityError, match=MESSAGE):
                plaintext_size(length, S)
    assert ciphertext_size(0, S) == HEADER_SIZE + TAG_SIZE
    assert ciphertext_size(2 * S, S) == HEADER_SIZE + 2 * SEALED  # full last segment
    with pytest.raises(ValueError):
        ciphertext_size(-1, S)


# --- Ranged reads --------------------------------------------------------------------------

RANGE_SIZE = 5 * S + 123
RANGE_PLAINTEXT = pattern(RANGE_SIZE)
RANGE_CIPHERTEXT = encrypt(RANGE_PLAINTEXT)


def assert_reads_cover_only(reads: list[tuple[int, int]], start: int, end: int) -> None:
    """The header once, then contiguous reads of exactly the segments holding [start, end)."""
    assert reads[0] == (0, HEADER_SIZE)
    if start == end:
        assert reads == [(0, HEADER_SIZE)]
        return
    first, last = start // S, (end - 1) // S
    lo = HEADER_SIZE + first * SEALED
    hi = min(HEADER_SIZE + (last + 1) * SEALED, len(RANGE_CIPHERTEXT))
    at = lo
    for offset, length in reads[1:]:
        assert offset == at and length > 0
        at += length
    assert at == hi


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_range_decrypts_to_the_plaintext_slice(data: st.DataObject) -> None:
    start = data.draw(st.integers(0, RANGE_SIZE))
    end = data.draw(st.integers(start, RANGE_SIZE))
    source = RecordingSource(RANGE_CIPHERTEXT)
    out = list(decrypt_range(source, len(RANGE_CIPHERTEXT), DEK, start, end))
    assert b"".join(out) == RANGE_PLAINTEXT[start:end]
    assert all(out)
    assert_reads_cover_only(source.reads, start, end)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (RANGE_SIZE - 1, RANGE_SIZE), (0, 0), (S, S), (RANGE_SIZE, RANGE_SIZE),
     (0, RANGE_SIZE), (S - 1, S + 1), (S, 2 * S)],
)  # fmt: skip
def test_edge_ranges(start: int, end: int) -> None:
    source = RecordingSource(RANGE_CIPHERTEXT)
    out = b"".join(decrypt_range(source, len(RANGE_CIPHERTEXT), DEK, start, end))
    assert out == RANGE_PLAINTEXT[start:end]
    assert_reads_cover_only(source.reads, start, end)


def test_long_ranges_are_read_a_few_mebibytes_at_a_time() -> None:
    plaintext = pattern(2500 * S)
    ciphertext = encrypt(plaintext)
    source = RecordingSource(ciphertext)
    out = decrypt_range(source, len(ciphertext), DEK, 7, len(plaintext) - 7)
    assert b"".join(out) == plaintext[7:-7]
    assert len(source.reads) > 2
    assert all(length <= 4 << 20 for _, length in source.reads)


def test_an_empty_range_still_checks_the_key() -> None:
    with pytest.raises(IntegrityError, match=MESSAGE):
        decrypt_range(RecordingSource(RANGE_CIPHERTEXT), len(RANGE_CIPHERTEXT), OTHER_DEK, 0, 0)


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 4), (0, RANGE_SIZE + 1)])
def test_ranges_outside_the_plaintext_are_value_errors(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        decrypt_range(RecordingSource(RANGE_CIPHERTEXT), len(RANGE_CIPHERTEXT), DEK, start, end)


# --- Tampering -----------------------------------------------------------------------------
# A 4-segment object (3 full segments and 100 bytes); each case names the first segment
# whose plaintext must never be yielded (0 when the header or key is wrong).

PLAINTEXT = pattern(3 * S + 100)
CIPHERTEXT = encrypt(PLAINTEXT)
SAME_KEY_OTHER_OBJECT = encrypt(pattern(3 * S + 100)[::-1], object_id=OTHER_OID)
OTHER_KEY_SAME_ID = encrypt(pattern(3 * S + 100)[::-1], OTHER_DEK)


def seg(ct: bytes, i: int) -> bytes:
    return ct[HEADER_SIZE + i * SEALED : HEADER_SIZE + (i + 1) * SEALED]


def flip(at: int) -> Callable[[bytes], bytes]:
    def tamper(ct: bytes) -> bytes:
        out = bytearray(ct)
        out[at] ^= 0x04
        return bytes(out)

    return tamper


def body(i: int) -> int:
    return HEADER_SIZE + i * SEALED


def replace_segment(i: int, donor: bytes) -> Callable[[bytes], bytes]:
    return lambda ct: ct[: body(i)] + seg(donor, i) + ct[body(i + 1) :]


TAMPERS: dict[str, tuple[Callable[[bytes], bytes], int]] = {
    "header magic": (flip(0), 0),
    "header version": (flip(4), 0),
    "header algorithm": (flip(5), 0),
    "header reserved": (flip(7), 0),
    "header segment size to another valid size": (flip(10), 0),
    "header object id": (flip(20), 0),
    "header commitment": (flip(40), 0),
    "header reserved tail": (flip(62), 0),
    "header of another object under the same key": (
        lambda ct: SAME_KEY_OTHER_OBJECT[:HEADER_SIZE] + ct[HEADER_SIZE:],
        0,
    ),
    "body byte of segment 0": (flip(body(0) + 5), 0),
    "body byte of segment 1": (flip(body(1) + 100), 1),
    "tag of segment 1": (flip(body(2) - 3), 1),
    "body byte of the final segment": (flip(body(3) + 50), 3),
    "tag of the final segment": (flip(len(CIPHERTEXT) - 1), 3),
    "truncated at a segment boundary": (lambda ct: ct[: body(3)], 2),
    "truncated mid-segment": (lambda ct: ct[: body(2) + 1000], 2),
    "truncated into the final tag": (lambda ct: ct[:-5], 3),
    "truncated to the header": (lambda ct: ct[:HEADER_SIZE], 0),
    "truncated to 30 bytes": (lambda ct: ct[:30], 0),
    "truncated to nothing": (lambda ct: b"", 0),
    "middle segment dropped": (lambda ct: ct[: body(1)] + ct[body(2) :], 1),
    "segments swapped": (lambda ct: ct[: body(1)] + seg(ct, 2) + seg(ct, 1) + ct[body(3) :], 1),
    "segment from another object, same key": (replace_segment(1, SAME_KEY_OTHER_OBJECT), 1),
    "segment from another object, other key": (replace_segment(1, OTHER_KEY_SAME_ID), 1),
    "garbage appended": (lambda ct: ct + b"garbage", 3),
    "a tag's worth appended": (lambda ct: ct + bytes(TAG_SIZE), 3),
    "a sealed segment's worth appended": (lambda ct: ct + bytes(SEALED), 3),
    "a valid segment appended": (lambda ct: ct + seg(ct, 1), 3),
    "another object's final segment appended": (
        lambda ct: ct + SAME_KEY_OTHER_OBJECT[body(3) :],
        3,
    ),
}


def drain(chunks: Iterator[bytes], out: list[bytes]) -> None:
    for chunk in chunks:
        out.append(chunk)


def assert_rejected(run: Callable[[list[bytes]], None], start: int, bad_segment: int) -> None:
    """run raises the generic IntegrityError, having yielded only plaintext that precedes
    the tampered segment, at the right place."""
    out: list[bytes] = []
    with pytest.raises(IntegrityError) as caught:
        run(out)
    assert str(caught.value) == MESSAGE
    # Nothing chained either: no InvalidTag or struct error in a logged traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    got = b"".join(out)
    assert got == PLAINTEXT[start : start + len(got)]
    assert start + len(got) <= bad_segment * S


@pytest.mark.parametrize("name", list(TAMPERS))
@pytest.mark.parametrize("chunk", [1000, SEALED, 1 << 20])
def test_tampered_objects_fail_decrypt_stream(name: str, chunk: int) -> None:
    tamper, bad = TAMPERS[name]
    ct = tamper(CIPHERTEXT)
    chunks = [ct[i : i + chunk] for i in range(0, len(ct), chunk)]
    assert_rejected(lambda out: drain(decrypt_stream(chunks, DEK), out), 0, bad)


@pytest.mark.parametrize("name", list(TAMPERS))
@pytest.mark.parametrize("whole", [True, False])
def test_tampered_objects_fail_decrypt_range(name: str, whole: bool) -> None:
    tamper, bad = TAMPERS[name]
    ct = tamper(CIPHERTEXT)
    start = 0 if whole else bad * S  # from the start, or just the tampered segment
    end = len(PLAINTEXT) if whole else min(bad * S + 1, len(PLAINTEXT))

    def run(out: list[bytes]) -> None:
        # The tampered object's own length, as the store would report it.
        length = len(ct)
        try:
            stop = min(end, plaintext_size(length, S))
        except IntegrityError:
            stop = end
        drain(decrypt_range(RecordingSource(ct), length, DEK, start, stop), out)

    assert_rejected(run, start, bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: list(decrypt_stream([CIPHERTEXT], OTHER_DEK)),
        lambda: list(decrypt_stream([CIPHERTEXT], DEK, expected_object_id=OTHER_OID)),
        lambda: decrypt_range(RecordingSource(CIPHERTEXT), len(CIPHERTEXT), OTHER_DEK, 0, 9),
        lambda: decrypt_range(
            RecordingSource(CIPHERTEXT), len(CIPHERTEXT), DEK, 0, 9, expected_object_id=OTHER_OID
        ),
        lambda: list(decrypt_stream([], DEK)),
        lambda: list(decrypt_stream([b""], DEK)),
    ],
    ids=["stream wrong key", "stream wrong id", "range wrong key", "range wrong id",
         "stream no input", "stream empty chunk"],
)  # fmt: skip
def test_wrong_keys_ids_and_empty_input_fail_generically(call: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError) as caught:
        call()
    assert str(caught.value) == MESSAGE


def test_decrypt_stream_checks_the_key_before_reading_segments() -> None:
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(CIPHERTEXT), 50):
            pulled.append(i)
            yield CIPHERTEXT[i : i + 50]

    with pytest.raises(IntegrityError):
        decrypt_stream(chunks(), OTHER_DEK)  # raised before any iteration
    assert len(pulled) == 2  # just enough for the 64-byte header


class ShortSource(RecordingSource):
    """A store whose object is shorter than the size the caller was told."""

    def read_range(self, start: int, length: int) -> bytes:
        return super().read_range(start, length)[: max(0, len(self.data) - 100 - start)]


def test_a_range_read_that_comes_back_short_fails() -> None:
    source = ShortSource(CIPHERTEXT)
    out: list[bytes] = []
    with pytest.raises(IntegrityError, match=MESSAGE):
        out.extend(decrypt_range(source, len(CIPHERTEXT), DEK, 0, len(PLAINTEXT)))
    assert out == []  # the one read covering every segment came back short


def test_a_tampered_range_is_only_detected_where_it_is_read() -> None:
    ct = flip(body(2) + 10)(CIPHERTEXT)
    out = decrypt_range(RecordingSource(ct), len(ct), DEK, 0, 2 * S)
    assert b"".join(out) == PLAINTEXT[: 2 * S]  # segments 0 and 1 are authentic


# --- Header parsing ------------------------------------------------------------------------


def header(**fields: object) -> bytes:
    values: dict[str, object] = {
        "magic": b"BWCE",
        "version": 1,
        "algorithm": 1,
        "reserved": 0,
        "size": S,
        "oid": OID,
        "commitment": bytes(32),
        "tail": 0,
    }
    values.update(fields)
    return struct.pack(">4sBBHI16s32sI", *values.values())


def test_a_well_formed_header_parses() -> None:
    parsed = parse_header(header(size=1 << 26, commitment=b"c" * 32) + b"ignored")
    assert (parsed.segment_size, parsed.object_id, parsed.commitment) == (1 << 26, OID, b"c" * 32)


@pytest.mark.parametrize(
    "bad",
    [
        {"magic": b"BWCF"},
        {"version": 2},
        {"version": 0},
        {"algorithm": 2},
        {"reserved": 1},
        {"reserved": 0x100},
        {"tail": 1},
        {"size": 0},
        {"size": S - 1},
        {"size": (64 << 20) + 1},
        {"size": 0xFFFFFFFF},
    ],
    ids=repr,
)
def test_malformed_headers_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(IntegrityError, match=MESSAGE):
        parse_header(header(**bad))


def test_a_short_header_is_rejected() -> None:
    with pytest.raises(IntegrityError, match=MESSAGE):
        parse_header(header()[:-1])


def test_the_module_keeps_the_documented_constants() -> None:
    assert (HEADER_SIZE, TAG_SIZE, DEFAULT_SEGMENT_SIZE) == (64, 16, 1 << 20)
    assert (segments.MIN_SEGMENT_SIZE, segments.MAX_SEGMENT_SIZE) == (4096, 64 << 20)
