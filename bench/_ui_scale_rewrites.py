"""The evidence list's proposed query changes, written against app.evidence_search so
that they run on the same inputs as the app's own `search`.

Nothing here changes the project: the benchmark compares this function with the app's,
checks that both return the same page, and for one rerun binds it into its own process
(app.web.evidence_pages.search) to show the pages' times with the changes. The
changes, each against app/evidence_search.py's `search`:

1. Keyset: the cursor as a row comparison, `(sort value, id) < (after, after_id)`,
   instead of `value < after OR (value = after AND id < after_id)`. PostgreSQL uses a
   row comparison as an index condition on (…, sort value, id), so page 51 starts at
   the cursor; the OR form is a filter, and every earlier row is read and dropped.
2. Tag filter: look the tag's id up first and filter `evidence_tags.tag_id IN (ids)`.
   With a value to plan with, PostgreSQL knows from its statistics how common the tag
   is; joined to `tags`, it assumes an average tag and reads every item of a common one.
3. Text search (PostgreSQL): per word, the union of the ids whose notes or file name
   match (a trigram index serves each), whose tags match, and whose incidents' titles
   match, instead of an OR of EXISTS subqueries and LIKEs evaluated row by row."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import exists, false, func, or_, select, tuple_, union
from sqlalchemy.orm import Session

from app.evidence_search import (
    PAGE_SIZE,
    SORTS,
    Filters,
    Page,
    _like,
    _sort_column,
    _sort_key,
    decode_cursor,
    encode_cursor,
    filtered,
)
from evidence.adapters.sql.items import (
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
)
from evidence.policy import Scope

TRIGRAM_INDEXES = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_evidence_items_notes_trgm ON evidence_items "
    "USING gin (lower(notes) gin_trgm_ops)",
    "CREATE INDEX ix_evidence_items_file_name_trgm ON evidence_items "
    "USING gin (lower(file_name) gin_trgm_ops)",
    "CREATE INDEX ix_incidents_title_trgm ON incidents USING gin (lower(title) gin_trgm_ops)",
)


def _hits(word: str, district_id: int) -> Any:
    pattern = _like(word)
    return union(
        select(EvidenceItem.id).where(
            EvidenceItem.district_id == district_id,
            or_(
                func.lower(EvidenceItem.notes).like(pattern, escape="\\"),
                func.lower(EvidenceItem.file_name).like(pattern, escape="\\"),
            ),
        ),
        select(evidence_tags.c.evidence_id)
        .join(Tag, Tag.id == evidence_tags.c.tag_id)
        .where(Tag.district_id == district_id, func.lower(Tag.name).like(pattern, escape="\\")),
        select(incident_evidence.c.evidence_id)
        .join(Incident, Incident.id == incident_evidence.c.incident_id)
        .where(
            Incident.district_id == district_id,
            func.lower(Incident.title).like(pattern, escape="\\"),
        ),
    )


def search(session: Session, scope: Scope, filters: Filters, cursor: str | None = None) -> Page:
    """app.evidence_search.search with the three changes above; the same page."""
    if scope.empty:
        return Page([], None, filters)
    column = _sort_column(filters.sort)
    descending = SORTS[filters.sort][2]
    query = filtered(scope, replace(filters, tag=None, text=""))
    if filters.tag is not None:
        tag_ids = list(
            session.scalars(
                select(Tag.id).where(
                    Tag.district_id == scope.district_id,
                    func.lower(Tag.name) == filters.tag.lower(),
                )
            )
        )
        query = query.where(
            exists(
                select(1).where(
                    evidence_tags.c.evidence_id == EvidenceItem.id,
                    evidence_tags.c.tag_id.in_(tag_ids),
                )
            )
            if tag_ids
            else false()
        )
    for word in filters.text.split():
        query = query.where(EvidenceItem.id.in_(_hits(word, scope.district_id)))
    if cursor:
        after, after_id = decode_cursor(cursor)
        key = tuple_(column, EvidenceItem.id)
        query = query.where(key < (after, after_id) if descending else key > (after, after_id))
    order = (column.desc(), EvidenceItem.id.desc()) if descending else (column, EvidenceItem.id)
    rows = list(session.scalars(query.order_by(*order).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = (
        encode_cursor(_sort_key(rows[-1], filters.sort), rows[-1].id) if more and rows else None
    )
    return Page(rows, next_cursor, filters, first=cursor is None)
