"""A read-only, seekable file over an encrypted object, decrypting only what is read.

Demuxers (PyAV/FFmpeg) want a file: they read the header, seek to the index (often at
the end of a camera's MP4) and then read on. This gives them one without a plaintext
copy anywhere: each read decrypts and authenticates just the segments it covers, through
`evidence.vault.read_plaintext`: 1 MiB at first (a probe reads only a file's head and
its index), doubling up to 4 MiB while reads go on in order. The stored object's size
is checked against the recorded one once, at the first read."""

from __future__ import annotations

import io

from evidence import vault as vault_core
from evidence.ports import ObjectStore

_FIRST_WINDOW = 1024 * 1024
_WINDOW = 4 * 1024 * 1024


class PlaintextReader(io.RawIOBase):
    """The plaintext of one stored object as a seekable binary file.

    Every byte returned was authenticated; a failed segment raises `IntegrityError`
    from the read that reaches it. Memory: one window of at most about 4 MiB."""

    def __init__(
        self, store: ObjectStore, obj: vault_core.EncryptedObject, dek: bytes, size: int
    ) -> None:
        super().__init__()
        self._store, self._obj, self._dek, self._size = store, obj, dek, size
        self._pos = 0
        self._window_start = 0
        self._window = b""
        self._span = _FIRST_WINDOW
        self._size_checked = False

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"unknown whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        offset = self._pos - self._window_start
        if not 0 <= offset < len(self._window):
            self._fill(self._pos)
            offset = self._pos - self._window_start
        n = min(len(view), len(self._window) - offset)
        view[:n] = self._window[offset : offset + n]
        self._pos += n
        return n

    def _fill(self, at: int) -> None:
        if not self._size_checked:
            vault_core.check_stored_size(self._store, self._obj)
            self._size_checked = True
        in_order = self._window and at == self._window_start + len(self._window)
        self._span = min(_WINDOW, self._span * 2) if in_order else _FIRST_WINDOW
        end = min(self._size, at + self._span)
        pieces = vault_core.read_plaintext(
            self._store, self._obj, self._dek, at, end, size_checked=True
        )
        self._window = b"".join(pieces)
        self._window_start = at
