"""The audit_events table and the recorder that writes to it in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.events import AuditEvent
from evidence.adapters.sql.base import Base, UTCDateTime


class AuditEventRow(Base):
    """An audit event as stored. `ledger_index` is set once the event is in the ledger."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_district_time", "district_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(40), index=True)
    subject: Mapped[str | None] = mapped_column(String(80), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    details_sha256: Mapped[str] = mapped_column(String(64))
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class SqlEventRecorder:
    """Writes audit events through the caller's SQLAlchemy session (no commit)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, event: AuditEvent) -> str:
        event_id = str(uuid.uuid4())
        self._session.add(
            AuditEventRow(
                id=event_id,
                district_id=event.district_id,
                type=event.type.value,
                occurred_at=event.occurred_at,
                actor=event.actor,
                subject=event.subject,
                details=dict(event.details),
                details_sha256=event.details_commitment(),
            )
        )
        return event_id
