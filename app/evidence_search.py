"""Finding evidence: filters, text search, sorting and keyset pagination, within scope.

Pure query building on SQLAlchemy; the web page parses a request into `Filters` and
hands over the principal's `Scope` (evidence/policy.py), so nothing outside the scope is
ever selected, counted or hinted at. Pages are keyset-paginated: a cursor names the last
row shown (its sort value and id), so page 1,000 costs what page 1 costs and rows
arriving meanwhile neither repeat nor vanish between pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    or_,
    select,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.orm import Session

from evidence.adapters.sql.items import (
    EVIDENCE_STATUSES,
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
)
from evidence.errors import InvalidInput
from evidence.policy import Scope

PAGE_SIZE = 50
MAX_TEXT = 100

#: Sort orders offered in the list: key -> (label, column, descending).
SORTS: dict[str, tuple[str, str, bool]] = {
    "recorded_desc": ("Recorded, newest first", "recorded", True),
    "recorded_asc": ("Recorded, oldest first", "recorded", False),
    "ingested_desc": ("Docked, newest first", "ingested", True),
    "ingested_asc": ("Docked, oldest first", "ingested", False),
}
DEFAULT_SORT = "recorded_desc"

#: Dock flags offered in the list's filter (DESIGN.md §6 vocabulary and ingest's own);
#: any flag word a dock declared (lower-case letters and underscores) can be filtered by.
KNOWN_FLAGS = (
    "clock_skew",
    "time_inconsistent",
    "empty_file",
    "malformed_container",
    "missing_sidecar",
    "sidecar_unparseable",
    "sidecar_hash_mismatch",
    "sidecar_size_mismatch",
    "sidecar_serial_mismatch",
    "nonstandard_filename",
    "unexpected_location",
    "unknown_wearer",
    "wearer_mismatch",
)
_FLAG = re.compile(r"^[a-z_]{1,40}$")


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; every field optional. Ids are checked against the
    scope by the query itself (an id outside it simply matches nothing)."""

    school_id: int | None = None
    wearer_id: int | None = None
    camera_id: int | None = None
    dock_id: int | None = None
    category_id: int | None = None
    incident_id: str | None = None
    tag: str | None = None
    status: str | None = None
    flag: str | None = None
    recorded_from: date | None = None
    recorded_to: date | None = None
    text: str = ""
    sort: str = DEFAULT_SORT

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for links to other pages and sorts)."""
        out: dict[str, str] = {}
        for name in (
            "school_id",
            "wearer_id",
            "camera_id",
            "dock_id",
            "category_id",
            "incident_id",
            "tag",
            "status",
            "flag",
            "recorded_from",
            "recorded_to",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, date) else str(value)
        if self.text:
            out["q"] = self.text
        if self.sort != DEFAULT_SORT:
            out["sort"] = self.sort
        return out

    @property
    def active(self) -> bool:
        return bool(replace(self, sort=DEFAULT_SORT).as_args())


def _int(args: dict[str, str], name: str) -> int | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidInput(f"{name} must be a whole number")
    return int(raw)


def _date(args: dict[str, str], name: str, label: str) -> date | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a date like 2026-09-01") from None


def parse_filters(args: dict[str, str]) -> Filters:
    """Filters from query arguments; InvalidInput with a message a person can act on."""
    text = " ".join(args.get("q", "").split())
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"search text is limited to {MAX_TEXT} characters")
    status = args.get("status", "").strip() or None
    if status is not None and status not in (*EVIDENCE_STATUSES, "tampered"):
        raise InvalidInput("unknown status")
    flag = args.get("flag", "").strip() or None
    if flag is not None and not _FLAG.match(flag):
        raise InvalidInput("a dock flag is a lower-case word such as clock_skew")
    sort = args.get("sort", "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        raise InvalidInput("unknown sort order")
    incident = args.get("incident_id", "").strip() or None
    if incident is not None and len(incident) != 36:
        raise InvalidInput("unknown incident")
    tag = args.get("tag", "").strip() or None
    if tag is not None and len(tag) > 64:
        raise InvalidInput("tags are at most 64 characters")
    start = _date(args, "recorded_from", "“Recorded from”")
    end = _date(args, "recorded_to", "“Recorded to”")
    if start and end and end < start:
        raise InvalidInput("“Recorded to” is before “Recorded from”")
    return Filters(
        school_id=_int(args, "school_id"),
        wearer_id=_int(args, "wearer_id"),
        camera_id=_int(args, "camera_id"),
        dock_id=_int(args, "dock_id"),
        category_id=_int(args, "category_id"),
        incident_id=incident,
        tag=tag,
        status=status,
        flag=flag,
        recorded_from=start,
        recorded_to=end,
        text=text,
        sort=sort,
    )


def sort_value() -> ColumnElement[Any]:
    """When a recording happened, or when it was docked if the camera did not say."""
    return func.coalesce(EvidenceItem.recorded_start, EvidenceItem.ingested_at)


def _sort_column(sort: str) -> ColumnElement[Any]:
    if SORTS[sort][1] == "recorded":
        return sort_value()
    return EvidenceItem.__table__.c.ingested_at


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """The rows of evidence the scope covers (never true across districts)."""
    clause: ColumnElement[bool] = EvidenceItem.district_id == scope.district_id
    if scope.district_wide:
        return clause
    reach = []
    if scope.school_ids:
        reach.append(EvidenceItem.school_id.in_(sorted(scope.school_ids)))
    if scope.wearer_ids:
        reach.append(EvidenceItem.wearer_id.in_(sorted(scope.wearer_ids)))
    return and_(clause, or_(*reach)) if reach else and_(clause, false())


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: Words matching fewer items than this are found from the indexes, then sorted.
FEW_MATCHES = 50_000


def _word_sources(pattern: str) -> list[Select[Any]]:
    """Ids of items whose tags, linked incidents' titles, notes or name hold the word:
    tags and incidents match in their own small tables, names and notes through the
    trigram indexes on PostgreSQL (migration 0010)."""
    return [
        select(evidence_tags.c.evidence_id).where(
            evidence_tags.c.tag_id.in_(
                select(Tag.id).where(func.lower(Tag.name).like(pattern, escape="\\"))
            )
        ),
        select(incident_evidence.c.evidence_id).where(
            incident_evidence.c.incident_id.in_(
                select(Incident.id).where(func.lower(Incident.title).like(pattern, escape="\\"))
            )
        ),
        select(EvidenceItem.id).where(func.lower(EvidenceItem.notes).like(pattern, escape="\\")),
        select(EvidenceItem.id).where(
            func.lower(EvidenceItem.file_name).like(pattern, escape="\\")
        ),
    ]


def _text_match(text: str, session: Session | None = None) -> ColumnElement[bool]:
    """Every word appears in a tag, the notes, a linked incident's title or the name.

    Two plans, chosen per word by a bounded probe (with a session): a word with few
    matches is looked up in the indexes and the matching ids joined, so a rare word
    costs little; a common one is tested row by row while the list's order is walked,
    which finds a page of matches quickly. Either alone is slow for the other kind
    (measured at 1,000,000 items: 4 s for a rare word walking, 0.5 s for a common one
    looked up)."""
    clauses = []
    for word in text.split():
        pattern = _like(word)
        sources = _word_sources(pattern)
        if session is not None and _few(session, sources):
            clauses.append(EvidenceItem.id.in_(union(*sources)))
            continue
        tagged, titled, noted, named = sources
        clauses.append(
            or_(
                EvidenceItem.id.in_(tagged),
                EvidenceItem.id.in_(titled),
                func.lower(EvidenceItem.notes).like(pattern, escape="\\"),
                func.lower(EvidenceItem.file_name).like(pattern, escape="\\"),
            )
        )
    return and_(*clauses)


def _few(session: Session, sources: list[Select[Any]]) -> bool:
    """Do the sources name fewer than FEW_MATCHES items (counting repeats)? Reads at
    most that many index entries."""
    probe = union_all(*sources).limit(FEW_MATCHES).subquery()
    found = session.scalar(select(func.count()).select_from(probe)) or 0
    return found < FEW_MATCHES


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def filtered(
    scope: Scope, filters: Filters, session: Session | None = None
) -> Select[tuple[EvidenceItem]]:
    """The scoped, filtered query (unsorted, unpaged)."""
    query = select(EvidenceItem).where(in_scope(scope))
    f = filters
    for column, value in (
        (EvidenceItem.school_id, f.school_id),
        (EvidenceItem.wearer_id, f.wearer_id),
        (EvidenceItem.camera_id, f.camera_id),
        (EvidenceItem.dock_id, f.dock_id),
        (EvidenceItem.category_id, f.category_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.status == "tampered":
        query = query.where(EvidenceItem.integrity == "tampered")
    elif f.status is not None:
        query = query.where(EvidenceItem.status == f.status)
    if f.flag is not None:  # [a-z_] only; the JSON list's quotes bound the word
        pattern = '%"' + f.flag.replace("_", "\\_") + '"%'
        query = query.where(cast(EvidenceItem.flags, String).like(pattern, escape="\\"))
    if f.recorded_from is not None:
        query = query.where(sort_value() >= _day_start(f.recorded_from))
    if f.recorded_to is not None:
        query = query.where(sort_value() < _day_start(f.recorded_to + timedelta(days=1)))
    if f.tag is not None:
        query = query.where(
            exists(
                select(1)
                .select_from(evidence_tags.join(Tag, Tag.id == evidence_tags.c.tag_id))
                .where(
                    evidence_tags.c.evidence_id == EvidenceItem.id,
                    Tag.district_id == scope.district_id,
                    func.lower(Tag.name) == f.tag.lower(),
                )
            )
        )
    if f.incident_id is not None:
        query = query.where(
            exists(
                select(1).where(
                    incident_evidence.c.evidence_id == EvidenceItem.id,
                    incident_evidence.c.incident_id == f.incident_id,
                )
            )
        )
    if f.text:
        query = query.where(_text_match(f.text, session))
    return query


@dataclass(frozen=True)
class Page:
    items: list[EvidenceItem]
    next_cursor: str | None
    filters: Filters
    first: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(value: datetime, item_id: str) -> str:
    raw = json.dumps([value.astimezone(UTC).isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, item_id = json.loads(raw)
        parsed = datetime.fromisoformat(when)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("this page link is damaged; go back to the first page") from None
    if not isinstance(item_id, str) or len(item_id) != 36 or parsed.tzinfo is None:
        raise InvalidInput("this page link is damaged; go back to the first page")
    return parsed, item_id


def _sort_key(item: EvidenceItem, sort: str) -> datetime:
    if SORTS[sort][1] == "recorded":
        return item.recorded_start or item.ingested_at
    return item.ingested_at


def search(session: Session, scope: Scope, filters: Filters, cursor: str | None = None) -> Page:
    """One page of matching items in the chosen order, and the cursor of the next."""
    if scope.empty:
        return Page([], None, filters)
    column = _sort_column(filters.sort)
    descending = SORTS[filters.sort][2]
    query = filtered(scope, filters, session)
    if cursor:
        after, after_id = decode_cursor(cursor)
        # A row comparison, which PostgreSQL uses as an index condition on (…, value,
        # id): a deep page starts at the cursor instead of reading every earlier row.
        here, there = tuple_(column, EvidenceItem.id), tuple_(after, after_id)
        query = query.where(here < there if descending else here > there)
    order = (column.desc(), EvidenceItem.id.desc()) if descending else (column, EvidenceItem.id)
    rows = list(session.scalars(query.order_by(*order).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = (
        encode_cursor(_sort_key(rows[-1], filters.sort), rows[-1].id) if more and rows else None
    )
    return Page(rows, next_cursor, filters, first=cursor is None)
