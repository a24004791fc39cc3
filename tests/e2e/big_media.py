"""Large plaintext generated on the fly: never held in memory or written to disk whole."""

from __future__ import annotations

import hashlib
import io
import os


class GeneratedMedia(io.RawIOBase):
    """`size` bytes of incompressible data: a random 1 MiB block, each MiB stamped with
    its index so no two MiB are equal. Streams through readinto in O(1) memory."""

    BLOCK = 1024 * 1024

    def __init__(self, size: int, seed: bytes | None = None) -> None:
        self.size = size
        self.position = 0
        self._block = bytearray(seed or os.urandom(self.BLOCK))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self.position)
        done = 0
        while done < want:
            index, offset = divmod(self.position, self.BLOCK)
            self._block[:8] = index.to_bytes(8, "big")
            take = min(self.BLOCK - offset, want - done)
            view[done : done + take] = self._block[offset : offset + take]
            done += take
            self.position += take
        return done


def sha256_of(size: int, seed: bytes) -> str:
    digest = hashlib.sha256()
    stream = GeneratedMedia(size, seed)
    buffer = bytearray(8 * 1024 * 1024)
    while n := stream.readinto(memoryview(buffer)):
        digest.update(memoryview(buffer)[:n])
    return digest.hexdigest()
