"""The vault's wiring: which object store and key provider serve this process, the
service's ingest key pairs, and unwrapping an item's data key for one read.

Built once in `create_app()` (and by CLI commands); everything else receives it."""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.settings import ConfigError, Settings
from evidence.crypto import keywrap
from evidence.errors import KeyProviderError, StorageError
from evidence.ports import KeyProvider, ObjectStore, WrappedKey

logger = logging.getLogger(__name__)
INGEST_ALGORITHM = "x25519-hkdf-sha256-aes256gcm"


def build_store(settings: Settings) -> ObjectStore:
    url = settings.storage_url
    if url.startswith("file://"):
        from pathlib import Path

        from evidence.adapters.local_store import LocalObjectStore

        return LocalObjectStore(Path(url.removeprefix("file://")))
    from evidence.adapters.s3_store import S3ObjectStore

    return S3ObjectStore.from_url(
        url, endpoint_url=settings.s3_endpoint_url or None, region=settings.aws_region or None
    )


def build_key_provider(settings: Settings) -> KeyProvider:
    if settings.uses_local_keyring:
        from evidence.adapters.local_keyring import LocalKeyring

        path = settings.keyring_path
        if not path.exists():
            raise ConfigError(f"no keyring at {path}: run `bwc init`")
        try:
            return LocalKeyring.open(path)
        except KeyProviderError as exc:
            raise ConfigError(str(exc)) from None
    from evidence.adapters.aws_kms import AwsKmsKeyProvider

    return AwsKmsKeyProvider.from_settings(
        settings.key_provider.removeprefix("aws-kms:"), region=settings.aws_region or None
    )


def ensure_keyring(settings: Settings, now: datetime) -> bool:
    """Create the local keyring (mode 0600) unless it exists or KMS is used; True if made."""
    if not settings.uses_local_keyring:
        return False
    from evidence.adapters.local_keyring import LocalKeyring

    path = settings.keyring_path
    if path.exists():
        return False
    LocalKeyring.create(path, now)
    return True


def _ingest_context(version: str) -> dict[str, str]:
    return {"purpose": "ingest-key", "version": version}


def item_context(evidence_id: str, object_id_hex: str) -> dict[str, str]:
    """What a data key's wrap is bound to: moved to another item's row, it fails."""
    return {"evidence_id": evidence_id, "object": object_id_hex}


def encode_wrapped(wrapped: WrappedKey) -> str:
    return base64.b64encode(wrapped.blob).decode("ascii")


def decode_wrapped(version: str, text: str) -> WrappedKey:
    return WrappedKey(version, base64.b64decode(text, validate=True))


class Vault:
    """Object store, key provider and ingest keys of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        keys: KeyProvider | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._keys = keys

    @cached_property
    def store(self) -> ObjectStore:
        return self._store or build_store(self.settings)

    @cached_property
    def keys(self) -> KeyProvider:
        return self._keys or build_key_provider(self.settings)

    def check_store(self) -> None:
        """Production start-up check: an S3 store must enforce Object Lock (a locked probe
        object must refuse deletion); anything else refuses to start."""
        from evidence.adapters.s3_store import S3ObjectStore, self_check

        if isinstance(self.store, S3ObjectStore):
            try:
                self_check(self.store)
            except StorageError as exc:
                raise ConfigError(f"object store self-check failed: {exc}") from None

    # --- ingest keys ------------------------------------------------------------------

    def ensure_ingest_key(self, session: Session, now: datetime) -> tuple[str, bool]:
        """The current ingest key's version, creating the first one; (version, created)."""
        from evidence.adapters.sql.vault import IngestKey

        current = session.scalars(
            select(IngestKey).where(IngestKey.retired_at.is_(None)).order_by(IngestKey.version)
        ).first()
        if current is not None:
            return current.version, False
        count = len(list(session.scalars(select(IngestKey.version))))
        version = f"i{count + 1}"
        private, public = keywrap.new_ingest_keypair()
        sealed = self.keys.wrap(private, _ingest_context(version))
        session.add(
            IngestKey(
                version=version,
                public_key=keywrap.encode_public_key(public),
                private_wrapped=encode_wrapped(sealed),
                kek_version=sealed.version,
                created_at=now,
            )
        )
        session.flush()
        return version, True

    def ingest_public_key(self, session: Session) -> tuple[str, str]:
        """(version, encoded public key) docks wrap data keys to."""
        from evidence.adapters.sql.vault import IngestKey

        row = session.scalars(
            select(IngestKey).where(IngestKey.retired_at.is_(None)).order_by(IngestKey.version)
        ).first()
        if row is None:
            raise ConfigError("no ingest key: run `bwc init`")
        return row.version, row.public_key

    def ingest_private_key(self, session: Session, version: str) -> bytes | None:
        from evidence.adapters.sql.vault import IngestKey

        row = session.get(IngestKey, version)
        if row is None:
            return None
        return self.keys.unwrap(
            decode_wrapped(row.kek_version, row.private_wrapped), _ingest_context(version)
        )
