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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
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
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ClauseElement, Executable

from app import local_time
from evidence import search_text
from evidence.adapters.sql.items import (
    EVIDENCE_STATUSES,
    EvidenceItem,
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
    # The zone whose days recorded_from and recorded_to name (not a filter itself).
    time_zone: str = field(default="UTC", compare=False)

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


def parse_filters(args: dict[str, str], time_zone: str = "UTC") -> Filters:
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
        time_zone=time_zone,
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


#: A word or tag matching fewer items than this is looked up: its items' ids are read
#: from the indexes and only those rows fetched and sorted. One matching more is
#: checked row by row while the list's order is walked, which finds a page quickly
#: when matches are common. Either plan alone is slow for the other kind (measured at
#: 1,000,000 items: seconds to walk for a rare word, hundreds of milliseconds to sort a
#: common one's 70,000 rows); the two cost the same near sqrt(page x items) matches.
FEW_MATCHES = 8_000

#: A scope of a few schools or wearers (a supervisor's) is listed branch by branch:
#: each walks its own school's (or wearer's) index in order, and the branches' pages
#: are merged, instead of walking the whole district's order and skipping other
#: schools' rows. More branches than this fall back to one query.
MAX_BRANCHES = 12


def _matching_tags(session: Session, district_id: int, name: str) -> list[int]:
    """The district's tags of this name (any case)."""
    return list(
        session.scalars(
            select(Tag.id).where(Tag.district_id == district_id, func.lower(Tag.name) == name)
        )
    )


@dataclass(frozen=True)
class _Match:
    """The tag filter's (or the search words') condition, with the plan chosen for it."""

    clause: ColumnElement[bool]
    ids: list[str] | None = None  # the matching items' ids, when few enough to list


def _listed(session: Session, sources: list[Select[Any]]) -> list[str] | None:
    """The distinct ids the sources name, or None if they name FEW_MATCHES or more
    (reads at most that many index entries)."""
    if not sources:
        return []
    if FEW_MATCHES <= 0:
        return None
    rows = list(session.scalars(union_all(*sources).limit(FEW_MATCHES)))
    if len(rows) >= FEW_MATCHES:
        return None
    return sorted(set(rows))


def _tag_match(session: Session, scope: Scope, tag: str) -> _Match:
    tag_ids = _matching_tags(session, scope.district_id, tag.lower())
    if not tag_ids:
        return _Match(false(), [])
    ids = _listed(
        session, [select(evidence_tags.c.evidence_id).where(evidence_tags.c.tag_id.in_(tag_ids))]
    )
    if ids is not None:
        return _Match(EvidenceItem.id.in_(ids) if ids else false(), ids)
    return _Match(
        exists(
            select(1).where(
                evidence_tags.c.evidence_id == EvidenceItem.id,
                evidence_tags.c.tag_id.in_(tag_ids),
            )
        )
    )


def _in_text(word: str) -> ColumnElement[bool]:
    return EvidenceItem.search_text.like(search_text.pattern(word), escape="\\")


def _text_clause(text: str) -> ColumnElement[bool]:
    """Every word appears in the item's search text (name, notes, tags, linked
    incidents' titles: evidence/search_text.py)."""
    return and_(*(_in_text(word) for word in text.split()))


def _tag_clause(scope: Scope, tag: str) -> ColumnElement[bool]:
    return exists(
        select(1)
        .select_from(evidence_tags.join(Tag, Tag.id == evidence_tags.c.tag_id))
        .where(
            evidence_tags.c.evidence_id == EvidenceItem.id,
            Tag.district_id == scope.district_id,
            func.lower(Tag.name) == tag.lower(),
        )
    )


def _day_start(day: date, time_zone: str) -> datetime:
    return local_time.day_start(day, time_zone)


def filtered(
    scope: Scope, filters: Filters, session: Session | None = None
) -> Select[tuple[EvidenceItem]]:
    """The scoped, filtered query (unsorted, unpaged). With a session, the tag filter
    gets the plan its number of matches calls for."""
    matches = _matches(session, scope, filters) if session is not None else None
    return select(EvidenceItem).where(in_scope(scope), *_conditions(scope, filters, matches))


def _matches(session: Session, scope: Scope, filters: Filters) -> list[_Match]:
    found = [_tag_match(session, scope, filters.tag)] if filters.tag is not None else []
    if filters.text:  # search() looks up few matches itself, with the page's conditions
        found.append(_Match(_text_clause(filters.text)))
    return found


def _conditions(
    scope: Scope, filters: Filters, matches: list[_Match] | None
) -> list[ColumnElement[bool]]:
    """Every filter but the scope, as conditions on evidence_items."""
    f = filters
    out: list[ColumnElement[bool]] = []
    for column, value in (
        (EvidenceItem.school_id, f.school_id),
        (EvidenceItem.wearer_id, f.wearer_id),
        (EvidenceItem.camera_id, f.camera_id),
        (EvidenceItem.dock_id, f.dock_id),
        (EvidenceItem.category_id, f.category_id),
    ):
        if value is not None:
            out.append(column == value)
    if f.status == "tampered":
        out.append(EvidenceItem.integrity == "tampered")
    elif f.status is not None:
        out.append(EvidenceItem.status == f.status)
    if f.flag is not None:  # [a-z_] only; the JSON list's quotes bound the word
        pattern = '%"' + f.flag.replace("_", "\\_") + '"%'
        out.append(cast(EvidenceItem.flags, String).like(pattern, escape="\\"))
    if f.recorded_from is not None:
        out.append(sort_value() >= _day_start(f.recorded_from, f.time_zone))
    if f.recorded_to is not None:
        out.append(sort_value() < _day_start(f.recorded_to + timedelta(days=1), f.time_zone))
    if f.incident_id is not None:
        out.append(
            exists(
                select(1).where(
                    incident_evidence.c.evidence_id == EvidenceItem.id,
                    incident_evidence.c.incident_id == f.incident_id,
                )
            )
        )
    if matches is not None:
        out += [m.clause for m in matches]
    else:
        if f.tag is not None:
            out.append(_tag_clause(scope, f.tag))
        if f.text:
            out.append(_text_clause(f.text))
    return out


def _branches(scope: Scope, filters: Filters, via: _Via) -> list[ColumnElement[bool]]:
    """The scope as parts, each served by one index in list order (a school's part
    names the school on the driving table too, so its index narrows to the school)."""
    district = EvidenceItem.district_id == scope.district_id
    if scope.district_wide or filters.school_id is not None or filters.wearer_id is not None:
        return [in_scope(scope)]
    parts = []
    for school in sorted(scope.school_ids):
        part = and_(district, EvidenceItem.school_id == school)
        parts.append(part if via.school is None else and_(part, via.school == school))
    parts += [and_(district, EvidenceItem.wearer_id == w) for w in sorted(scope.wearer_ids)]
    return parts if 1 < len(parts) <= MAX_BRANCHES else [in_scope(scope)]


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
    descending = SORTS[filters.sort][2]
    tag_id = _ordered_tag(session, scope, filters)
    rest = replace(filters, tag=None) if tag_id is not None else filters
    matches = _matches(session, scope, rest)
    listed = [set(m.ids) for m in matches if m.ids is not None]
    if listed:  # the items are known by id: fetch just those, whatever the scope
        known = sorted(set.intersection(*listed))
        matches = [m for m in matches if m.ids is None]
        matches.append(_Match(_id_in(session, known) if known else false(), known))
    conditions = _conditions(scope, rest, matches)
    via = _Via.tag(tag_id, filters) if tag_id is not None else _Via.items(filters.sort)
    conditions += via.conditions
    if cursor:
        after, after_id = decode_cursor(cursor)
        # A row comparison, which PostgreSQL uses as an index condition on (…, value,
        # id): a deep page starts at the cursor instead of reading every earlier row.
        here, there = tuple_(via.key, via.id), tuple_(after, after_id)
        conditions.append(here < there if descending else here > there)
    rows = None
    if filters.text and not listed:
        rows = _few_matches_page(session, scope, filters.text, conditions, via, descending)
    if rows is None:
        rows = _walked(session, scope, filters, conditions, via, descending, listed=bool(listed))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = (
        encode_cursor(_sort_key(rows[-1], filters.sort), rows[-1].id) if more and rows else None
    )
    return Page(rows, next_cursor, filters, first=cursor is None)


def _walked(
    session: Session,
    scope: Scope,
    filters: Filters,
    conditions: list[ColumnElement[bool]],
    via: _Via,
    descending: bool,
    *,
    listed: bool,
) -> list[EvidenceItem]:
    """The first PAGE_SIZE + 1 rows in the list's order, each tested on the way."""
    branches = [in_scope(scope)] if listed else _branches(scope, filters, via)
    if len(branches) > 1:
        return _merged(session, branches, conditions, via, descending)
    order = (via.key.desc(), via.id.desc()) if descending else (via.key, via.id)
    query = via.select(select(EvidenceItem)).where(branches[0], *conditions)
    return list(session.scalars(query.order_by(*order).limit(PAGE_SIZE + 1)))


def _estimated_matches(session: Session, condition: ColumnElement[bool]) -> float | None:
    """PostgreSQL's estimate of how many items meet condition, from its statistics (the
    search text's are kept at 1,000 samples, migration 0014, so a word's share is known
    to about a tenth of a percent); None on other databases. Planning only: no rows are
    read."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    plan = session.execute(_Explain(select(EvidenceItem.id).where(condition))).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, compiled and bound as the statement is."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _explain_sql(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


def _few_matches_page(
    session: Session,
    scope: Scope,
    text: str,
    conditions: list[ColumnElement[bool]],
    via: _Via,
    descending: bool,
) -> list[EvidenceItem] | None:
    """The page's rows when the search words, with every other condition of the page
    (scope, filters, cursor), match fewer than FEW_MATCHES items: their sort keys are
    read once (through the trigram index on PostgreSQL, all words at once), the first
    PAGE_SIZE + 1 picked in order and only those rows fetched. None when they match more
    (or PostgreSQL's statistics say the words are that common in the scope, which is
    then not looked up at all): the list's order is walked instead, each row tested,
    which finds a page quickly."""
    if FEW_MATCHES <= 0:
        return None
    estimate = _estimated_matches(session, and_(in_scope(scope), _text_clause(text)))
    if estimate is not None and estimate >= FEW_MATCHES:
        return None
    key, item_id = via.key.label("key"), via.id.label("id")
    found = (
        via.select(select(key, item_id))
        .where(in_scope(scope), *conditions)
        .limit(FEW_MATCHES)
        .subquery()
    )
    order = (found.c.key.desc(), found.c.id.desc()) if descending else (found.c.key, found.c.id)
    picked = session.execute(
        select(found.c.id, func.count().over()).order_by(*order).limit(PAGE_SIZE + 1)
    ).all()
    if picked and picked[0][1] >= FEW_MATCHES:
        return None
    return _in_order(session, [row[0] for row in picked])


def _ordered_tag(session: Session, scope: Scope, filters: Filters) -> int | None:
    """The tag filter's one tag id, when the list can be walked in evidence_tags'
    order (the recorded sorts); None otherwise."""
    if filters.tag is None or SORTS[filters.sort][1] != "recorded":
        return None
    tag_ids = _matching_tags(session, scope.district_id, filters.tag.lower())
    return tag_ids[0] if len(tag_ids) == 1 else None


@dataclass(frozen=True)
class _Via:
    """The table that drives a listing: its order key and id, and what joins it."""

    key: ColumnElement[Any]
    id: ColumnElement[Any]
    conditions: list[ColumnElement[bool]]
    school: ColumnElement[Any] | None = None  # the driving table's copy of school_id

    @staticmethod
    def items(sort: str) -> _Via:
        return _Via(_sort_column(sort), EvidenceItem.__table__.c.id, [])

    @staticmethod
    def tag(tag_id: int, filters: Filters) -> _Via:
        """Walk the tag's rows in evidence_tags (sorted_at is the item's list order)."""
        tagged = evidence_tags.c
        conditions: list[ColumnElement[bool]] = [
            tagged.evidence_id == EvidenceItem.id,
            tagged.tag_id == tag_id,
        ]
        if filters.school_id is not None:
            conditions.append(tagged.school_id == filters.school_id)
        if filters.recorded_from is not None:
            conditions.append(
                tagged.sorted_at >= _day_start(filters.recorded_from, filters.time_zone)
            )
        if filters.recorded_to is not None:
            conditions.append(
                tagged.sorted_at
                < _day_start(filters.recorded_to + timedelta(days=1), filters.time_zone)
            )
        return _Via(tagged.sorted_at, tagged.evidence_id, conditions, tagged.school_id)

    def select(self, query: Select[Any]) -> Select[Any]:
        return query.select_from(evidence_tags) if self.school is not None else query


def _id_in(session: Session, ids: list[str]) -> ColumnElement[bool]:
    """id IN ids; on PostgreSQL as one array parameter (thousands of binds cost more
    to build and send than the lookup itself)."""
    if session.get_bind().dialect.name == "postgresql":
        return EvidenceItem.id == any_(bindparam("known_ids", ids, type_=ARRAY(String)))
    return EvidenceItem.id.in_(ids)


def _merged(
    session: Session,
    branches: list[ColumnElement[bool]],
    conditions: list[ColumnElement[bool]],
    via: _Via,
    descending: bool,
) -> list[EvidenceItem]:
    """The first PAGE_SIZE + 1 rows over all branches: each branch's own first rows
    (keys only) in its index's order, merged; then those rows, in that order."""
    limit = PAGE_SIZE + 1
    parts = []
    for branch in branches:
        key, item_id = via.key.label("key"), via.id.label("id")
        order = (key.desc(), item_id.desc()) if descending else (key, item_id)
        parts.append(
            via.select(select(key, item_id))
            .where(branch, *conditions)
            .order_by(*order)
            .limit(limit)
            .subquery()
        )
    keys = union(*(select(p.c.key, p.c.id) for p in parts)).subquery()
    outer = (keys.c.key.desc(), keys.c.id.desc()) if descending else (keys.c.key, keys.c.id)
    ids = session.scalars(select(keys.c.id).order_by(*outer).limit(limit))
    return _in_order(session, list(ids))


def _in_order(session: Session, ids: list[str]) -> list[EvidenceItem]:
    """The items of these ids, in that order."""
    if not ids:
        return []
    found = {i.id: i for i in session.scalars(select(EvidenceItem).where(EvidenceItem.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
