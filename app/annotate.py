"""Tags, categories and bookmarks on evidence: checked input, one custody event each.

The caller has already decided that the person may annotate or categorise the item
(evidence/policy.py) and commits the session. Tag names, bookmark notes and category
names are details of the event: they stay in the database and only their commitment
reaches the public ledger (DESIGN.md §4)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.custody import record_event
from audit.events import EventType
from evidence.adapters.sql.items import (
    Bookmark,
    Category,
    EvidenceItem,
    Tag,
    evidence_tags,
    refresh_search_text,
    tag_link,
)
from evidence.adapters.sql.org import User
from evidence.errors import InvalidInput, NotFound

MAX_TAG = 64
MAX_TAGS_PER_ITEM = 50
MAX_BOOKMARK_NOTE = 500
_TIME = re.compile(
    r"^(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:\.(\d{1,3}))?$|^(\d{1,6})(?:\.(\d{1,3}))?$"
)


def clean_text(value: str, *, limit: int, what: str) -> str:
    """Whitespace collapsed, no control or format characters, at most `limit` long."""
    text = " ".join(value.split())
    if any(unicodedata.category(c) in {"Cc", "Cf", "Co", "Cs"} for c in text):
        raise InvalidInput(f"{what} contains characters that cannot be shown")
    if len(text) > limit:
        raise InvalidInput(f"{what} is limited to {limit} characters")
    return text


def record_item_event(
    session: Session,
    kind: EventType,
    item: EvidenceItem,
    user: User,
    now: datetime,
    **details: Any,
) -> None:
    """A custody event of the item, by the user (details stay in the database)."""
    record_event(
        session,
        kind,
        now,
        item.district_id,
        user.pseudonym,
        subject=f"evidence:{item.id}",
        evidence_id=item.id,
        sha256=item.sha256,
        **details,
    )


def item_tags(session: Session, item: EvidenceItem) -> list[Tag]:
    return list(
        session.scalars(
            select(Tag)
            .join(evidence_tags, evidence_tags.c.tag_id == Tag.id)
            .where(evidence_tags.c.evidence_id == item.id)
            .order_by(Tag.name)
        )
    )


def add_tag(session: Session, item: EvidenceItem, user: User, name: str, now: datetime) -> Tag:
    """Tag the item (the district's tag of that name, any case, or a new one)."""
    text = clean_text(name, limit=MAX_TAG, what="a tag")
    if not text:
        raise InvalidInput("write the tag to add")
    tag = session.scalars(
        select(Tag).where(Tag.district_id == item.district_id, func.lower(Tag.name) == text.lower())
    ).first()
    if tag is None:
        tag = Tag(district_id=item.district_id, name=text)
        session.add(tag)
        session.flush()
    current = item_tags(session, item)
    if any(t.id == tag.id for t in current):
        return tag
    if len(current) >= MAX_TAGS_PER_ITEM:
        raise InvalidInput(f"an item has at most {MAX_TAGS_PER_ITEM} tags")
    session.execute(
        insert(evidence_tags).values(tag_link(item, tag.id, added_by=user.id, added_at=now))
    )
    refresh_search_text(session, [item.id])
    record_item_event(session, EventType.EVIDENCE_TAGGED, item, user, now, tag=tag.name)
    return tag


def remove_tag(
    session: Session, item: EvidenceItem, user: User, tag_id: int, now: datetime
) -> None:
    tag = session.get(Tag, tag_id)
    if tag is None or tag.district_id != item.district_id:
        raise NotFound("no such tag on this item")
    removed = session.execute(
        delete(evidence_tags).where(
            evidence_tags.c.evidence_id == item.id, evidence_tags.c.tag_id == tag.id
        )
    )
    if removed.rowcount:  # type: ignore[attr-defined]
        refresh_search_text(session, [item.id])
        record_item_event(session, EventType.EVIDENCE_UNTAGGED, item, user, now, tag=tag.name)


def set_category(
    session: Session, item: EvidenceItem, user: User, category_id: int | None, now: datetime
) -> None:
    category = None
    if category_id is not None:
        category = session.get(Category, category_id)
        if category is None or category.district_id != item.district_id:
            raise InvalidInput("choose one of the listed categories")
        if category.retired_at is not None and category.id != item.category_id:
            raise InvalidInput(f"the category {category.name} is retired; choose another")
    new_id = category.id if category else None
    if item.category_id == new_id:
        return
    before = session.get(Category, item.category_id) if item.category_id else None
    item.category_id = new_id
    record_item_event(
        session,
        EventType.EVIDENCE_CATEGORISED,
        item,
        user,
        now,
        category=category.name if category else None,
        previous=before.name if before else None,
    )


def parse_moment(text: str) -> int:
    """A time in the recording as milliseconds: `83`, `1:23`, `1:02:03` or `1:23.5`."""
    match = _TIME.match(text.strip())
    if not match:
        raise InvalidInput("give the time as minutes:seconds, such as 1:23, or seconds")
    hours, minutes, seconds, fraction, whole, whole_fraction = match.groups()
    if whole is not None:
        base = int(whole) * 1000
        fraction = whole_fraction
    else:
        if int(seconds) > 59 or (hours is not None and int(minutes) > 59):
            raise InvalidInput("seconds and minutes go up to 59")
        base = ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000
    return base + (int((fraction or "0").ljust(3, "0")) if fraction else 0)


def add_bookmark(
    session: Session, item: EvidenceItem, user: User, at: str, note: str, now: datetime
) -> Bookmark:
    at_ms = parse_moment(at)
    text = clean_text(note, limit=MAX_BOOKMARK_NOTE, what="the note")
    if not text:
        raise InvalidInput("say what happens at this moment")
    bookmark = Bookmark(
        evidence_id=item.id, user_id=user.id, at_ms=at_ms, note=text, created_at=now
    )
    session.add(bookmark)
    session.flush()
    record_item_event(
        session, EventType.EVIDENCE_BOOKMARKED, item, user, now, at_ms=at_ms, note=text
    )
    return bookmark
