"""Cryptography of the vault: the only package that touches `cryptography.hazmat`.

`segments` is the segmented AES-256-GCM object format (DESIGN.md §3,
docs/encryption-format.md); `keywrap` seals data keys under key-encryption keys and
wraps them from docks to the service's ingest key. Both offer a small API whose
failures are opaque: every authentication failure is one `IntegrityError`."""
