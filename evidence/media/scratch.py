"""A scratch file whose bytes on disk are encrypted under a key that lives only in memory.

A muxer writing an MP4 seeks back to patch sizes and to put the index up front, so it
needs a random-access file, and footage may not sit on disk in plaintext. The file is
unlinked as soon as it is created (nothing survives a crash), and what is written is
AES-256-CTR under a random key and counter base held by this object alone, so the
blocks left on disk are unreadable once it is gone. CTR allows writes and reads at any
offset. Integrity is not this file's job: whatever is read from it is hashed and sealed
into the segmented format afterwards, and the result is checked by decoding it."""

from __future__ import annotations

import io
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 16


class EncryptedScratch(io.RawIOBase):
    """Readable, writable, seekable; removed from the directory the moment it opens."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".scratch-")
        os.unlink(name)
        self._fd = fd
        self._key = secrets.token_bytes(32)
        self._base = int.from_bytes(secrets.token_bytes(8), "big") << 64
        self._pos = 0
        self._size = 0

    def _transform(self, offset: int, data: bytes | memoryview) -> bytes:
        block, skip = divmod(offset, _BLOCK)
        counter = ((self._base + block) % (1 << 128)).to_bytes(16, "big")
        xor = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
        if skip:
            xor.update(bytes(skip))
        return xor.update(data)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"unknown whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        if self._pos > self._size:  # a gap reads back as zeros, like a sparse file
            self._write_at(self._size, bytes(self._pos - self._size))
        self._write_at(self._pos, view)
        self._pos += len(view)
        return len(view)

    def _write_at(self, offset: int, data: bytes | memoryview) -> None:
        sealed = self._transform(offset, data)
        done = 0
        while done < len(sealed):
            done += os.pwrite(self._fd, sealed[done:], offset + done)
        self._size = max(self._size, offset + len(sealed))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = min(len(view), max(0, self._size - self._pos))
        if n == 0:
            return 0
        raw = os.pread(self._fd, n, self._pos)
        view[: len(raw)] = self._transform(self._pos, raw)
        self._pos += len(raw)
        return len(raw)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self._key = b""
        super().close()
