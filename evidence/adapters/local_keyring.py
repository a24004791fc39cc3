"""A key provider backed by a local keyring file of versioned AES-256 key-encryption keys."""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from evidence.crypto.keywrap import KEY_SIZE, open_key, seal_key
from evidence.errors import KeyProviderError
from evidence.ports import WrappedKey

SCHEMA = "bwc-keyring/1"
_AAD_PURPOSE = "bwc-evidence/1 keyring dek"
_VERSION_NAME = re.compile(r"k[1-9][0-9]{0,8}")
_MAX_FILE_SIZE = 1024 * 1024


@dataclass(frozen=True)
class _Keys:
    current: str
    keys: dict[str, bytes]
    created_at: dict[str, str]


def _timestamp(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _aad(version: str, context: Mapping[str, str]) -> bytes:
    # RFC 8785 JSON is one byte string per (version, context): no separator or ordering
    # ambiguity lets a wrap made for one evidence item authenticate for another.
    for name, value in context.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
    doc: dict[str, str | dict[str, str]] = {
        "purpose": _AAD_PURPOSE,
        "version": version,
        "context": dict(context),
    }
    return bytes(rfc8785.dumps(doc))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate field")
    return result


def _parse(path: Path, raw: bytes) -> _Keys:
    """Validate the whole file before trusting any of it; KeyProviderError says what is wrong."""

    def bad(why: str) -> KeyProviderError:
        return KeyProviderError(f"keyring {path} is malformed: {why}")

    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or set(doc) != {"schema", "current", "keys"}:
        raise bad('expected exactly the fields "schema", "current" and "keys"')
    if doc["schema"] != SCHEMA:
        raise bad(f"schema must be {SCHEMA!r}")
    if not isinstance(doc["keys"], list) or not doc["keys"]:
        raise bad('"keys" must be a non-empty list')
    keys: dict[str, bytes] = {}
    created: dict[str, str] = {}
    for index, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict) or set(entry) != {"version", "key", "created_at"}:
            raise bad(f'keys[{index}] needs exactly "version", "key" and "created_at"')
        version, key, created_at = entry["version"], entry["key"], entry["created_at"]
        if not isinstance(version, str) or not _VERSION_NAME.fullmatch(version):
            raise bad(f"keys[{index}].version must look like k1, k2, ...")
        if version in keys:
            raise bad(f"version {version} appears twice")
        try:
            material = base64.b64decode(key, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise bad(f"keys[{index}].key is not base64") from None
        if len(material) != KEY_SIZE:
            raise bad(f"keys[{index}].key must decode to {KEY_SIZE} bytes")
        try:
            if datetime.fromisoformat(created_at).tzinfo is None:
                raise ValueError
        except (TypeError, ValueError):
            raise bad(f"keys[{index}].created_at must be an RFC 3339 timestamp") from None
        keys[version], created[version] = material, created_at
    if doc["current"] not in keys:
        raise bad('"current" must name one of the key versions')
    return _Keys(doc["current"], keys, created)


def _render(keys: _Keys) -> bytes:
    entries = [
        {
            "version": v,
            "key": base64.b64encode(k).decode("ascii"),
            "created_at": keys.created_at[v],
        }
        for v, k in keys.keys.items()
    ]
    doc = {"schema": SCHEMA, "current": keys.current, "keys": entries}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _read(path: Path) -> _Keys:
    """Load the keyring, refusing symlinks, non-regular files and loose permissions.

    The checks run on the opened descriptor, so the file cannot be swapped between
    checking and reading. The directory must not be writable by others either, or they
    could replace the file with a keyring of their own."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyProviderError(f"no keyring at {path}") from None
    except OSError as exc:
        if path.is_symlink():
            raise KeyProviderError(f"keyring {path} is a symlink; refusing to follow it") from None
        raise KeyProviderError(f"cannot open keyring {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyProviderError(f"keyring {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyProviderError(
                f"keyring {path} is accessible by group or others; run: chmod 600 {path}"
            )
        if os.stat(path.parent).st_mode & 0o022:
            raise KeyProviderError(
                f"keyring directory {path.parent} is writable by group or others;"
                f" run: chmod 700 {path.parent}"
            )
        raw = handle.read(_MAX_FILE_SIZE + 1)
    if len(raw) > _MAX_FILE_SIZE:
        raise KeyProviderError(f"keyring {path} is malformed: larger than 1 MiB")
    return _parse(path, raw)


def _extends(path: Path, old: _Keys, new: _Keys) -> _Keys:
    """new, if it keeps every version of old unchanged; a keyring only ever grows.

    A file that lost or changed a version (restored from an old backup, replaced by
    hand) is refused rather than adopted or written back: either would make permanent
    the loss of every DEK wrapped under the missing version."""
    for version, key in old.keys.items():
        if not secrets.compare_digest(new.keys.get(version, b""), key):
            raise KeyProviderError(
                f"keyring {path} no longer holds version {version} as loaded; refusing it"
            )
    return new


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialise writers across processes: two rotations must never both write `k{n+1}`."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class LocalKeyring:
    """KEKs in a JSON file on local disk (DESIGN.md §3: the embedded key provider).

    The file holds every KEK version ever made; losing it, or a version in it, destroys
    every DEK wrapped under it (that is crypto-shredding, so back it up apart from the
    evidence it protects). Anyone who can read it can unwrap every DEK: it is mode 0600
    in a 0700 directory, and opening it refuses anything looser. Key bytes stay in this
    object's memory for the life of the process; Python cannot reliably wipe them."""

    def __init__(self, path: Path) -> None:
        """Open an existing keyring; KeyProviderError if it is missing, loose or malformed."""
        self._path = Path(path)
        self._lock = threading.Lock()
        self._keys = _read(self._path)

    @classmethod
    def open(cls, path: Path) -> LocalKeyring:
        """The same as `LocalKeyring(path)`."""
        return cls(path)

    @classmethod
    def create(cls, path: Path, now: datetime) -> LocalKeyring:
        """Create a keyring holding one fresh KEK, `k1`; never overwrites an existing file.

        The file is created 0600 with O_EXCL (never briefly readable by others) and
        fsynced with its directory before the keyring is used to wrap anything."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = _Keys("k1", {"k1": secrets.token_bytes(KEY_SIZE)}, {"k1": _timestamp(now)})
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise KeyProviderError(f"a keyring already exists at {path}; not overwriting") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(_render(keys))
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(path.parent)
        return cls(path)

    def __repr__(self) -> str:
        return f"LocalKeyring({str(self._path)!r}, current={self._keys.current!r})"

    def versions(self) -> tuple[str, ...]:
        """Every KEK version in the keyring, oldest first."""
        return tuple(self._keys.keys)

    def current_version(self) -> str:
        return self._keys.current

    def add_version(self, now: datetime) -> str:
        """Add a fresh KEK `k{n+1}`, make it current and return its name.

        The file on disk is re-read under a lock first, so a version added meanwhile by
        another process is kept, never overwritten; the new file replaces the old one
        atomically (0600 temp file, fsync, rename, directory fsync). Existing wrapped
        keys keep their version and still unwrap; re-wrapping them is the caller's job."""
        created_at = _timestamp(now)
        directory = self._path.parent
        with self._lock, _directory_lock(directory):
            on_disk = _extends(self._path, self._keys, _read(self._path))
            number = max(int(v[1:]) for v in on_disk.keys) + 1
            version = f"k{number}"
            keys = _Keys(
                version,
                {**on_disk.keys, version: secrets.token_bytes(KEY_SIZE)},
                {**on_disk.created_at, version: created_at},
            )
            # mkstemp creates the file 0600 with O_EXCL.
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self._path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(_render(keys))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self._path)
            except BaseException:
                os.unlink(tmp)
                raise
            _fsync_dir(directory)
            self._keys = keys
        return version

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        dek = secrets.token_bytes(KEY_SIZE)
        return dek, self.wrap(dek, context)

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        """Seal dek under the current KEK, with the version and context as associated data."""
        keys = self._keys
        version = keys.current
        return WrappedKey(version, seal_key(keys.keys[version], dek, _aad(version, context)))

    def unwrap(self, wrapped: WrappedKey, context: Mapping[str, str]) -> bytes:
        """The DEK; KeyProviderError for a version not in the keyring, IntegrityError if the
        blob, its version label or the context do not authenticate."""
        kek = self._keys.keys.get(wrapped.version)
        if kek is None:
            # Another process may have rotated since we loaded; look once more.
            with self._lock:
                self._keys = _extends(self._path, self._keys, _read(self._path))
            kek = self._keys.keys.get(wrapped.version)
        if kek is None:
            raise KeyProviderError(
                f"key version {wrapped.version!r} is not in keyring {self._path}"
            )
        return open_key(kek, wrapped.blob, _aad(wrapped.version, context))
