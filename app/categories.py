"""A district's categories of footage: add, rename and describe, retire and restore.

Categories classify evidence (wearers categorise their own clips, supervisors their
schools'); the retention rules attach to them. A category is never deleted once made:
items keep the category they were given, and a retired one is no longer offered for
new classification. Each change is an administrative event in the ledger; names and
descriptions are details, kept in the database (DESIGN.md §4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.annotate import clean_text
from app.custody import record_event
from audit.events import EventType
from evidence.adapters.sql.items import Category, EvidenceItem
from evidence.errors import Conflict, InvalidInput

MAX_NAME = 100
MAX_DESCRIPTION = 500

#: What a new district starts with (administrators change them at /admin/categories).
DEFAULT_CATEGORIES = (
    ("Incident", "Footage of an incident that was reported or may be."),
    ("Use of force", "Any physical intervention or restraint."),
    ("Safeguarding concern", "Footage relevant to a pupil's safety or welfare."),
    ("Complaint", "Footage a complaint refers to."),
    ("Training", "Footage kept for training, with everyone's consent."),
    ("No incident", "Routine footage nobody needs; shortest retention."),
)


def _name(raw: str) -> str:
    name = clean_text(raw, limit=MAX_NAME, what="The name")
    if not name:
        raise InvalidInput("give the category a name")
    return name


def _description(raw: str) -> str | None:
    return clean_text(raw, limit=MAX_DESCRIPTION, what="The description") or None


def _check_unique(session: Session, district_id: int, name: str, keep: int | None) -> None:
    clash = session.scalar(
        select(Category.id).where(
            Category.district_id == district_id,
            func.lower(Category.name) == name.lower(),
            Category.id != (keep or 0),
        )
    )
    if clash is not None:
        raise Conflict(f"a category named {name!r} already exists")


def categories_of(
    session: Session, district_id: int, *, include_retired: bool = True
) -> list[Category]:
    query = select(Category).where(Category.district_id == district_id)
    if not include_retired:
        query = query.where(Category.retired_at.is_(None))
    return list(session.scalars(query.order_by(Category.name)))


def usage(session: Session, district_id: int) -> dict[int, int]:
    """How many items carry each category."""
    rows = session.execute(
        select(EvidenceItem.category_id, func.count())
        .where(EvidenceItem.district_id == district_id, EvidenceItem.category_id.is_not(None))
        .group_by(EvidenceItem.category_id)
    )
    return {int(category_id): int(count) for category_id, count in rows}


def _event(
    session: Session,
    kind: EventType,
    category: Category,
    actor: str,
    now: datetime,
    **details: object,
) -> None:
    record_event(
        session,
        kind,
        now,
        category.district_id,
        actor,
        subject=f"category:{category.id}",
        **details,
    )


def add_category(
    session: Session, district_id: int, name: str, description: str, *, actor: str, now: datetime
) -> Category:
    clean = _name(name)
    _check_unique(session, district_id, clean, None)
    category = Category(
        district_id=district_id, name=clean, description=_description(description), created_at=now
    )
    session.add(category)
    session.flush()
    _event(session, EventType.CATEGORY_CREATED, category, actor, now, name=clean)
    return category


def change_category(
    session: Session, category: Category, name: str, description: str, *, actor: str, now: datetime
) -> bool:
    """Rename or re-describe; False when nothing changed."""
    clean, text = _name(name), _description(description)
    if (clean, text) == (category.name, category.description):
        return False
    _check_unique(session, category.district_id, clean, category.id)
    previous = category.name
    category.name, category.description = clean, text
    _event(session, EventType.CATEGORY_CHANGED, category, actor, now, name=clean, previous=previous)
    return True


def retire_category(session: Session, category: Category, *, actor: str, now: datetime) -> None:
    if category.retired_at is not None:
        return
    category.retired_at = now
    _event(session, EventType.CATEGORY_RETIRED, category, actor, now, name=category.name)


def restore_category(session: Session, category: Category, *, actor: str, now: datetime) -> None:
    if category.retired_at is None:
        return
    category.retired_at = None
    _event(session, EventType.CATEGORY_RESTORED, category, actor, now, name=category.name)


def seed_defaults(session: Session, district_id: int, *, actor: str, now: datetime) -> int:
    """Add the default categories a district lacks; how many were added."""
    have = {c.name.lower() for c in categories_of(session, district_id)}
    added = 0
    for name, description in DEFAULT_CATEGORIES:
        if name.lower() not in have:
            add_category(session, district_id, name, description, actor=actor, now=now)
            added += 1
    return added
