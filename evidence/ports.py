"""Ports of the vault: where encrypted objects are kept and who holds the key-encryption keys.

The core (ingest, reads, fixity, rotation) talks only to these protocols; adapters under
`evidence/adapters/` implement them for a local folder, S3, a local keyring and AWS KMS.
Adapters translate library errors into `evidence.errors` at their boundary."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StoredObject:
    """What the store holds under a key after a put: its byte count and SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    """Immutable encrypted objects under opaque keys made by the service.

    Keys are never derived from camera-supplied names; they match
    `[a-z0-9][a-z0-9/_-]{0,199}`. A key is written once: putting an existing key is
    `ObjectExists`, a `StorageError` (originals must never be replaced)."""

    def put(
        self,
        key: str,
        src: BinaryIO,
        *,
        size: int | None = None,
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Store everything read from src under key, atomically: afterwards the object is
        either complete or absent. Streams in bounded memory. retain_until asks for
        write-once retention (S3 Object Lock COMPLIANCE) until that time."""
        ...

    def size(self, key: str) -> int:
        """Byte count of the stored object; `ObjectMissing` if absent."""
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Exactly `length` bytes from `start` (fewer only at the end of the object)."""
        ...

    def iter_bytes(self, key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        """The whole object, sequentially, in chunks of at most chunk_size."""
        ...

    def extend_retention(self, key: str, until: datetime) -> None:
        """Keep the object write-once until at least `until`; never shortens a retention
        already in place (a later date stays)."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object that is not under retention (staging, failed ingests).
        Refused (`StorageError`) while retention holds; absent keys are not an error."""
        ...

    def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class WrappedKey:
    """A data key sealed under a key-encryption key. `version` names the KEK version
    (local keyring: `k1`, `k2`…; KMS: the key ARN); `blob` is opaque to everyone else."""

    version: str
    blob: bytes


class KeyProvider(Protocol):
    """Holds the key-encryption keys (KEKs). Data keys (DEKs) only ever leave it wrapped.

    `context` is bound into every wrap (KMS encryption context; AES-GCM associated data
    for the keyring): a wrapped key only unwraps with the same context, so a wrapped DEK
    moved to another evidence item's row fails. The service passes
    {"evidence_id": …, "object": …}."""

    def current_version(self) -> str: ...

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        """A fresh random 32-byte DEK and the same DEK wrapped under the current KEK."""
        ...

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        """Wrap dek under the current KEK version."""
        ...

    def unwrap(self, wrapped: WrappedKey, context: Mapping[str, str]) -> bytes:
        """The DEK; `KeyProviderError` for an unknown version, `IntegrityError` when the
        blob or context does not authenticate."""
        ...
