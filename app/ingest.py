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
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from app.custody import record_event
from app.db import Database, must_get
from app.declaration import Declaration, UploadRefused, as_json
from app.devices import find_camera
from app.jobs import Dispatcher, submit_after_commit
from app.live_verify import LiveVerifier, Verified
from app.proxies import queue_proxy_check, wants_proxy_check
from app.settings import Settings
from app.staging import Staging, UploadBusy
from app.vault import Vault, encode_wrapped, item_context
from audit.events import EventType
from evidence import vault as vault_core
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.org import Camera, Dock, Wearer
from evidence.adapters.sql.vault import Upload
from evidence.crypto import keywrap, segments
from evidence.errors import (
    EvidenceError,
    IntegrityError,
    NotAdoptable,
    ObjectExists,
    StorageError,
)
from evidence.search_text import compose as compose_search_text
from evidence.upload_metadata import dock_context

logger = logging.getLogger(__name__)

# How long the last PATCH waits for the live verification to read the tail back; past
# this it reads the whole stored object back itself.
LIVE_WAIT_SECONDS = 120.0

# How a verified upload became its stored object, as the service log says (the vault
# benchmark reports it): parts streamed to S3 as it arrived; the staged file adopted;
# or stored whole (or found stored after a crash) and read back in full.
STREAMED, ADOPTED, READ_BACK = "streamed", "adopted", "read back"


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
    record_event(
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
        declared=as_json(declaration) | {"actor": actor},
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


def upload_key(session: Session, vault: Vault, upload: Upload) -> tuple[bytes, bytes] | None:
    """(data key, object id) of an upload in progress, unwrapped from what its dock sent;
    None if it cannot be (finalise then rejects the upload with the reason)."""
    camera = session.get(Camera, upload.camera_id)
    if camera is None or not upload.dock_wrapped_key:
        return None
    object_id = bytes.fromhex(upload.object_id)
    try:
        private = vault.ingest_private_key(session, upload.ingest_key_version)
        if private is None:
            return None
        dek = keywrap.unwrap_from_dock(
            base64.b64decode(upload.dock_wrapped_key),
            private,
            dock_context(object_id, camera.serial),
        )
    except (EvidenceError, ValueError, binascii.Error):
        return None
    return dek, object_id


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
        record_event(
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
    live: LiveVerifier | None = None,
    jobs: Dispatcher | None = None,
) -> Outcome:
    """Verify a fully received upload and make it an evidence item (or reject it).

    The caller holds the staged file's lock. Long work (storing, reading back) runs
    outside any database transaction; the item, its re-wrapped key and its two custody
    events are then written in one. Retried after a crash, it finishes the same way:
    the object key derives from the upload, so a stored object is reused if it
    verifies.

    With `live`, a staged file this process already read back and verified while it
    arrived (app/live_verify.py) is adopted by the store as it is, when the store can
    take that very file (the local store, by hard link); otherwise the file is stored
    and the stored object read back in full.

    A video item gets a playback check queued in the same transaction (app/proxies.py),
    handed to `jobs` once committed."""
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
        sha, file_identity = upload.plaintext_sha256, upload.file_identity
    if duplicate or private is None:
        if live is not None:
            live.discard(upload_id)
        if duplicate:
            return _mark_duplicate(database, upload_id, duplicate, now, staging)
        return _reject(database, upload_id, "unknown_ingest_key", now, staging)
    try:
        dek = keywrap.unwrap_from_dock(base64.b64decode(wrapped_text), private, context)
    except (IntegrityError, ValueError, binascii.Error):
        return _reject(database, upload_id, "key_unwrap_failed", now, staging)
    verified: Verified | None = None
    if live is not None:
        try:
            verified = live.finish(upload_id, wait_seconds=LIVE_WAIT_SECONDS)
        except IntegrityError:
            return _reject(database, upload_id, "integrity_failed", now, staging)

    identity = f"{camera.id}\x00{file_identity}\x00{sha}"
    try:
        with staging.file_lock(identity):
            # Under the file's lock, so an upload of the same file finishing meanwhile in
            # any process is seen here, before anything is stored: the loser of that race
            # stores no object (none is left orphaned) and answers with the winner's item.
            with database.sessions() as session:
                duplicate = find_duplicate(session, camera.id, file_identity, sha)
            if duplicate:
                if verified is not None:
                    verified.abandon()
                return _mark_duplicate(database, upload_id, duplicate, now, staging)
            return _store_and_record(
                database, vault, staging, upload_id, dek, verified, camera, declared, now, jobs
            )
    except UploadBusy:
        if verified is not None:
            verified.abandon()
        raise StorageError("another upload of this file is being stored; retry") from None


def _store_and_record(
    database: Database,
    vault: Vault,
    staging: Staging,
    upload_id: str,
    dek: bytes,
    verified: Verified | None,
    camera: Camera,
    declared: dict[str, Any],
    now: datetime,
    jobs: Dispatcher | None,
) -> Outcome:
    """Store the verified upload (or store and read it back) and create its item, all
    or nothing; the caller holds the file's lock."""
    with database.sessions() as session:
        upload = must_get(session, Upload, upload_id)
        object_id = bytes.fromhex(upload.object_id)
        sha, size, seg = upload.plaintext_sha256, upload.plaintext_size, upload.segment_size
        length, file_identity = upload.length, upload.file_identity
    evidence_id = str(uuid.UUID(upload_id))
    key = vault_core.original_key(evidence_id)
    store = vault.store
    staged = staging.path(upload_id)
    retain_until = now + timedelta(days=vault.settings.lock_days)
    # A retry after a crash between storing and committing finds the bytes in the store
    # (the local store moves the staged file there): verify them where they are. An
    # upload verified as it arrived is not looked up first: the store adopts it
    # write-once and says so (ObjectExists) if it holds the key already.
    adopting = verified is not None and verified.streamed is None and _can_adopt(store)
    already_stored = False if adopting else store.exists(key)
    refusal = _header_refusal(store, key, staged, already_stored, object_id, seg)
    if refusal is None and verified is not None and not already_stored:
        # What was verified as it arrived is refused before it is stored (and retained).
        refusal = _mismatch(verified.digest, size, sha)
    digest: vault_core.Digest | None = None
    if refusal is None and not already_stored:
        try:
            digest = _adopt_verified(store, key, staged, verified, retain_until)
        except ObjectExists:
            already_stored = True
            refusal = _header_refusal(store, key, staged, True, object_id, seg)
    if refusal is not None:
        if verified is not None:
            verified.abandon()
        _discard(store, key)
        return _reject(database, upload_id, refusal, now, staging)
    if digest is not None:
        how = STREAMED if verified is not None and verified.streamed is not None else ADOPTED
    else:
        how = READ_BACK
    try:
        if digest is not None:
            stored_size = digest.stored_size
        elif already_stored:
            stored_size = store.size(key)
        else:
            stored_size = _put_staged(store, key, staged, length).size
    except StorageError:
        logger.exception("storing upload %s failed", upload_id)
        raise
    obj = vault_core.EncryptedObject(key, object_id, stored_size)
    if digest is None:
        try:
            digest = vault_core.digest_object(store, obj, dek)
        except IntegrityError:
            _discard(store, key)
            return _reject(database, upload_id, "integrity_failed", now, staging)
    mismatch = _mismatch(digest, size, sha)
    if mismatch is not None:
        _discard(store, key)
        return _reject(database, upload_id, mismatch, now, staging)

    if how != ADOPTED:  # an adopted file was stored with its retention
        store.extend_retention(key, retain_until)
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
            record_event(
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
            record_event(
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
            queued = (
                [queue_proxy_check(session, item, now).id]
                if wants_proxy_check(item.media_type)
                else []
            )
    except DbIntegrityError:
        # Another upload of the same file won the race (a process that does not share
        # this staging folder, hence not its lock): answer with its item, and try to
        # remove our object. It is retained already, so a store that enforces retention
        # (S3 Object Lock) refuses, and the refusal is logged for an operator.
        with database.sessions() as session:
            other = find_duplicate(session, camera.id, file_identity, sha)
        if other is None:
            raise
        _discard(store, key)
        return _mark_duplicate(database, upload_id, other, now, staging)
    staging.remove(upload_id)
    submit_after_commit(jobs, queued)
    logger.info(
        "upload %s verified as evidence %s (%d bytes; stored: %s)",
        upload_id,
        evidence_id,
        size,
        how,
    )
    return Outcome("verified", evidence_id=evidence_id)


def _can_adopt(store: Any) -> bool:
    return getattr(store, "adopt_file", None) is not None


def _mismatch(digest: vault_core.Digest, size: int, sha: str) -> str | None:
    if digest.size != size:
        return "size_mismatch"
    if digest.sha256 != sha:
        return "sha256_mismatch"
    return None


def _header_refusal(
    store: Any, key: str, staged: Path, stored: bool, object_id: bytes, segment_size: int
) -> str | None:
    """Why the object's header (the stored one, or the staged file's) is refused, or
    None if it names this upload's object and segment size."""
    if stored:
        first = store.read_range(key, 0, segments.HEADER_SIZE)
    else:
        with staged.open("rb") as handle:
            first = handle.read(segments.HEADER_SIZE)
    try:
        header = segments.parse_header(first)
    except IntegrityError:
        return "malformed_object"
    if header.object_id != object_id or header.segment_size != segment_size:
        return "object_header_mismatch"
    return None


def _adopt_verified(
    store: Any, key: str, staged: Path, verified: Verified | None, retain_until: datetime
) -> vault_core.Digest | None:
    """Store the staged file as it is, retained until `retain_until`, if it was read
    back and verified while arriving and the store can take that very file; its digest
    then stands for the stored object. None when it could not be adopted: the caller
    stores and reads back instead. `ObjectExists` if the store holds the key already."""
    if verified is not None and verified.streamed is not None:
        return _complete_streamed(key, verified)
    if verified is None or not _can_adopt(store):
        return None
    digest = verified.digest
    try:
        store.adopt_file(
            key,
            staged,
            size=digest.stored_size,
            sha256=digest.stored_sha256,
            inode=verified.inode,
            retain_until=retain_until,
        )
    except NotAdoptable:
        return None
    return digest


def _complete_streamed(key: str, verified: Verified) -> vault_core.Digest | None:
    """Make the parts sent while the upload arrived the object. They are the very bytes
    that were authenticated and hashed as they were read (S3 checked each part's
    SHA-256 on arrival, and the object is assembled from exactly those parts), so the
    digest stands for the stored object without reading it back. None (after aborting)
    if the parts are not the whole upload or the store refused: store it whole then."""
    streamed = verified.streamed
    if streamed.key != key:
        streamed.abort()
        return None
    try:
        streamed.complete(verified.digest.stored_size)
    except StorageError as exc:
        logger.warning(
            "completing the streamed upload of %s failed (%s); storing it whole", key, exc
        )
        streamed.abort()
        return None
    return verified.digest


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
    item.search_text = compose_search_text(item.file_name, None, (), ())
    session.add(item)
    session.flush()
    return item
