"""The generator: fills the benchmark's database with the district's history.

Evidence items, incidents and their links, tags, bookmarks, activation events from the
cameras' logs, and every item's custody chain in the district's ledger (leaves, audit
rows, Merkle nodes, chain heads), by COPY. The ledger log's size and frontier are
updated last, so the service's own append path carries on from the loaded log (the
imports and stream reads after the load go through it)."""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
from _ui_scale_custody import (
    AUDIT_COLUMNS,
    LEAF_COLUMNS,
    NODE_COLUMNS,
    ItemFacts,
    Outcome,
    write_events,
)
from _ui_scale_load import Loader
from _ui_scale_plan import INCIDENT, Incidents, Schedule, incidents, recordings, schedule
from _ui_scale_rows import (
    ACTIVATION_COLUMNS,
    ITEM_COLUMNS,
    activation_rows,
    item_facts,
    item_rows,
    ts,
)
from _ui_scale_world import World

from audit import merkle

LOADED = (
    "evidence_items",
    "incidents",
    "incident_wearers",
    "incident_evidence",
    "evidence_tags",
    "bookmarks",
    "activation_events",
    "ledger_leaves",
    "ledger_nodes",
    "audit_events",
    "ledger_item_heads",
)


@dataclass(frozen=True)
class Shape:
    items: int
    events: int
    days: int
    incidents_per_school_year: float
    fixity_days: float
    tampered: int


def generate(
    loader: Loader, world: World, shape: Shape, t0: float, t1: float, seed: int, step: Any
) -> dict[str, Any]:
    """Plan and load the history; timings and counts."""
    rng = np.random.default_rng(seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rec = recordings(rng, shape.items, t0, t1, world.cameras, world.wearers, world.docks)
    inc = incidents(rng, len(world.schools), shape.incidents_per_school_year, t0, t1)
    sched = schedule(rng, rec, inc, shape.events, t1, shape.fixity_days, shape.tampered)
    facts, names = item_facts(rec, world)
    incident_ids = [str(uuid.uuid4()) for _ in range(inc.n)]
    timings["plan_s"] = time.perf_counter() - started
    step(f"planned {rec.n:,} items, {inc.n:,} incidents, {len(sched.kind):,} ledger events")

    deferred = loader.drop_indexes(list(LOADED))
    loader.execute("ALTER TABLE ledger_leaves DISABLE TRIGGER ledger_leaves_next_index")
    mark = time.perf_counter()
    _incidents(loader, world, inc, incident_ids, rng)
    with loader.connect() as conn:
        log = conn.execute(
            "SELECT size, frontier FROM ledger_logs WHERE id = %s", (world.log_id,)
        ).fetchone()
    assert log is not None
    people = {
        "docks": world.docks,
        "supervisors": world.supervisors,
        "records": world.records,
        "tags": world.tags,
        "categories": world.categories,
    }
    with ExitStack() as stack:
        leaves = stack.enter_context(loader.copying("ledger_leaves", LEAF_COLUMNS))
        audits = stack.enter_context(loader.copying("audit_events", AUDIT_COLUMNS))
        nodes = stack.enter_context(loader.copying("ledger_nodes", NODE_COLUMNS))
        out = write_events(
            sched,
            facts,
            inc,
            incident_ids,
            people,
            int(log[0]),
            merkle.unpack(bytes(log[1])),
            district_id=world.district_id,
            log_id=world.log_id,
            key_version=world.key_version,
            rng=rng,
            leaves=leaves,
            audits=audits,
            nodes=nodes,
        )
    timings["custody_copy_s"] = time.perf_counter() - mark
    step(f"custody events loaded in {timings['custody_copy_s']:.0f} s; items and the rest next")
    mark = time.perf_counter()
    tampered = set(sched.tampered.tolist())
    titles: dict[int, list[str]] = {}
    for incident, i, _, _ in out.links:
        titles.setdefault(i, []).append(inc.title[incident])
    counts = {
        "evidence_items": loader.copy(
            "evidence_items",
            ITEM_COLUMNS,
            item_rows(rec, facts, names, out, world, tampered, titles),
        ),
        "activation_events": loader.copy(
            "activation_events", ACTIVATION_COLUMNS, activation_rows(rec, facts, names, world)
        ),
    }
    counts.update(_annotations(loader, world, rec, facts, out, incident_ids))
    with loader.connect() as conn:
        conn.execute(
            "UPDATE ledger_logs SET size = %s, frontier = %s WHERE id = %s",
            (out.size, merkle.pack(out.frontier), world.log_id),
        )
    loader.execute("ALTER TABLE ledger_leaves ENABLE ALWAYS TRIGGER ledger_leaves_next_index")
    timings["items_copy_s"] = time.perf_counter() - mark
    step(f"rows loaded; rebuilding {len(deferred.dropped)} indexes")
    mark = time.perf_counter()
    loader.rebuild_indexes(deferred)
    timings["index_build_s"] = time.perf_counter() - mark
    step(f"indexes rebuilt in {timings['index_build_s']:.0f} s; VACUUM (ANALYZE)")
    timings["vacuum_analyze_s"] = loader.vacuum_analyze()
    timings["total_s"] = time.perf_counter() - started
    return {
        "timings": timings,
        "items": rec.n,
        "item_events": sched.item_events,
        "incidents": inc.n,
        "ledger_events_loaded": len(sched.kind),
        "ledger_size_after_load": out.size,
        "event_types": out.counts,
        "rows": counts,
        "checked_against_project_functions": out.checked,
        "tampered_items": len(tampered),
        "indexes_rebuilt": deferred.rebuild_s,
        "foreign_keys_checked_during_load": not loader.superuser,
        "human_events_per_item": _spread(sched, rec.n),
        "sample_item_ids": facts.ids[:: max(1, rec.n // 1000)],
    }


def _spread(sched: Schedule, n: int) -> dict[str, float]:
    per_item = np.bincount(sched.item[sched.kind != INCIDENT], minlength=n)
    return {q: float(np.percentile(per_item, float(q[1:]))) for q in ("p50", "p95", "p99", "p100")}


def _incidents(loader: Loader, world: World, inc: Incidents, ids: list[str], rng: Any) -> None:
    loader.copy(
        "incidents",
        (
            "id",
            "district_id",
            "school_id",
            "number",
            "title",
            "starts_at",
            "ends_at",
            "created_by",
            "created_at",
        ),
        (
            (
                ids[k],
                world.district_id,
                world.schools[int(inc.school[k])],
                inc.number[k],
                inc.title[k],
                ts(inc.starts[k]),
                ts(inc.ends[k]),
                world.supervisors[int(inc.school[k])][0],
                ts(inc.created[k]),
            )
            for k in range(inc.n)
        ),
    )
    by_school: dict[int, list[int]] = {}
    for index, (_, school) in enumerate(world.wearers):
        by_school.setdefault(school, []).append(index)
    rows = set()
    for k in range(inc.n):
        pool = by_school[int(inc.school[k])]
        for w in rng.choice(pool, size=int(rng.integers(1, 3)), replace=False).tolist():
            rows.add((ids[k], world.wearers[w][0]))
    loader.copy("incident_wearers", ("incident_id", "wearer_id"), sorted(rows))


def _annotations(
    loader: Loader,
    world: World,
    rec: Any,
    facts: ItemFacts,
    out: Outcome,
    incident_ids: list[str],
) -> dict[str, int]:
    ids = facts.ids

    def sorted_at(i: int) -> Any:  # the item's list order, as tag_link copies it
        return ts(rec.start[i]) if rec.timed[i] else ts(rec.ingested[i])

    return {
        "evidence_tags": loader.copy(
            "evidence_tags",
            ("evidence_id", "tag_id", "added_by", "added_at", "school_id", "sorted_at"),
            (
                (
                    ids[i],
                    world.tags[tag][0],
                    user,
                    ts(t),
                    world.schools[facts.school[i]],
                    sorted_at(i),
                )
                for i, held in out.tags.items()
                for tag, (user, t) in held.items()
            ),
        ),
        "bookmarks": loader.copy(
            "bookmarks",
            ("evidence_id", "user_id", "at_ms", "note", "created_at"),
            ((ids[i], user, at, note, ts(t)) for i, user, at, note, t in out.bookmarks),
        ),
        "incident_evidence": loader.copy(
            "incident_evidence",
            ("incident_id", "evidence_id", "linked_by", "linked_at"),
            ((incident_ids[incident], ids[i], user, ts(t)) for incident, i, user, t in out.links),
        ),
        "ledger_item_heads": loader.copy(
            "ledger_item_heads",
            ("evidence_id", "log_id", "seq", "leaf_index", "leaf_hash"),
            (
                (ids[i], world.log_id, out.seq[i], out.head_index[i], out.head_hash[i])
                for i in range(len(ids))
                if out.seq[i]
            ),
        ),
    }
