"""Playback proxies: a browser-playable copy of an original that browsers cannot play.

Every video item gets a `playback_proxy` job when it is verified. The job reads the
original through its authenticated ranged reads, probes it, and when browsers cannot
play it as it is (HEVC, no faststart, an odd container) transcodes it to H.264/AAC,
faststart, 1 s keyframes. The proxy is sealed under its own data key as it is stored,
read back, authenticated, hashed and probed again, and only then recorded, with its
custody events, in one transaction. The original is only ever read: its object, hash
and custody chain stay as they were. Proxies are not evidence and carry no Object Lock;
the original remains what is disclosed and verified."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.custody import record_event
from app.jobs import PLAYBACK_PROXY, JobContext, JobFailed, enqueue, latest
from app.vault import decode_wrapped, encode_wrapped, item_context
from audit.events import EventType
from evidence import vault as vault_core
from evidence.adapters.sql.items import Derivative, EvidenceItem
from evidence.adapters.sql.jobs import Job
from evidence.crypto import segments
from evidence.crypto.sealing_reader import SealingReader
from evidence.errors import IntegrityError, StorageError
from evidence.media.probe import MediaError, probe
from evidence.media.reader import PlaintextReader
from evidence.media.scratch import EncryptedScratch
from evidence.media.transcode import make_proxy

logger = logging.getLogger(__name__)
PROXY_MEDIA_TYPE = "video/mp4"
ACTOR = "system"


def wants_proxy_check(media_type: str) -> bool:
    return media_type.startswith("video/")


def queue_proxy_check(
    session: Session, item: EvidenceItem, now: datetime, requested_by: int | None = None
) -> Job:
    return enqueue(
        session,
        PLAYBACK_PROXY,
        district_id=item.district_id,
        evidence_id=item.id,
        now=now,
        requested_by=requested_by,
    )


@dataclass(frozen=True)
class PlaybackState:
    """What the item page shows about playback: play the original, the proxy, or wait."""

    derivative: Derivative | None
    job: Job | None
    damaged: Derivative | None = None  # the newest copy a fixity check set aside

    @property
    def waiting(self) -> bool:
        return (
            self.derivative is None
            and self.job is not None
            and self.job.status in ("queued", "running")
        )

    @property
    def failed(self) -> bool:
        return self.derivative is None and self.job is not None and self.job.status == "failed"

    @property
    def set_aside(self) -> bool:
        """The only copy failed a fixity check and no new one is on its way."""
        return self.derivative is None and self.damaged is not None and not self.waiting


def proxy_of(session: Session, evidence_id: str) -> Derivative | None:
    """The item's newest sound playback copy; one a fixity check found damaged is set
    aside (kept for the record, never served), so a new one can be made."""
    return session.scalars(
        select(Derivative)
        .where(
            Derivative.evidence_id == evidence_id,
            Derivative.kind == "proxy",
            Derivative.integrity == "ok",
        )
        .order_by(Derivative.created_at.desc())
        .limit(1)
    ).first()


def playback_state(session: Session, item: EvidenceItem) -> PlaybackState:
    copies = session.scalars(
        select(Derivative)
        .where(Derivative.evidence_id == item.id, Derivative.kind == "proxy")
        .order_by(Derivative.created_at.desc())
    ).all()
    sound = next((c for c in copies if c.integrity == "ok"), None)
    damaged = None if sound else next((c for c in copies if c.integrity == "damaged"), None)
    return PlaybackState(sound, latest(session, PLAYBACK_PROXY, item.id), damaged)


def request_proxy(session: Session, item: EvidenceItem, now: datetime, user_id: int) -> Job | None:
    """Queue a (new) check for an item with none running; None if one is in hand."""
    state = playback_state(session, item)
    if state.derivative is not None or state.waiting:
        return None
    return queue_proxy_check(session, item, now, requested_by=user_id)


def make_playback_proxy(ctx: JobContext, job: Job) -> dict[str, object]:
    """The job: probe the original; make, store, verify and record a proxy if needed."""
    vault, database = ctx.vault, ctx.database
    with database.sessions() as session:
        item = session.get(EvidenceItem, job.evidence_id or "")
        if item is None or item.status != "verified" or item.object_id is None:
            raise JobFailed("the item is not a stored, verified original")
        existing = proxy_of(session, item.id)
        if existing is not None:
            return {"needed": True, "derivative_id": existing.id, "reason": "already made"}
        session.expunge(item)
    try:
        dek = vault.keys.unwrap(
            decode_wrapped(item.key_version or "", item.wrapped_key or ""),
            item_context(item.id, item.object_id or ""),
        )
        original = vault_core.EncryptedObject(
            item.object_key, bytes.fromhex(item.object_id or ""), item.stored_size or 0
        )
        reader = PlaintextReader(vault.store, original, dek, item.size)
        found = probe(reader, item.size)
        if found.plays_in_browsers:
            return {"needed": False, "reason": found.reason, "original": found.as_details()}
        derivative_id = str(uuid.uuid4())
        stored, sealed, info = _store_proxy(ctx, reader, item, derivative_id)
    except MediaError as exc:
        _record_failure(ctx, item, job, str(exc))
        raise JobFailed(str(exc)) from None
    except IntegrityError:
        _record_failure(ctx, item, job, "the original failed authentication")
        raise JobFailed("the original failed its integrity check; no copy was made") from None
    except StorageError as exc:
        raise JobFailed(f"the object store failed: {exc}") from None

    object_hex = sealed.object_id.hex()
    wrapped = vault.keys.wrap(stored.dek, item_context(derivative_id, object_hex))
    now = ctx.clock()
    common = {"evidence_id": item.id, "subject": f"evidence:{item.id}"}
    with database.transaction() as session:
        session.add(
            Derivative(
                id=derivative_id,
                evidence_id=item.id,
                kind="proxy",
                media_type=PROXY_MEDIA_TYPE,
                size=stored.digest.size,
                sha256=stored.digest.sha256,
                object_key=stored.key,
                wrapped_key=encode_wrapped(wrapped),
                key_version=wrapped.version,
                object_id=object_hex,
                segment_size=segments.DEFAULT_SEGMENT_SIZE,
                stored_size=stored.digest.stored_size,
                created_at=now,
                created_by=job.requested_by,
                details={
                    "source_sha256": item.sha256,
                    "why": found.reason,
                    "original": found.as_details(),
                    "proxy": info,
                    "stored_sha256": stored.digest.stored_sha256,
                    "job": job.id,
                },
            )
        )
        record_event(
            session,
            EventType.DERIVATIVE_CREATED,
            now,
            item.district_id,
            ACTOR,
            sha256=stored.digest.sha256,
            **common,
            derivative=derivative_id,
            derivative_kind="proxy",
            source_sha256=item.sha256,
            why=found.reason,
            size=stored.digest.size,
            job=job.id,
        )
        record_event(
            session,
            EventType.DERIVATIVE_VERIFIED,
            now,
            item.district_id,
            ACTOR,
            sha256=stored.digest.sha256,
            **common,
            derivative=derivative_id,
            stored_sha256=stored.digest.stored_sha256,
            stored_size=stored.digest.stored_size,
            key_version=wrapped.version,
        )
    logger.info("made playback proxy %s for evidence %s", derivative_id, item.id)
    return {"needed": True, "derivative_id": derivative_id, "reason": found.reason}


@dataclass(frozen=True)
class _Stored:
    key: str
    dek: bytes
    digest: vault_core.Digest


def _store_proxy(
    ctx: JobContext, reader: PlaintextReader, item: EvidenceItem, derivative_id: str
) -> tuple[_Stored, SealingReader, dict[str, object]]:
    store = ctx.vault.store
    key = f"derivatives/{derivative_id}"
    dek = segments.new_data_key()
    with EncryptedScratch(ctx.settings.upload_path / "scratch") as scratch:
        reader.seek(0)
        info = make_proxy(reader, item.size, scratch)
        size = scratch.seek(0, 2)
        scratch.seek(0)
        sealed = SealingReader(scratch, size, dek)
        store.put(key, sealed, size=sealed.expected_size)  # type: ignore[arg-type]
    try:
        obj = vault_core.EncryptedObject(key, sealed.object_id, sealed.expected_size)
        digest = vault_core.digest_object(store, obj, dek)
        if digest.sha256 != sealed.plaintext_sha256 or digest.size != size:
            raise IntegrityError("stored object failed authentication")
        check = probe(PlaintextReader(store, obj, dek, digest.size), digest.size)
        if not check.plays_in_browsers:
            raise MediaError(f"the copy still would not play: {check.reason}")
    except BaseException:
        _discard(store, key)
        raise
    return _Stored(key, dek, digest), sealed, info.as_details()


def _discard(store: object, key: str) -> None:
    try:
        store.delete(key)  # type: ignore[attr-defined]
    except StorageError:
        logger.warning("could not remove the unrecorded proxy object %s", key)


def _record_failure(ctx: JobContext, item: EvidenceItem, job: Job, reason: str) -> None:
    with ctx.database.transaction() as session:
        record_event(
            session,
            EventType.DERIVATIVE_FAILED,
            ctx.clock(),
            item.district_id,
            ACTOR,
            evidence_id=item.id,
            sha256=item.sha256,
            subject=f"evidence:{item.id}",
            derivative_kind="proxy",
            reason=reason[:300],
            job=job.id,
        )
