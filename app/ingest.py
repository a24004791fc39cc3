"""Ingest: a dock's declared upload becomes a verified evidence item, all or nothing.

The declaration travels in tus `Upload-Metadata` (docs/ingest.md). Nothing the dock says
is trusted: when the last byte arrives the service unwraps the data key, stores the
ciphertext, reads it back, authenticates and hashes every segment and compares with the
declared SHA-256 and size. Only then is the item created, its data key re-wrapped under
the key-encryption key and `received` and `verified` custody events appended, in one
transaction. A refusal leaves no item and no stored object behind, and is itself logged
(`ingest.rejected`) where a registered camera or dock is involved."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from app.db import Database, must_get
from app.devices import find_camera
from app.settings import Settings
from app.staging import Staging
from app.vault import Vault, encode_wrapped, item_context
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType
from evidence import vault as vault_core
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.org import Camera, Dock, Wearer
from evidence.adapters.sql.vault import Upload
from evidence.crypto import keywrap, segments
from evidence.errors import EvidenceError, IntegrityError, StorageError
from evidence.upload_metadata import dock_context

logger = logging.getLogger(__name__)

MAX_METADATA = 16 * 1024
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_IDENTITY = re.compile(r"^[\x21-\x7e]{1,200}$")
_MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]{1,80}$")
_FLAG = re.compile(r"^[a-z_]{1,40}$")
_VERSION = re.compile(r"^i[0-9]{1,6}$")
REQUIRED = (
    "camera_serial",
    "file_identity",
    "filename",
    "plaintext_sha256",
    "plaintext_size",
    "segment_size",
    "object_id",
    "wrapped_key",
    "ingest_key",
)


class UploadRefused(Exception):
    """The request cannot become (or continue) an upload; `status` is the HTTP answer,
    `reason` a stable machine word and the message says what to do."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Declaration:
    """What the uploader says about the file, validated for form (not yet for truth)."""

    camera_serial: str
    file_identity: str
    file_name_b64: str
    file_name: str
    plaintext_sha256: str
    plaintext_size: int
    segment_size: int
    object_id: bytes
    wrapped_key: bytes
    ingest_key_version: str
    media_type: str = "application/octet-stream"
    recorded_start: datetime | None = None
    recorded_end: datetime | None = None
    camera_recorded_start: str | None = None
    wearer_badge: str | None = None
    clock_offset_ms: int | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ciphertext_size(self) -> int:
        return segments.ciphertext_size(self.plaintext_size, self.segment_size)


def parse_metadata(header: str) -> dict[str, bytes]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs (value optional)."""
    if len(header) > MAX_METADATA:
        raise UploadRefused(400, "metadata_too_large", "Upload-Metadata is too large")
    pairs: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, value = item.partition(" ")
        if not _KEY.match(key) or key in pairs:
            raise UploadRefused(400, "bad_metadata", f"bad or repeated metadata key {key[:40]!r}")
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise UploadRefused(400, "bad_metadata", f"metadata {key} is not base64") from None
    return pairs


def _text(meta: dict[str, bytes], key: str) -> str:
    try:
        return meta[key].decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} is not UTF-8") from None


def _integer(meta: dict[str, bytes], key: str, *, minimum: int = 0) -> int:
    raw = _text(meta, key)
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or int(raw) < minimum:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} must be a whole number")
    return int(raw)


def _time(meta: dict[str, bytes], key: str) -> datetime | None:
    if key not in meta:
        return None
    raw = _text(meta, key)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UploadRefused(
            400, "bad_metadata", f"metadata {key} is not an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} needs a UTC offset")
    return moment


def display_name(raw: bytes) -> str:
    """A printable form of a camera-supplied name; the raw bytes are kept separately."""
    text = raw.decode("utf-8", errors="replace")
    shown = "".join(c if unicodedata.category(c)[0] != "C" else "\ufffd" for c in text)
    return shown[:255] or "(unnamed)"


def declare(meta: dict[str, bytes], upload_length: int, settings: Settings) -> Declaration:
    """Validate the declaration's form; every problem is an UploadRefused saying which."""
    missing = [key for key in REQUIRED if key not in meta]
    if missing:
        raise UploadRefused(400, "missing_metadata", "metadata missing: " + ", ".join(missing))
    sha = _text(meta, "plaintext_sha256").lower()
    if not vault_core.is_sha256(sha):
        raise UploadRefused(400, "bad_metadata", "plaintext_sha256 must be 64 hex digits")
    identity = _text(meta, "file_identity")
    if not _IDENTITY.match(identity):
        raise UploadRefused(400, "bad_metadata", "file_identity: 1-200 printable ASCII characters")
    serial = _text(meta, "camera_serial")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", serial):
        raise UploadRefused(400, "bad_metadata", "camera_serial is malformed")
    name = meta["filename"]
    if not 0 < len(name) <= 1024:
        raise UploadRefused(400, "bad_metadata", "filename must be 1-1024 bytes")
    try:
        object_id = bytes.fromhex(_text(meta, "object_id"))
    except ValueError:
        object_id = b""
    if len(object_id) != 16:
        raise UploadRefused(400, "bad_metadata", "object_id must be 32 hex digits")
    version = _text(meta, "ingest_key")
    if not _VERSION.match(version):
        raise UploadRefused(400, "bad_metadata", "ingest_key is not a key version")
    wrapped = meta["wrapped_key"]
    if not 16 <= len(wrapped) <= 512:
        raise UploadRefused(400, "bad_metadata", "wrapped_key has an impossible length")
    segment_size = _integer(meta, "segment_size", minimum=1)
    if not 4096 <= segment_size <= 64 * 1024 * 1024:
        raise UploadRefused(400, "bad_metadata", "segment_size must be 4 KiB to 64 MiB")
    size = _integer(meta, "plaintext_size")
    media_type = _text(meta, "media_type").lower() if "media_type" in meta else ""
    if media_type and not _MEDIA_TYPE.match(media_type):
        raise UploadRefused(400, "bad_metadata", "media_type is not a media type")
    flags = tuple(
        f for f in (_text(meta, "flags").split(",") if "flags" in meta else []) if f.strip()
    )
    if len(flags) > 32 or not all(_FLAG.match(f) for f in flags):
        raise UploadRefused(400, "bad_metadata", "flags: up to 32 lower-case words")
    badge = _text(meta, "wearer_badge") if "wearer_badge" in meta else None
    if badge is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", badge):
        raise UploadRefused(400, "bad_metadata", "wearer_badge is malformed")
    camera_start = (
        _text(meta, "camera_recorded_start")[:64] if "camera_recorded_start" in meta else None
    )
    declaration = Declaration(
        camera_serial=serial,
        file_identity=identity,
        file_name_b64=base64.b64encode(name).decode("ascii"),
        file_name=display_name(name),
        plaintext_sha256=sha,
        plaintext_size=size,
        segment_size=segment_size,
        object_id=object_id,
        wrapped_key=wrapped,
        ingest_key_version=version,
        media_type=media_type or "application/octet-stream",
        recorded_start=_time(meta, "recorded_start"),
        recorded_end=_time(meta, "recorded_end"),
        camera_recorded_start=camera_start,
        wearer_badge=badge,
        clock_offset_ms=_integer(meta, "clock_offset_ms", minimum=-(2**62))
        if "clock_offset_ms" in meta
        else None,
        flags=flags,
    )
    if upload_length > settings.max_upload_bytes:
        raise UploadRefused(413, "too_large", "the upload is larger than this service accepts")
    if upload_length != declaration.ciphertext_size:
        raise UploadRefused(
            400,
            "length_mismatch",
            "Upload-Length does not match plaintext_size and segment_size for this format",
        )
    return declaration


def _jsonable(declaration: Declaration) -> dict[str, Any]:
    return {
        "camera_serial": declaration.camera_serial,
        "file_name": declaration.file_name,
        "file_name_b64": declaration.file_name_b64,
        "media_type": declaration.media_type,
        "recorded_start": declaration.recorded_start.isoformat()
        if declaration.recorded_start
        else None,
        "recorded_end": declaration.recorded_end.isoformat() if declaration.recorded_end else None,
        "camera_recorded_start": declaration.camera_recorded_start,
        "wearer_badge": declaration.wearer_badge,
        "clock_offset_ms": declaration.clock_offset_ms,
        "flags": list(declaration.flags),
    }


def _event(
    session: Session,
    kind: EventType,
    now: datetime,
    district_id: int,
    actor: str,
    *,
    subject: str | None = None,
    evidence_id: str | None = None,
    sha256: str | None = None,
    device: str | None = None,
    **details: object,
) -> str:
    event = AuditEvent(
        type=kind,
        occurred_at=now,
        district_id=district_id,
        actor=actor,
        device=device,
        subject=subject,
        evidence_id=evidence_id,
        media_sha256=sha256,
        details=dict(details),
    )
    return SqlEventRecorder(session).record(event)


def find_duplicate(session: Session, camera_id: int, file_identity: str, sha: str) -> str | None:
    return session.scalar(
        select(EvidenceItem.id).where(
            EvidenceItem.camera_id == camera_id,
            EvidenceItem.file_identity == file_identity,
            EvidenceItem.sha256 == sha,
        )
    )


def refuse_camera(
    session: Session, dock: Dock, serial: str, sha: str, now: datetime, reason: str
) -> None:
    """Log a refused upload from a known dock (the caller commits, then answers)."""
    _event(
        session,
        EventType.INGEST_REJECTED,
        now,
        dock.district_id,
        dock.pseudonym,
        device=dock.pseudonym,
        subject=f"dock:{dock.id}",
        sha256=sha,
        reason=reason,
        camera_serial=serial,
    )


def create_upload(
    session: Session,
    staging: Staging,
    *,
    dock: Dock | None,
    district_id: int,
    declaration: Declaration,
    length: int,
    settings: Settings,
    now: datetime,
    actor: str | None = None,
) -> Upload:
    """Open an upload for a registered, active camera of the dock's school.

    A file the service already holds (same camera, file identity and SHA-256) is
    answered at once with the existing item: no bytes need to travel again."""
    camera = find_camera(session, district_id, declaration.camera_serial)
    if (
        camera is None
        or camera.retired_at is not None
        or (dock is not None and camera.school_id != dock.school_id)
    ):
        if dock is not None:
            refuse_camera(
                session,
                dock,
                declaration.camera_serial,
                declaration.plaintext_sha256,
                now,
                "unregistered_camera",
            )
            session.commit()
        raise UploadRefused(
            403,
            "unregistered_camera",
            f"camera {declaration.camera_serial} is not registered to this dock's school",
        )
    upload_id = uuid.uuid4().hex
    existing = find_duplicate(
        session, camera.id, declaration.file_identity, declaration.plaintext_sha256
    )
    upload = Upload(
        id=upload_id,
        district_id=district_id,
        dock_id=dock.id if dock else None,
        camera_id=camera.id,
        status="verified" if existing else "receiving",
        length=length,
        upload_offset=length if existing else 0,
        plaintext_sha256=declaration.plaintext_sha256,
        plaintext_size=declaration.plaintext_size,
        segment_size=declaration.segment_size,
        object_id=declaration.object_id.hex(),
        file_identity=declaration.file_identity,
        dock_wrapped_key=None if existing else base64.b64encode(declaration.wrapped_key).decode(),
        ingest_key_version=declaration.ingest_key_version,
        declared=_jsonable(declaration) | {"actor": actor},
        evidence_id=existing,
        reason="duplicate" if existing else None,
        created_at=now,
        expires_at=now + timedelta(hours=settings.upload_expiry_hours),
        completed_at=now if existing else None,
    )
    session.add(upload)
    session.flush()
    if not existing:
        staging.create(upload_id)
    return upload


@dataclass(frozen=True)
class Outcome:
    status: str  # verified | rejected
    evidence_id: str | None = None
    reason: str | None = None


def _reject(
    database: Database, upload_id: str, reason: str, now: datetime, staging: Staging
) -> Outcome:
    with database.transaction() as session:
        upload = must_get(session, Upload, upload_id)
        upload.status = "rejected"
        upload.reason = reason
        upload.dock_wrapped_key = None
        upload.completed_at = now
        dock = session.get(Dock, upload.dock_id) if upload.dock_id else None
        actor = dock.pseudonym if dock else str(upload.declared.get("actor") or "system")
        _event(
            session,
            EventType.INGEST_REJECTED,
            now,
            upload.district_id,
            actor,
            device=dock.pseudonym if dock else None,
            subject=f"upload:{upload.id}",
            sha256=upload.plaintext_sha256,
            reason=reason,
            camera_serial=upload.declared.get("camera_serial"),
        )
    staging.remove(upload_id)
    logger.warning("upload %s rejected: %s", upload_id, reason)
    return Outcome("rejected", reason=reason)


def finalise(
    database: Database,
    vault: Vault,
    staging: Staging,
    upload_id: str,
    *,
    now: datetime,
) -> Outcome:
    """Verify a fully received upload and make it an evidence item (or reject it).

    The caller holds the staged file's lock. Long work (storing, reading back) runs
    outside any database transaction; the item, its re-wrapped key and its two custody
    events are then written in one. Retried after a crash, it finishes the same way:
    the object key derives from the upload, so a stored object is reused if it
    verifies."""
    with database.sessions() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.status != "receiving":
            return Outcome(upload.status if upload else "rejected")
        camera = must_get(session, Camera, upload.camera_id)
        duplicate = find_duplicate(
            session, upload.camera_id, upload.file_identity, upload.plaintext_sha256
        )
        try:
            private = vault.ingest_private_key(session, upload.ingest_key_version)
        except (IntegrityError, EvidenceError):
            private = None
        wrapped_text = upload.dock_wrapped_key or ""
        object_id = bytes.fromhex(upload.object_id)
        context = dock_context(object_id, camera.serial)
        declared = dict(upload.declared)
        sha, size, seg = upload.plaintext_sha256, upload.plaintext_size, upload.segment_size
        length = upload.length
    if duplicate:
        return _mark_duplicate(database, upload_id, duplicate, now, staging)
    if private is None:
        return _reject(database, upload_id, "unknown_ingest_key", now, staging)
    try:
        dek = keywrap.unwrap_from_dock(base64.b64decode(wrapped_text), private, context)
    except (IntegrityError, ValueError, binascii.Error):
        return _reject(database, upload_id, "key_unwrap_failed", now, staging)

    staged = staging.path(upload_id)
    with staged.open("rb") as handle:
        try:
            header = segments.parse_header(handle.read(segments.HEADER_SIZE))
        except IntegrityError:
            return _reject(database, upload_id, "malformed_object", now, staging)
    if header.object_id != object_id or header.segment_size != seg:
        return _reject(database, upload_id, "object_header_mismatch", now, staging)

    evidence_id = str(uuid.UUID(upload_id))
    key = vault_core.original_key(evidence_id)
    store = vault.store
    try:
        if store.exists(key):
            stored_size = store.size(key)
        else:
            stored_size = _put_staged(store, key, staged, length).size
    except StorageError:
        logger.exception("storing upload %s failed", upload_id)
        raise
    obj = vault_core.EncryptedObject(key, object_id, stored_size)
    try:
        digest = vault_core.digest_object(store, obj, dek)
    except IntegrityError:
        _discard(store, key)
        return _reject(database, upload_id, "integrity_failed", now, staging)
    if digest.size != size:
        _discard(store, key)
        return _reject(database, upload_id, "size_mismatch", now, staging)
    if digest.sha256 != sha:
        _discard(store, key)
        return _reject(database, upload_id, "sha256_mismatch", now, staging)

    store.extend_retention(key, now + timedelta(days=vault.settings.lock_days))
    wrapped = vault.keys.wrap(dek, item_context(evidence_id, object_id.hex()))
    try:
        with database.transaction() as session:
            upload = must_get(session, Upload, upload_id)
            item = _new_item(session, upload, declared, evidence_id, digest, obj, seg, now)
            item.wrapped_key, item.key_version = encode_wrapped(wrapped), wrapped.version
            dock = session.get(Dock, upload.dock_id) if upload.dock_id else None
            actor = dock.pseudonym if dock else str(declared.get("actor") or "system")
            device = dock.pseudonym if dock else None
            common: dict[str, Any] = {
                "evidence_id": evidence_id,
                "sha256": digest.sha256,
                "device": device,
                "subject": f"evidence:{evidence_id}",
            }
            _event(
                session,
                EventType.EVIDENCE_RECEIVED,
                now,
                upload.district_id,
                actor,
                **common,
                upload=upload_id,
                size=digest.size,
                camera_serial=declared.get("camera_serial"),
                file_name_b64=declared.get("file_name_b64"),
            )
            _event(
                session,
                EventType.EVIDENCE_VERIFIED,
                now,
                upload.district_id,
                "system",
                **common,
                stored_sha256=digest.stored_sha256,
                stored_size=digest.stored_size,
                key_version=wrapped.version,
            )
            upload.status, upload.evidence_id = "verified", evidence_id
            upload.upload_offset, upload.dock_wrapped_key, upload.completed_at = length, None, now
    except DbIntegrityError:
        # Another upload of the same file won the race: answer with its item.
        with database.sessions() as session:
            other = find_duplicate(
                session, camera.id, upload_file_identity(database, upload_id), sha
            )
        if other is None:
            raise
        return _mark_duplicate(database, upload_id, other, now, staging)
    staging.remove(upload_id)
    logger.info("upload %s verified as evidence %s (%d bytes)", upload_id, evidence_id, size)
    return Outcome("verified", evidence_id=evidence_id)


def upload_file_identity(database: Database, upload_id: str) -> str:
    with database.sessions() as session:
        upload = must_get(session, Upload, upload_id)
        return upload.file_identity


def _put_staged(store: Any, key: str, staged: Any, length: int) -> Any:
    put_file = getattr(store, "put_file", None)
    if put_file is not None:
        return put_file(key, staged)
    with staged.open("rb") as handle:
        return store.put(key, handle, size=length)


def _discard(store: Any, key: str) -> None:
    try:
        store.delete(key)
    except StorageError:
        logger.error("could not remove rejected object %s", key)


def _mark_duplicate(
    database: Database, upload_id: str, evidence_id: str, now: datetime, staging: Staging
) -> Outcome:
    with database.transaction() as session:
        upload = must_get(session, Upload, upload_id)
        upload.status, upload.evidence_id, upload.reason = "verified", evidence_id, "duplicate"
        upload.dock_wrapped_key, upload.completed_at = None, now
        upload.upload_offset = upload.length
    staging.remove(upload_id)
    return Outcome("verified", evidence_id=evidence_id, reason="duplicate")


def _new_item(
    session: Session,
    upload: Upload,
    declared: dict[str, Any],
    evidence_id: str,
    digest: vault_core.Digest,
    obj: vault_core.EncryptedObject,
    segment_size: int,
    now: datetime,
) -> EvidenceItem:
    camera = must_get(session, Camera, upload.camera_id)
    flags = list(declared.get("flags") or [])
    wearer_id = camera.assigned_wearer_id
    badge = declared.get("wearer_badge")
    if badge:
        wearer = session.scalars(
            select(Wearer).where(Wearer.district_id == upload.district_id, Wearer.badge == badge)
        ).first()
        if wearer is None:
            flags.append("unknown_wearer")
        elif wearer_id is not None and wearer.id != wearer_id:
            flags.append("wearer_mismatch")
        else:
            wearer_id = wearer.id
    start = declared.get("recorded_start")
    end = declared.get("recorded_end")
    item = EvidenceItem(
        id=evidence_id,
        district_id=upload.district_id,
        school_id=camera.school_id,
        camera_id=camera.id,
        wearer_id=wearer_id,
        dock_id=upload.dock_id,
        status="verified",
        file_identity=upload.file_identity,
        file_name=str(declared.get("file_name") or "(unnamed)")[:255],
        file_name_b64=str(declared.get("file_name_b64") or "")[:400],
        media_type=str(declared.get("media_type") or "application/octet-stream"),
        size=digest.size,
        sha256=digest.sha256,
        object_key=obj.key,
        recorded_start=datetime.fromisoformat(start) if start else None,
        recorded_end=datetime.fromisoformat(end) if end else None,
        camera_recorded_start=declared.get("camera_recorded_start"),
        clock_offset_ms=declared.get("clock_offset_ms"),
        ingested_at=now,
        flags=sorted(set(flags)),
        object_id=obj.object_id.hex(),
        segment_size=segment_size,
        stored_size=digest.stored_size,
        stored_sha256=digest.stored_sha256,
        integrity="ok",
        last_fixity_at=now,
    )
    session.add(item)
    session.flush()
    return item


def expire_uploads(database: Database, staging: Staging, now: datetime) -> int:
    """Expire uploads with no progress past their deadline and remove their bytes."""
    with database.transaction() as session:
        stale = list(
            session.scalars(
                select(Upload).where(Upload.status == "receiving", Upload.expires_at < now)
            )
        )
        for upload in stale:
            upload.status, upload.reason, upload.dock_wrapped_key = "expired", "expired", None
            upload.completed_at = now
            _event(
                session,
                EventType.UPLOAD_EXPIRED,
                now,
                upload.district_id,
                "system",
                subject=f"upload:{upload.id}",
                sha256=upload.plaintext_sha256,
                received=upload.upload_offset,
                length=upload.length,
            )
    for upload in stale:
        staging.remove(upload.id)
    return len(stale)
