"""Incidents: something that happened at a school, with its time window, the wearers
involved and the footage linked to it. The caller checks permissions (evidence/policy.py)
and commits; linking and unlinking footage are custody events of the item."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.annotate import clean_text, record_item_event
from app.custody import record_event
from audit.events import EventType
from evidence.adapters.sql.items import (
    EvidenceItem,
    Incident,
    incident_evidence,
    incident_wearers,
    refresh_search_text,
)
from evidence.adapters.sql.org import User, Wearer
from evidence.errors import Conflict, InvalidInput

MAX_NUMBER = 40
MAX_TITLE = 200


def create_incident(
    session: Session,
    user: User,
    *,
    school_id: int,
    number: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime | None,
    wearer_ids: Sequence[int],
    now: datetime,
) -> Incident:
    number_text = clean_text(number, limit=MAX_NUMBER, what="the incident number")
    title_text = _title(title)
    if not number_text:
        raise InvalidInput("an incident needs a number and a title")
    _check_window(starts_at, ends_at)
    taken = session.scalar(
        select(Incident.id).where(
            Incident.district_id == user.district_id, Incident.number == number_text
        )
    )
    if taken:
        raise Conflict(f"incident number {number_text} is already used")
    wearers = _wearers(session, user.district_id, school_id, wearer_ids)
    incident = Incident(
        id=str(uuid.uuid4()),
        district_id=user.district_id,
        school_id=school_id,
        number=number_text,
        title=title_text,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=user.id,
        created_at=now,
    )
    session.add(incident)
    session.flush()
    for wearer in wearers:
        session.execute(
            insert(incident_wearers).values(incident_id=incident.id, wearer_id=wearer.id)
        )
    record_event(
        session,
        EventType.INCIDENT_CREATED,
        now,
        user.district_id,
        user.pseudonym,
        subject=f"incident:{incident.id}",
        number=number_text,
        title=title_text,
    )
    return incident


def _title(title: str) -> str:
    text = clean_text(title, limit=MAX_TITLE, what="the title")
    if not text:
        raise InvalidInput("an incident needs a number and a title")
    return text


def _check_window(starts_at: datetime, ends_at: datetime | None) -> None:
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput("times must carry a time zone")
    if ends_at is not None and ends_at < starts_at:
        raise InvalidInput("the incident ends before it starts")


def _wearers(
    session: Session, district_id: int, school_id: int, wearer_ids: Sequence[int]
) -> list[Wearer]:
    """The chosen wearers; all must belong to the incident's school."""
    if not wearer_ids:
        return []
    wearers = list(
        session.scalars(
            select(Wearer).where(
                Wearer.id.in_(list(wearer_ids)),
                Wearer.district_id == district_id,
                Wearer.school_id == school_id,
            )
        )
    )
    if len(wearers) != len(set(wearer_ids)):
        raise InvalidInput("choose the involved wearers from the list")
    return wearers


def change_incident(
    session: Session,
    incident: Incident,
    user: User,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime | None,
    wearer_ids: Sequence[int],
    now: datetime,
) -> bool:
    """Change the title, time window or wearers (never the number or the school);
    False when nothing changed. Recorded with what changed."""
    if incident.closed_at is not None:
        raise InvalidInput("the incident is closed; reopen it to change it")
    title_text = _title(title)
    _check_window(starts_at, ends_at)
    wearers = _wearers(session, incident.district_id, incident.school_id, wearer_ids)
    before = {w.id for w in involved_wearers(session, incident)}
    after = {w.id for w in wearers}
    changed = [
        name
        for name, differs in (
            ("title", title_text != incident.title),
            ("starts_at", starts_at != incident.starts_at),
            ("ends_at", ends_at != incident.ends_at),
            ("wearers", before != after),
        )
        if differs
    ]
    if not changed:
        return False
    incident.title, incident.starts_at, incident.ends_at = title_text, starts_at, ends_at
    if "title" in changed:  # the linked items' search text holds the title
        linked = select(incident_evidence.c.evidence_id).where(
            incident_evidence.c.incident_id == incident.id
        )
        refresh_search_text(session, session.scalars(linked))
    if before != after:
        session.execute(
            delete(incident_wearers).where(incident_wearers.c.incident_id == incident.id)
        )
        for wearer_id in sorted(after):
            session.execute(
                insert(incident_wearers).values(incident_id=incident.id, wearer_id=wearer_id)
            )
    _incident_event(session, EventType.INCIDENT_CHANGED, incident, user, now, changed=changed)
    return True


def close_incident(
    session: Session, incident: Incident, user: User, now: datetime, *, reason: str = ""
) -> None:
    """Close: no more footage is linked to it; what is linked stays."""
    if incident.closed_at is not None:
        return
    note = clean_text(reason, limit=MAX_TITLE, what="the reason")
    incident.closed_at = now
    _incident_event(session, EventType.INCIDENT_CLOSED, incident, user, now, reason=note)


def reopen_incident(session: Session, incident: Incident, user: User, now: datetime) -> None:
    if incident.closed_at is None:
        return
    incident.closed_at = None
    _incident_event(session, EventType.INCIDENT_REOPENED, incident, user, now)


def _incident_event(
    session: Session,
    kind: EventType,
    incident: Incident,
    user: User,
    now: datetime,
    **details: object,
) -> None:
    record_event(
        session,
        kind,
        now,
        incident.district_id,
        user.pseudonym,
        subject=f"incident:{incident.id}",
        number=incident.number,
        **details,
    )


def involved_wearers(session: Session, incident: Incident) -> list[Wearer]:
    return list(
        session.scalars(
            select(Wearer)
            .join(incident_wearers, incident_wearers.c.wearer_id == Wearer.id)
            .where(incident_wearers.c.incident_id == incident.id)
            .order_by(Wearer.display_name)
        )
    )


def is_linked(session: Session, incident: Incident, item: EvidenceItem) -> bool:
    return (
        session.scalar(
            select(incident_evidence.c.evidence_id).where(
                incident_evidence.c.incident_id == incident.id,
                incident_evidence.c.evidence_id == item.id,
            )
        )
        is not None
    )


def link(
    session: Session, incident: Incident, item: EvidenceItem, user: User, now: datetime
) -> bool:
    """Link the item to the incident; False if it already was (nothing recorded)."""
    if incident.district_id != item.district_id:
        raise InvalidInput("the incident and the recording belong to different districts")
    if incident.closed_at is not None:
        raise InvalidInput(f"incident {incident.number} is closed; reopen it to link footage")
    if is_linked(session, incident, item):
        return False
    session.execute(
        insert(incident_evidence).values(
            incident_id=incident.id, evidence_id=item.id, linked_by=user.id, linked_at=now
        )
    )
    refresh_search_text(session, [item.id])
    _custody(session, EventType.EVIDENCE_LINKED, incident, item, user, now)
    return True


def unlink(
    session: Session, incident: Incident, item: EvidenceItem, user: User, now: datetime
) -> bool:
    removed = session.execute(
        delete(incident_evidence).where(
            incident_evidence.c.incident_id == incident.id,
            incident_evidence.c.evidence_id == item.id,
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        return False
    refresh_search_text(session, [item.id])
    _custody(session, EventType.EVIDENCE_UNLINKED, incident, item, user, now)
    return True


def _custody(
    session: Session,
    kind: EventType,
    incident: Incident,
    item: EvidenceItem,
    user: User,
    now: datetime,
) -> None:
    record_item_event(
        session, kind, item, user, now, incident=incident.id, incident_number=incident.number
    )
