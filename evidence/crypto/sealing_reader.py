"""Plaintext in, ciphertext out, as a readable file: for stores that pull from a source.

`ObjectStore.put` reads its source; a derivative made on the service (a playback proxy)
is plaintext that must be sealed on the way in. This wraps the plaintext file and
yields the segmented format (header, sealed segments) as it is read, hashing the
plaintext as it goes, so nothing but ciphertext is ever written anywhere."""

from __future__ import annotations

import hashlib
import io
from typing import Protocol

from evidence.crypto.segments import DEFAULT_SEGMENT_SIZE, SegmentEncryptor, ciphertext_size


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class SealingReader(io.RawIOBase):
    """Reads as the ciphertext of `plain` (read from its current position to its end)."""

    def __init__(
        self,
        plain: _Readable,
        plain_size: int,
        dek: bytes,
        *,
        object_id: bytes | None = None,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        super().__init__()
        self._plain = plain
        self._encryptor = SegmentEncryptor(dek, object_id=object_id, segment_size=segment_size)
        self._segment_size = segment_size
        self._pending = bytearray(self._encryptor.header())
        self._hash = hashlib.sha256()
        self._plain_read = 0
        self._done = False
        self.expected_size = ciphertext_size(plain_size, segment_size)

    @property
    def object_id(self) -> bytes:
        return self._encryptor.object_id

    @property
    def plaintext_sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def plaintext_size(self) -> int:
        return self._plain_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._done:
            chunk = self._plain.read(self._segment_size)
            if chunk:
                self._hash.update(chunk)
                self._plain_read += len(chunk)
                self._pending += self._encryptor.update(chunk)
            else:
                self._pending += self._encryptor.finalize()
                self._done = True
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        del self._pending[:n]
        return n
