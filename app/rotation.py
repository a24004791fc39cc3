"""Key rotation: re-wrap every data key under the newest key-encryption key version.

Objects are never re-encrypted: only the small wrapped keys change. Work goes in batches,
each batch with its custody events in one transaction, so an interrupted rotation
resumes where it stopped when `bwc keys rotate` runs again (it finishes the rotation in
progress before it starts another)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.admin import only_district
from app.custody import record_event
from app.db import Database
from app.vault import Vault, decode_wrapped, encode_wrapped, item_context
from audit.events import EventType
from evidence.adapters.sql.items import Derivative, EvidenceItem
from evidence.adapters.sql.vault import IngestKey

BATCH = 200


@dataclass(frozen=True)
class RotationReport:
    version: str
    started_new: bool
    items: int
    derivatives: int
    ingest_keys: int

    def __str__(self) -> str:
        verb = "rotated to" if self.started_new else "finished rotating to"
        return (
            f"{verb} key version {self.version}: re-wrapped {self.items} item key(s), "
            f"{self.derivatives} derivative key(s) and {self.ingest_keys} ingest key(s)"
        )


def _pending(database: Database, version: str) -> bool:
    with database.sessions() as session:
        for model in (EvidenceItem, Derivative):
            found = session.scalar(
                select(model.id)
                .where(model.wrapped_key.is_not(None), model.key_version != version)
                .limit(1)
            )
            if found is not None:
                return True
        return (
            session.scalar(select(IngestKey.version).where(IngestKey.kek_version != version))
            is not None
        )


def _record(
    session: Session,
    kind: EventType,
    district_id: int,
    actor: str,
    now: datetime,
    evidence_id: str | None = None,
    sha: str | None = None,
    **details: object,
) -> None:
    subject = f"evidence:{evidence_id}" if evidence_id else "keys:kek"
    record_event(
        session,
        kind,
        now,
        district_id,
        actor,
        subject=subject,
        evidence_id=evidence_id,
        sha256=sha,
        **details,
    )


def _districts_of(session: Session, evidence_ids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(EvidenceItem.id, EvidenceItem.district_id).where(
            EvidenceItem.id.in_(sorted(set(evidence_ids)))
        )
    )
    return {evidence_id: district_id for evidence_id, district_id in rows}


def rotate_keys(database: Database, vault: Vault, *, actor: str, now: datetime) -> RotationReport:
    """Re-wrap all keys under the newest version; add a version first unless resuming."""
    keys = vault.keys
    started_new = False
    add_version = getattr(keys, "add_version", None)
    if not _pending(database, keys.current_version()) and add_version is not None:
        add_version(now)
        started_new = True
    version = keys.current_version()
    with database.transaction() as session:
        district = only_district(session)
        district_id = district.id
        _record(
            session,
            EventType.KEY_ROTATION_STARTED,
            district_id,
            actor,
            now,
            version=version,
            resumed=not started_new,
        )
    items = derivatives = ingest_keys = 0
    while True:
        with database.transaction() as session:
            batch = list(
                session.scalars(
                    select(EvidenceItem)
                    .where(
                        EvidenceItem.wrapped_key.is_not(None), EvidenceItem.key_version != version
                    )
                    .order_by(EvidenceItem.id)
                    .limit(BATCH)
                )
            )
            for item in batch:
                context = item_context(item.id, item.object_id or "")
                dek = keys.unwrap(
                    decode_wrapped(item.key_version or "", item.wrapped_key or ""), context
                )
                old = item.key_version
                wrapped = keys.wrap(dek, context)
                item.wrapped_key, item.key_version = encode_wrapped(wrapped), wrapped.version
                _record(
                    session,
                    EventType.EVIDENCE_REKEYED,
                    item.district_id,
                    actor,
                    now,
                    evidence_id=item.id,
                    sha=item.sha256,
                    old_version=old,
                    new_version=wrapped.version,
                )
            items += len(batch)
        if not batch:
            break
    while True:
        with database.transaction() as session:
            batch_d = list(
                session.scalars(
                    select(Derivative)
                    .where(Derivative.wrapped_key.is_not(None), Derivative.key_version != version)
                    .order_by(Derivative.id)
                    .limit(BATCH)
                )
            )
            owners = _districts_of(session, [d.evidence_id for d in batch_d])
            for derivative in batch_d:
                context = item_context(derivative.id, derivative.object_id or "")
                dek = keys.unwrap(
                    decode_wrapped(derivative.key_version or "", derivative.wrapped_key or ""),
                    context,
                )
                old = derivative.key_version
                wrapped = keys.wrap(dek, context)
                derivative.wrapped_key = encode_wrapped(wrapped)
                derivative.key_version = wrapped.version
                _record(
                    session,
                    EventType.DERIVATIVE_REKEYED,
                    owners[derivative.evidence_id],
                    actor,
                    now,
                    evidence_id=derivative.evidence_id,
                    sha=derivative.sha256,
                    derivative=derivative.id,
                    derivative_kind=derivative.kind,
                    old_version=old,
                    new_version=wrapped.version,
                )
            derivatives += len(batch_d)
        if not batch_d:
            break
    with database.transaction() as session:
        for row in session.scalars(select(IngestKey).where(IngestKey.kek_version != version)):
            context = {"purpose": "ingest-key", "version": row.version}
            private = keys.unwrap(decode_wrapped(row.kek_version, row.private_wrapped), context)
            wrapped = keys.wrap(private, context)
            row.private_wrapped, row.kek_version = encode_wrapped(wrapped), wrapped.version
            ingest_keys += 1
        _record(
            session,
            EventType.KEY_ROTATION_COMPLETED,
            district_id,
            actor,
            now,
            version=version,
            items=items,
            derivatives=derivatives,
            ingest_keys=ingest_keys,
        )
    return RotationReport(version, started_new, items, derivatives, ingest_keys)
