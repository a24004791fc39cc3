"""The audit_events table and the recorder that logs each event to the custody ledger.

Both writes go through the caller's session: the event, its ledger leaf and the change
they describe commit together or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.adapters import ledger_sql
from audit.events import AuditEvent, EventType, details_commitment, new_salt
from evidence.adapters.sql.base import Base, UTCDateTime


class AuditEventRow(Base):
    """An audit event as stored, with the salt of its details commitment and its leaf."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_district_time", "district_id", "occurred_at"),
        UniqueConstraint("ledger_log_id", "ledger_index"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(40), index=True)
    subject: Mapped[str | None] = mapped_column(String(80), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    details_salt: Mapped[str | None] = mapped_column(String(32))
    details_sha256: Mapped[str] = mapped_column(String(64))
    ledger_log_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_logs.id"))
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)


class SqlEventRecorder:
    """Records events and appends their leaves through the caller's session (no commit)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, event: AuditEvent) -> str:
        salt = new_salt()
        commitment = details_commitment(event.details, salt)
        log = ledger_sql.log_of(self._session, event.district_id)
        index, new = ledger_sql.append_once(
            self._session, log.id, event, commitment, event.occurred_at
        )
        if not new:
            return event.id  # exactly once: the event and its row were stored before
        self._session.add(
            AuditEventRow(
                id=event.id,
                district_id=event.district_id,
                type=event.type.value,
                occurred_at=event.occurred_at,
                actor=event.actor,
                subject=event.subject,
                details=dict(event.details),
                details_salt=salt,
                details_sha256=commitment,
                ledger_log_id=log.id,
                ledger_index=index,
            )
        )
        return event.id


def event_at(session: Session, log_id: int, index: int) -> AuditEventRow | None:
    return session.scalars(
        select(AuditEventRow).where(
            AuditEventRow.ledger_log_id == log_id, AuditEventRow.ledger_index == index
        )
    ).first()


def backfill_unlogged(session: Session, origin_prefix: str, now: datetime) -> int:
    """Append audit events recorded before the ledger existed, oldest first.

    Each gets a fresh salt and commitment (earlier rows had an unsalted one). Returns
    how many were appended. Also gives districts created before the ledger their log."""
    from evidence.adapters.sql.org import District

    for district in session.scalars(select(District).order_by(District.id)):
        ledger_sql.ensure_log(
            session, None, ledger_sql.origin_for(origin_prefix, ledger_sql.SERVICE_LOG), now
        )
        ledger_sql.ensure_log(
            session, district.id, ledger_sql.origin_for(origin_prefix, district.code), now
        )
    rows = session.scalars(
        select(AuditEventRow)
        .where(AuditEventRow.ledger_index.is_(None))
        .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
    ).all()
    for row in rows:
        event = AuditEvent(
            type=EventType(row.type),
            occurred_at=row.occurred_at,
            district_id=row.district_id,
            actor=row.actor,
            subject=row.subject,
            details=dict(row.details),
            id=row.id,
        )
        salt = new_salt()
        commitment = details_commitment(event.details, salt)
        log = ledger_sql.log_of(session, event.district_id)
        row.ledger_index = ledger_sql.append(session, log.id, event, commitment, now)
        row.ledger_log_id, row.details_salt, row.details_sha256 = log.id, salt, commitment
    session.flush()
    return len(rows)
