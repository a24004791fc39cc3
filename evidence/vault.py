"""Reading encrypted objects back: whole-object fixity and ranged plaintext reads.

Pure core: it reaches storage only through the `ObjectStore` port and never sees a
wrapped key; callers hand it the data key they unwrapped for this one read."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from evidence.crypto import segments
from evidence.errors import IntegrityError
from evidence.ports import ObjectStore

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class EncryptedObject:
    """Where an item's ciphertext is and what the header must say about it."""

    key: str
    object_id: bytes
    stored_size: int


@dataclass(frozen=True)
class Digest:
    """What decrypting a whole object produced: plaintext SHA-256 (hex) and byte count,
    and the SHA-256 of the ciphertext read."""

    sha256: str
    size: int
    stored_sha256: str
    stored_size: int


def original_key(evidence_id: str) -> str:
    """Object key of an original: made from our own random id, never a camera name."""
    return f"originals/{evidence_id}"


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


def digest_object(store: ObjectStore, obj: EncryptedObject, dek: bytes) -> Digest:
    """Read the whole stored object once, authenticate every segment and hash both sides.

    Trusts nothing stored: a flipped byte, a truncation, a swapped or restored object
    raises IntegrityError. The stored size is compared too, so an object that grew
    (appended bytes) fails even if a decoder ignored the tail."""
    return digest_chunks(store.iter_bytes(obj.key), dek, obj.object_id, obj.stored_size)


def digest_chunks(
    chunks: Iterable[bytes | memoryview],
    dek: bytes,
    object_id: bytes,
    stored_size: int,
    *,
    hash_stored: bool = True,
) -> Digest:
    """`digest_object` for ciphertext arriving as chunks from anywhere (a stored object,
    or a staged upload read back from its file as it grows).

    Exactly `stored_size` bytes must arrive: any other count, a segment that fails
    authentication or a header naming another object raises IntegrityError. With
    `hash_stored=False` the ciphertext is not hashed (`stored_sha256` is empty): for a
    caller that hashed those very bytes already, as they were written."""
    stored_hash = hashlib.sha256()
    counted_size = 0

    def counted() -> Iterator[bytes | memoryview]:
        nonlocal counted_size
        for chunk in chunks:
            if hash_stored:
                stored_hash.update(chunk)
            counted_size += len(chunk)
            yield chunk

    plain_hash = hashlib.sha256()
    size = 0
    for piece in segments.decrypt_stream(counted(), dek, expected_object_id=object_id):
        plain_hash.update(piece)
        size += len(piece)
    if counted_size != stored_size:
        raise IntegrityError("stored object failed authentication")
    stored_sha256 = stored_hash.hexdigest() if hash_stored else ""
    return Digest(plain_hash.hexdigest(), size, stored_sha256, counted_size)


class _StoreRange:
    def __init__(self, store: ObjectStore, key: str) -> None:
        self._store = store
        self._key = key

    def read_range(self, start: int, length: int) -> bytes:
        return self._store.read_range(self._key, start, length)


def check_stored_size(store: ObjectStore, obj: EncryptedObject) -> None:
    """IntegrityError unless the store holds exactly the object's recorded size."""
    if store.size(obj.key) != obj.stored_size:
        raise IntegrityError("stored object failed authentication")


def read_plaintext(
    store: ObjectStore,
    obj: EncryptedObject,
    dek: bytes,
    start: int,
    end: int,
    *,
    size_checked: bool = False,
) -> Iterator[bytes]:
    """Plaintext bytes [start, end), decrypting only the segments that cover them.

    The ciphertext length comes from our database, not from the store, so a truncated
    object cannot make us treat an inner segment as the last one. The stored object's
    size is compared with it first, unless `size_checked` (a caller reading one object
    many times, that compared it already)."""
    if not size_checked:
        check_stored_size(store, obj)
    return segments.decrypt_range(
        _StoreRange(store, obj.key),
        obj.stored_size,
        dek,
        start,
        end,
        expected_object_id=obj.object_id,
    )
