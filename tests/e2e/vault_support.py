"""A world with a vault: keyring, ingest key, registered cameras and an enrolled dock."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.db import Database
from app.devices import create_dock, enrol_dock, register_camera
from app.settings import Settings
from app.vault import Vault, ensure_keyring
from audit.adapters.checkpoints_sql import create_signer_file
from evidence.adapters.sql.org import District, School
from evidence.crypto import keywrap
from evidence.upload_metadata import encode_tus_metadata, seal_for_ingest

NORTH_CAMERA = "BWC-0002"
SOUTH_CAMERA = "BWC-0009"


@dataclass
class Docks:
    north_credential: str
    south_credential: str
    ingest_version: str
    ingest_public: bytes


def equip(settings: Settings, vault: Vault | None = None) -> Docks:
    """Keyring, ingest key, a camera and an enrolled dock at each of NHS and SMS."""
    now = datetime.now(UTC)
    ensure_keyring(settings, now)
    create_signer_file(settings.ledger_key_file or settings.data_dir / "k", "bwc-evidence.local")
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            vault = vault or Vault(settings)
            version, _ = vault.ensure_ingest_key(session, now)
            district = session.query(District).one()
            schools = {s.code: s for s in session.query(School)}
            register_camera(
                session,
                district,
                schools["NHS"],
                NORTH_CAMERA,
                profile="bwc-msc/1",
                actor="cli",
                now=now,
                wearer_badge="WEARER",
            )
            register_camera(
                session,
                district,
                schools["SMS"],
                SOUTH_CAMERA,
                profile="bwc-msc/1",
                actor="cli",
                now=now,
                wearer_badge="SOUTH-TEACHER",
            )
            _, north_token = create_dock(
                session, district, schools["NHS"], "north-dock", actor="cli", now=now
            )
            _, south_token = create_dock(
                session, district, schools["SMS"], "south-dock", actor="cli", now=now
            )
            _, north = enrol_dock(session, north_token, now=now)
            _, south = enrol_dock(session, south_token, now=now)
            _, public = vault.ingest_public_key(session)
    finally:
        database.dispose()
    return Docks(north, south, version, keywrap.decode_public_key(public))


@dataclass
class Sealed:
    ciphertext: bytes
    metadata: dict[str, bytes]
    sha256: str
    size: int

    @property
    def header(self) -> str:
        return encode_tus_metadata(self.metadata)


def seal(
    docks: Docks,
    plaintext: bytes,
    *,
    camera: str = NORTH_CAMERA,
    identity: str = "BWC00001.MP4@2026-11-30T09:00:00Z",
    name: bytes = b"BWC00001.MP4",
    segment_size: int = 4096,
    media_type: str = "video/mp4",
) -> Sealed:
    out = io.BytesIO()
    result, meta = seal_for_ingest(
        io.BytesIO(plaintext),
        out,
        ingest_public_key=docks.ingest_public,
        ingest_key_version=docks.ingest_version,
        camera_serial=camera,
        file_identity=identity,
        file_name=name,
        media_type=media_type,
        segment_size=segment_size,
        extra={"recorded_start": "2026-11-30T09:00:00+00:00"},
    )
    return Sealed(out.getvalue(), meta, result.plaintext_sha256, result.plaintext_size)


def seal_file(
    docks: Docks, source: Path, dest: Path, **kwargs: object
) -> tuple[str, dict[str, bytes]]:
    with source.open("rb") as src, dest.open("wb") as dst:
        result, meta = seal_for_ingest(
            src,
            dst,
            ingest_public_key=docks.ingest_public,
            ingest_key_version=docks.ingest_version,
            camera_serial=str(kwargs.get("camera", NORTH_CAMERA)),
            file_identity=str(kwargs.get("identity", "BIG.MP4@2026-11-30T10:00:00Z")),
            file_name=b"BIG.MP4",
            media_type="video/mp4",
        )
    return result.plaintext_sha256, meta


def tus_headers(credential: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}", "Tus-Resumable": "1.0.0", **extra}
