"""The requests the UI benchmark times, for a supervisor of three schools and a records
officer of the whole district, and the loop that runs them.

Each measure draws its requests at random: a school or category or tag from what the
person may choose, a date range within the history, a search word from what the data
holds (tag names, words of incident titles and notes, file-name prefixes; rare words
as likely as common ones), an item in scope. Measures are interleaved in random order,
round after round, and every request is followed by one primary-key SELECT of a random
evidence item on a bare driver connection (the raw limit). A measure stops at its
sample count, or early (with at least its minimum) once it has used its time budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
from _common import _libpq
from _ui_scale_clock import Sample, WsgiClock
from _ui_scale_plan import NOTE_WORDS, TITLE_BEHAVIOURS, TITLE_PLACES
from sqlalchemy import text

from app.evidence_search import (
    PAGE_SIZE,
    SORTS,
    Filters,
    _sort_column,
    _sort_key,
    encode_cursor,
    filtered,
)
from evidence.adapters.sql.items import EvidenceItem

STREAM_PURPOSES = ("investigation", "complaint", "disclosure", "legal", "audit", "wearer_review")
SEEK_PURPOSE = "incident_review"
KEYSET_PAGE = 51


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    stream: Any = None  # (Media, offset) for stream reads: the body is checked


@dataclass
class Spec:
    key: str
    role: str
    label: str
    goal_ms: float
    figure: str  # "seconds" or "first_byte"
    make: Callable[[random.Random], Request]
    client: str = "pages"
    exhausted: Callable[[], bool] = lambda: False
    samples: list[Sample] = field(default_factory=list)
    spent: float = 0.0


@dataclass
class Role:
    """What one signed-in person may choose from, and the items they may open."""

    name: str
    scope: Any
    school_ids: list[int]
    items: list[str]
    media: list[Any]
    first_pairs: list[tuple[Any, str]] = field(default_factory=list)


def vocabulary(world: Any) -> list[str]:
    """What people search for: tag names, words of incident titles and of notes, and
    file-name prefixes (BWC00123.MP4); each as likely as any other."""
    words = {name for _, name in world.tags}
    for line in (*TITLE_BEHAVIOURS, *TITLE_PLACES, *NOTE_WORDS):
        words |= {w.lower() for w in line.split() if len(w) >= 4}
    words |= {f"bwc{n:03d}" for n in range(0, 100, 7)}
    return sorted(words)


def make_specs(
    world: Any,
    roles: list[Role],
    vocabulary: list[str],
    first_day: date,
    last_day: date,
    session: Any,
) -> list[Spec]:
    span = (last_day - first_day).days
    categories = [c for c, _ in world.categories]
    tags = [name for _, name in world.tags]
    specs: list[Spec] = []

    def dates(rng: random.Random, longest: int) -> dict[str, str]:
        start = first_day + timedelta(days=rng.randrange(span))
        end = min(last_day, start + timedelta(days=rng.randrange(longest + 1)))
        return {"recorded_from": start.isoformat(), "recorded_to": end.isoformat()}

    def listing(args: dict[str, Any]) -> Request:
        return Request("/evidence?" + urlencode(args) if args else "/evidence")

    for role in roles:
        schools = role.school_ids

        def page(
            key: str, label: str, make: Callable[[random.Random], Request], who: str = role.name
        ) -> None:
            specs.append(Spec(key, who, label, 150.0, "seconds", make))

        page("list_default", "List, default sort (recorded, newest first)", lambda r: listing({}))
        page(
            "list_school",
            "List filtered by school",
            lambda r, s=schools: listing({"school_id": r.choice(s)}),
        )
        page(
            "list_dates",
            "List filtered by a date range (0–90 days)",
            lambda r: listing(dates(r, 90)),
        )
        page(
            "list_category",
            "List filtered by category",
            lambda r: listing({"category_id": r.choice(categories)}),
        )
        page("list_tag", "List filtered by tag", lambda r: listing({"tag": r.choice(tags)}))
        page(
            "list_all_filters",
            "List filtered by school, date range (0–180 days), category and tag",
            lambda r, s=schools: listing(
                {
                    "school_id": r.choice(s),
                    **dates(r, 180),
                    "category_id": r.choice(categories),
                    "tag": r.choice(tags),
                }
            ),
        )
        page(
            "search",
            "Text search (q=, one word, or two in a quarter of searches)",
            lambda r: listing(
                {"q": " ".join(r.choice(vocabulary) for _ in range(2 if r.random() < 0.25 else 1))}
            ),
        )
        page(
            "keyset_51",
            f"Keyset page {KEYSET_PAGE} (50 pages deep): random sort, half with a school filter",
            lambda r, role=role: _deep_page(r, role, session),
        )
        specs.append(
            Spec(
                "detail",
                role.name,
                "Item page (metadata, tags, incidents, bookmarks, activations, custody timeline)",
                100.0,
                "seconds",
                lambda r, items=role.items: Request(f"/evidence/{r.choice(items)}"),
            )
        )
        pairs = role.first_pairs

        def first(_r: random.Random, pairs: list[tuple[Any, str]] = pairs) -> Request:
            media, purpose = pairs.pop()
            return Request(
                f"/evidence/{media.evidence_id}/stream?purpose={purpose}",
                {"Range": "bytes=0-"},
                (media, 0),
            )

        def seek(r: random.Random, media: list[Any] = role.media) -> Request:
            chosen = r.choice(media)
            offset = r.randrange(chosen.size)
            return Request(
                f"/evidence/{chosen.evidence_id}/stream?purpose={SEEK_PURPOSE}",
                {"Range": f"bytes={offset}-"},
                (chosen, offset),
            )

        specs.append(
            Spec(
                "stream_first",
                role.name,
                "Ranged stream, first byte: first read of an item and purpose in the session "
                "(appends the evidence.streamed custody event)",
                100.0,
                "first_byte",
                first,
                exhausted=lambda pairs=pairs: not pairs,
            )
        )
        specs.append(
            Spec(
                "stream_seek",
                role.name,
                "Ranged stream, first byte: a seek (bytes=N-) in an item already playing",
                100.0,
                "first_byte",
                seek,
                client="seeks",
            )
        )
    return specs


def deep_page(rng: random.Random, role: Role, session: Any) -> tuple[Filters, str]:
    """A random listing and the cursor of its page 51 (row 2,500's key).

    A school with fewer than 51 pages (in --quick) falls back to the unfiltered list."""
    sort = rng.choice(list(SORTS))
    school = rng.choice(role.school_ids) if rng.random() < 0.5 else None
    column = _sort_column(sort)
    order = (column.desc(), EvidenceItem.id.desc()) if SORTS[sort][2] else (column, EvidenceItem.id)
    for chosen in dict.fromkeys((school, None)):
        filters = Filters(school_id=chosen, sort=sort)
        row = session.scalars(
            filtered(role.scope, filters)
            .order_by(*order)
            .offset(PAGE_SIZE * (KEYSET_PAGE - 1) - 1)
            .limit(1)
        ).first()
        cursor = None if row is None else encode_cursor(_sort_key(row, sort), row.id)
        session.rollback()  # after reading the row: a rollback expires it
        if cursor is not None:
            return filters, cursor
    raise AssertionError(f"{role.name}'s listing has fewer than {KEYSET_PAGE} pages")


def _deep_page(rng: random.Random, role: Role, session: Any) -> Request:
    filters, cursor = deep_page(rng, role, session)
    return Request("/evidence?" + urlencode({**filters.as_args(), "after": cursor}))


class PkProbe:
    """One primary-key SELECT of an evidence item on a bare psycopg connection."""

    def __init__(self, url: str, ids: list[str]) -> None:
        self.conn = psycopg.connect(_libpq(url), autocommit=True)
        self.ids = ids
        self.seconds: list[float] = []

    def once(self, rng: random.Random) -> None:
        item_id = rng.choice(self.ids)
        started = time.perf_counter()
        row = self.conn.execute("SELECT * FROM evidence_items WHERE id = %s", (item_id,)).fetchone()
        self.seconds.append(time.perf_counter() - started)
        assert row is not None

    def close(self) -> None:
        self.conn.close()


def _check_stream(response: Any, request: Request) -> None:
    media, offset = request.stream
    body = response.get_data()
    with media.path.open("rb") as handle:
        handle.seek(offset)
        expected = handle.read()
    if response.status_code != 206 or body != expected:
        raise AssertionError(f"stream of {media.evidence_id} at {offset} returned other bytes")


def one(clock: WsgiClock, client: Any, request: Request) -> Sample:
    response = client.get(request.path, headers=request.headers)
    if request.stream is not None:
        _check_stream(response, request)
    else:
        response.get_data()
    sample = clock.current
    sample.status = response.status_code
    if sample.status != (206 if request.stream is not None else 200):
        raise AssertionError(f"{request.path} answered {sample.status}")
    return sample


def run(
    specs: list[Spec],
    clients: dict[tuple[str, str], Any],
    clock: WsgiClock,
    probe: PkProbe,
    *,
    samples: int,
    minimum: int,
    budget_s: float,
    warmup: int,
    rng: random.Random,
    step: Callable[[str], None],
) -> None:
    """Warm every measure up, then interleave them until each has its samples."""
    for spec in specs:
        for _ in range(warmup):
            one(clock, clients[spec.role, spec.client], spec.make(rng))
    active = list(specs)
    rounds = 0
    while active:
        rng.shuffle(active)
        for spec in list(active):
            request = spec.make(rng)
            sample = one(clock, clients[spec.role, spec.client], request)
            spec.samples.append(sample)
            spec.spent += sample.seconds
            probe.once(rng)
            enough = len(spec.samples) >= samples
            out_of_time = spec.spent > budget_s and len(spec.samples) >= minimum
            if enough or out_of_time or spec.exhausted():
                active.remove(spec)
        rounds += 1
        if rounds % 50 == 0:
            step(f"round {rounds}: {len(active)} measures still sampling")


def scoped_items(session: Any, scope_schools: list[int] | None, count: int) -> list[str]:
    """count random item ids (of these schools; None: the whole district)."""
    where = "WHERE school_id = ANY(:schools)" if scope_schools else ""
    rows = session.execute(
        text(f"SELECT id FROM evidence_items {where} ORDER BY random() LIMIT :n"),
        {"schools": scope_schools, "n": count},
    )
    return [r[0] for r in rows]
