"""Errors raised by the evidence domain; adapters translate library errors into these."""


class EvidenceError(Exception):
    """Base class for every error the evidence package raises on purpose."""


class NotFound(EvidenceError):
    """The object does not exist, or the caller may not know that it exists."""


class Forbidden(EvidenceError):
    """The caller may see the object but not perform this action on it."""


class Conflict(EvidenceError):
    """The change contradicts something already stored (a duplicate name, say)."""


class InvalidInput(EvidenceError):
    """A value supplied by a user or device failed validation."""


class IntegrityError(EvidenceError):
    """Stored or received bytes failed authentication: tampered, truncated, reordered,
    swapped or read with the wrong key. Deliberately says nothing about which."""


class StorageError(EvidenceError):
    """The object store could not do what was asked (unreachable, refused, misconfigured)."""


class ObjectMissing(StorageError, NotFound):
    """No object is stored under the key."""


class ObjectExists(StorageError):
    """Write-once: an object is already stored under the key; nothing was written."""


class NotAdoptable(StorageError):
    """The store cannot take this file in place as it is (another filesystem, other
    hard links); nothing was stored and the file is untouched."""


class KeyProviderError(EvidenceError):
    """The key provider refused or failed (unknown key version, bad keyring, KMS error)."""
