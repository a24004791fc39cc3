"""Recording custody and audit events through the caller's session (one helper for all)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType, new_event_id


def record_event(
    session: Session,
    kind: EventType,
    now: datetime,
    district_id: int | None,
    actor: str,
    *,
    subject: str | None = None,
    evidence_id: str | None = None,
    sha256: str | None = None,
    device: str | None = None,
    event_id: str | None = None,
    **details: object,
) -> str:
    """Append an event in the caller's transaction; returns its id.

    `event_id` makes a retried report idempotent: the ledger keeps the first event with
    a given id. Details may hold personal data: they stay in the database and only their
    salted commitment reaches the public log."""
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
        id=event_id or new_event_id(),
    )
    return SqlEventRecorder(session).record(event)
