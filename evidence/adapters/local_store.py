"""ObjectStore on a local folder: the embedded default, write-once files under one root."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from evidence.errors import NotAdoptable, ObjectExists, ObjectMissing, StorageError
from evidence.ports import StoredObject

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9/_-]{0,199}")

_OBJ = ".obj"
_RETAIN = ".retain"
_TMP = ".tmp-"
_LOCK = ".lock"
_CHUNK = 1024 * 1024
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a file belongs must not hang the open; it is refused
# by the S_ISREG check instead. It changes nothing for regular files.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW


def check_key(key: str) -> list[str]:
    """The key's path parts, or `StorageError` if it is not a well-formed store key.

    Keys come from the service, never from cameras, but a key is also a file path here:
    the pattern leaves no room for `.`, `..`, absolute paths or empty parts, and we check
    the parts once more so that a loosened pattern cannot open a traversal."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise StorageError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        raise StorageError(f"invalid object key {key!r}")
    return parts


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("retention times must be timezone-aware")
    return when.astimezone(UTC)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LocalObjectStore:
    """Objects as files `root/<key>.obj`, written once, with retention in `<key>.retain`.

    Every path is walked from root one directory at a time with O_NOFOLLOW, so a symlink
    planted anywhere under root is refused rather than followed. Files are 0600 and
    directories 0700. A put streams into a temp file beside its target, fsyncs it and
    then hard-links it into place: `link` never replaces an existing name, which makes the
    write-once check and the publication a single atomic step.

    Threat model: retention here is a promise of this process only. Anyone who can write
    to root (an administrator, malware running as the service user) can delete or
    truncate files; a local folder cannot give the hard guarantee S3 Object Lock
    COMPLIANCE gives. Use S3 with Object Lock where deletion must be impossible."""

    def __init__(self, root: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create store root {root}: {exc.strerror}") from exc
        self._root = root
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- writing ------------------------------------------------------------------------

    def put(
        self,
        key: str,
        src: BinaryIO,
        *,
        size: int | None = None,
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Copy src into the store under key; complete or absent, never partial.

        `size`, when given, must equal the byte count read or nothing is stored (a
        truncated upload hashes cleanly too). Exceptions raised by src propagate
        unchanged after the temp file is removed."""
        parts = check_key(key)
        until = _utc(retain_until) if retain_until is not None else None
        with self._dir(parts[:-1], create=True) as dfd:
            tmp = self._temp_name()
            try:
                fd = self._create(dfd, tmp)
                try:
                    digest, count = self._copy(src, fd, size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._check_size(key, size, count)
                self._publish(dfd, tmp, parts[-1], until)
            finally:
                self._discard(dfd, tmp)
        logger.debug("stored %s (%d bytes)", key, count)
        return StoredObject(key=key, size=count, sha256=digest)

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        size: int | None = None,
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Move the file at path into the store under key, by hard link when possible.

        Used to finalise a staged upload without rewriting it. The source is hashed,
        fsynced, linked into place and then unlinked; across filesystems (or when the
        source has other hard links, through which it could still be changed) it is
        copied instead. Either way the source path is gone on success.

        Threat model: the staging file must belong to this service alone. A writer that
        still holds it open can change the bytes after we hash them; the encryption
        layer's authentication tags are what catch that later."""
        return self._move_file(key, path, size, retain_until, known=None)

    def adopt_file(
        self,
        key: str,
        path: Path,
        *,
        size: int,
        sha256: str,
        inode: tuple[int, int],
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Link a file the caller has already read back in full (and hashed: `sha256`,
        `size`, of the file whose (st_dev, st_ino) is `inode`) into place under key,
        without reading it again; that inode becomes the object, so what the caller
        verified is what is stored.

        `NotAdoptable` when that cannot be (another filesystem, other hard links, another
        inode or size at path): nothing is stored and the file stays where it is; the
        caller then stores it with `put_file` and reads the stored object back."""
        return self._move_file(key, path, size, retain_until, known=(sha256, inode))

    def _move_file(
        self,
        key: str,
        path: Path,
        size: int | None,
        retain_until: datetime | None,
        *,
        known: tuple[str, tuple[int, int]] | None,
    ) -> StoredObject:
        parts = check_key(key)
        until = _utc(retain_until) if retain_until is not None else None
        try:
            sfd = os.open(path, _READ_FLAGS)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"staged file {path} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot open staged file {path}: {exc.strerror}") from exc
        try:
            st = os.fstat(sfd)
            if not stat.S_ISREG(st.st_mode):
                raise StorageError(f"staged file {path} is not a regular file")
            with self._dir(parts[:-1], create=True) as dfd:
                linkable = st.st_nlink == 1 and st.st_dev == os.fstat(dfd).st_dev
                same = known is not None and known[1] == (st.st_dev, st.st_ino)
                if known is not None and (not linkable or not same or st.st_size != size):
                    raise NotAdoptable(f"staged file {path.name} cannot be adopted as it is")
                if not linkable:
                    return self._copy_file(key, sfd, path, size, retain_until)
                try:
                    if known is None:
                        digest, count = self._hash_fd(sfd)
                    else:
                        digest, count = known[0], st.st_size
                    os.fchmod(sfd, 0o600)  # private before it is visible in the store
                    os.fsync(sfd)
                except OSError as exc:
                    raise StorageError(f"cannot read staged file {path}") from exc
                self._check_size(key, size, count)
                try:
                    self._publish(dfd, path, parts[-1], until, expect=st)
                except _CrossDevice:
                    if known is not None:
                        raise NotAdoptable(f"staged file {path.name} is elsewhere") from None
                    return self._copy_file(key, sfd, path, size, retain_until)
                self._unlink_source(path)
        finally:
            os.close(sfd)
        logger.debug("moved %s into place as %s (%d bytes)", path.name, key, count)
        return StoredObject(key=key, size=count, sha256=digest)

    def extend_retention(self, key: str, until: datetime) -> None:
        """Retain the object until at least `until`; a later recorded date stays (asking
        for less is a no-op, not an error)."""
        parts = check_key(key)
        until = _utc(until)
        with self._dir(parts[:-1], create=False) as dfd, self._locked():
            self._stat_object(dfd, parts[-1], key)
            current = self._retention(dfd, parts[-1])
            if current is not None and until <= current:
                return
            self._write_retention(dfd, parts[-1], until)
            os.fsync(dfd)

    def delete(self, key: str) -> None:
        """Remove an unretained object; `StorageError` while its retention holds."""
        parts = check_key(key)
        try:
            with self._dir(parts[:-1], create=False) as dfd, self._locked():
                name = parts[-1]
                self._stat_object(dfd, name, key)
                current = self._retention(dfd, name)
                if current is not None and self._clock() < current:
                    raise StorageError(f"{key} is retained until {current.isoformat()}")
                try:
                    os.unlink(name + _OBJ, dir_fd=dfd)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name + _RETAIN, dir_fd=dfd)
                    os.fsync(dfd)
                except OSError as exc:
                    raise StorageError(f"cannot delete {key}: {exc.strerror}") from exc
        except ObjectMissing:
            return

    # --- reading ------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        parts = check_key(key)
        try:
            with self._dir(parts[:-1], create=False) as dfd:
                self._stat_object(dfd, parts[-1], key)
        except ObjectMissing:
            return False
        return True

    def retained_until(self, key: str) -> datetime | None:
        """The recorded retention time of the object, or None."""
        parts = check_key(key)
        with self._dir(parts[:-1], create=False) as dfd:
            self._stat_object(dfd, parts[-1], key)
            return self._retention(dfd, parts[-1])

    def size(self, key: str) -> int:
        fd = self._open_object(key)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to length bytes from start; b"" from the end of the object onwards."""
        if start < 0 or length < 0:
            raise ValueError("start and length must not be negative")
        fd = self._open_object(key)
        try:
            pieces: list[bytes] = []
            offset, remaining = start, length
            while remaining:
                piece = os.pread(fd, min(remaining, 8 * _CHUNK), offset)
                if not piece:
                    break
                pieces.append(piece)
                offset += len(piece)
                remaining -= len(piece)
            return b"".join(pieces)
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def iter_bytes(self, key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        """The object in chunks; opened now, so `ObjectMissing` is raised by this call."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # A FileIO, so that an iterator dropped unstarted still closes its fd when collected.
        return self._chunks(key, io.FileIO(self._open_object(key), "r"), chunk_size)

    # --- internals ----------------------------------------------------------------------

    @staticmethod
    def _chunks(key: str, src: io.FileIO, chunk_size: int) -> Iterator[bytes]:
        with src:
            try:
                while chunk := src.read(chunk_size):
                    yield chunk
            except OSError as exc:
                raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def _dir(self, parts: list[str], *, create: bool) -> Iterator[int]:
        """An fd on root/parts, walked without following symlinks; ObjectMissing if absent."""
        try:
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"store root unusable: {exc.strerror}") from exc
        try:
            for part in parts:
                child = self._enter(fd, part, create=create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _enter(parent: int, name: str, *, create: bool) -> int:
        """An fd on the directory `name` inside `parent`, made first if create is set."""
        try:
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=parent)
                    os.fsync(parent)
                except FileExistsError:
                    pass
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"no object under {name}/") from exc
        except OSError as exc:
            # ELOOP / ENOTDIR: a symlink or a file where a directory belongs.
            raise StorageError(f"unexpected entry at {name}/: {exc.strerror}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise publish/delete/retention changes between processes sharing root."""
        try:
            fd = os.open(self._root / _LOCK, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open store lock: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _open_object(self, key: str) -> int:
        parts = check_key(key)
        with self._dir(parts[:-1], create=False) as dfd:
            try:
                fd = os.open(parts[-1] + _OBJ, _READ_FLAGS, dir_fd=dfd)
            except FileNotFoundError as exc:
                raise ObjectMissing(f"no object under {key}") from exc
            except OSError as exc:
                raise StorageError(f"cannot open {key}: {exc.strerror}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StorageError(f"{key} is not a regular file")
        return fd

    @staticmethod
    def _stat_object(dfd: int, name: str, key: str) -> os.stat_result:
        try:
            st = os.stat(name + _OBJ, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"no object under {key}") from exc
        except OSError as exc:
            raise StorageError(f"cannot stat {key}: {exc.strerror}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{key} is not a regular file")
        return st

    @staticmethod
    def _temp_name() -> str:
        return _TMP + secrets.token_hex(8)

    @staticmethod
    def _create(dfd: int, name: str) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        try:
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
            os.fchmod(fd, 0o600)  # the umask may only narrow 0600, but make it exact
        except OSError as exc:
            raise StorageError(f"cannot create a temp file: {exc.strerror}") from exc
        return fd

    @staticmethod
    def _copy(src: BinaryIO, fd: int, size: int | None) -> tuple[str, int]:
        digest, count = hashlib.sha256(), 0
        while chunk := src.read(_CHUNK):
            count += len(chunk)
            if size is not None and count > size:
                raise StorageError(f"source is longer than the declared {size} bytes")
            digest.update(chunk)
            try:
                _write_all(fd, chunk)
            except OSError as exc:
                raise StorageError(f"cannot write object: {exc.strerror}") from exc
        return digest.hexdigest(), count

    @staticmethod
    def _hash_fd(fd: int) -> tuple[str, int]:
        os.lseek(fd, 0, os.SEEK_SET)
        digest, count = hashlib.sha256(), 0
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
            count += len(chunk)
        return digest.hexdigest(), count

    @staticmethod
    def _check_size(key: str, size: int | None, count: int) -> None:
        if size is not None and size != count:
            raise StorageError(f"{key}: read {count} bytes, expected {size}")

    def _publish(
        self,
        dfd: int,
        source: str | Path,
        name: str,
        until: datetime | None,
        *,
        expect: os.stat_result | None = None,
    ) -> None:
        """Link source (a temp name in dfd, or a staged path) to name.obj, no clobbering.

        The retention sidecar is written first, under the lock, so that the object is
        never visible without its retention; a stale sidecar left by a crash during an
        earlier delete is replaced or removed."""
        with self._locked():
            try:
                os.stat(name + _OBJ, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot check {name}: {exc.strerror}") from exc
            else:
                raise ObjectExists(f"object {name} already exists (write-once)")
            try:
                if until is not None:
                    self._write_retention(dfd, name, until)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name + _RETAIN, dir_fd=dfd)
                if isinstance(source, Path):
                    os.link(source, name + _OBJ, dst_dir_fd=dfd, follow_symlinks=False)
                else:
                    os.link(source, name + _OBJ, src_dir_fd=dfd, dst_dir_fd=dfd)
                    self._discard(dfd, source)
                if expect is not None:
                    self._check_linked(dfd, name, expect)
            except FileExistsError as exc:
                raise ObjectExists(f"object {name} already exists (write-once)") from exc
            except OSError as exc:
                if exc.errno == errno.EXDEV:  # a bind mount can hide a second filesystem
                    raise _CrossDevice from exc
                raise StorageError(f"cannot store {name}: {exc.strerror}") from exc
            os.fsync(dfd)

    @staticmethod
    def _check_linked(dfd: int, name: str, expect: os.stat_result) -> None:
        """The staged path may have been swapped after we hashed it: check the inode."""
        st = os.stat(name + _OBJ, dir_fd=dfd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (expect.st_dev, expect.st_ino):
            os.unlink(name + _OBJ, dir_fd=dfd)
            raise StorageError(f"staged file for {name} changed while being stored")

    def _copy_file(
        self,
        key: str,
        sfd: int,
        path: Path,
        size: int | None,
        retain_until: datetime | None,
    ) -> StoredObject:
        os.lseek(sfd, 0, os.SEEK_SET)
        with open(sfd, "rb", closefd=False) as src:
            stored = self.put(key, src, size=size, retain_until=retain_until)
        self._unlink_source(path)
        return stored

    @staticmethod
    def _unlink_source(path: Path) -> None:
        """Drop the staged name. The object is already stored, so failing here would only
        invite a retry that write-once refuses; we report it for cleanup instead."""
        try:
            path.unlink()
            dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            logger.error("stored, but cannot remove staged file %s: %s", path, exc.strerror)

    def _write_retention(self, dfd: int, name: str, until: datetime) -> None:
        """Replace name.retain atomically (temp file, fsync, rename)."""
        tmp = self._temp_name()
        try:
            fd = self._create(dfd, tmp)
            try:
                _write_all(fd, json.dumps({"retain_until": until.isoformat()}).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name + _RETAIN, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as exc:
            raise StorageError(f"cannot record retention of {name}: {exc.strerror}") from exc
        finally:
            self._discard(dfd, tmp)

    @staticmethod
    def _retention(dfd: int, name: str) -> datetime | None:
        """The recorded retention; an unreadable record fails closed (`StorageError`)."""
        try:
            fd = os.open(name + _RETAIN, _READ_FLAGS, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read retention of {name}: {exc.strerror}") from exc
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        try:
            return _utc(datetime.fromisoformat(json.loads(raw)["retain_until"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"retention record of {name} is corrupt") from exc

    @staticmethod
    def _discard(dfd: int, name: str) -> None:
        """Remove a temp name; a leftover `.tmp-*` is garbage, never an object."""
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dfd)


class _CrossDevice(Exception):
    """Internal: a hard link would cross filesystems; fall back to copying."""
