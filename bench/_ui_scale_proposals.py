"""What would bring the misses within their goals, tried in the benchmark's own database
and process (never in the project's files or migrations).

- EXPLAIN (ANALYZE, BUFFERS) of the statements that cost the missing measures most,
  with the parameters of their slowest call in the run.
- Indexes, one at a time: created in this database, ANALYZEd, the measures they serve
  re-run, dropped again.
- Query changes: the app's `search` and variants of it (other rare-word thresholds) on
  the same random inputs, through SQLAlchemy on the same database, checked to return the
  same page every time.
- All of it at once: the indexes; every page measure re-run."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from _common import _libpq, percentile
from _ui_scale_requests import deep_page, vocabulary

from app import evidence_search
from app.evidence_search import Filters


@dataclass(frozen=True)
class IndexProposal:
    key: str
    ddl: tuple[str, ...]
    why: str
    affects: tuple[tuple[str, str], ...]


INDEXES = (
    IndexProposal(
        "activations",
        (
            "CREATE INDEX ix_activation_events_camera_time ON activation_events "
            "(camera_id, corrected_time)",
        ),
        "the item page picks activation events by camera and time window; the camera_id "
        "index alone reads every event the camera ever logged",
        (("supervisor", "detail"), ("records", "detail")),
    ),
    IndexProposal(
        "incidents",
        (
            "CREATE INDEX ix_incidents_district_starts ON incidents (district_id, starts_at)",
            "CREATE INDEX ix_incidents_school_starts ON incidents (school_id, starts_at)",
        ),
        "the list's bulk form offers the newest 100 incidents, the item page the school's "
        "newest 200: each sorts every incident of the district or school",
        (("records", "list_default"), ("supervisor", "list_default"), ("supervisor", "detail")),
    ),
)
INDEXES += (
    IndexProposal(
        "scope_ingested",
        (
            "CREATE INDEX ix_evidence_items_school_id_ingested ON evidence_items "
            "(school_id, ingested_at, id)",
            "CREATE INDEX ix_evidence_items_wearer_id_ingested ON evidence_items "
            "(wearer_id, ingested_at, id)",
        ),
        "the docked-order sorts have an index per district only (migration 0005 gave the "
        "recorded order one per district, school and wearer): a school's list in docked "
        "order reads all its items and sorts them, whatever the page",
        (("supervisor", "keyset_51"), ("records", "keyset_51")),
    ),
)
PAGES = (
    "list_default", "list_school", "list_dates", "list_category", "list_tag",
    "list_all_filters", "search", "keyset_51", "detail",
)  # fmt: skip


def _index_names(ddl: tuple[str, ...]) -> list[str]:
    return [m.group(1) for d in ddl if (m := re.search(r"CREATE INDEX (\w+)", d))]


def explain(url: str, measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Plans of the two costliest statements of each measure that misses its goal."""
    wanted: dict[str, dict[str, Any]] = {}
    for m in measured["measures"]:
        if m["met"]:
            continue
        for t in m["top_statements"][:2]:
            entry = wanted.setdefault(t["statement"], {"params": t["slowest_params"], "in": []})
            entry["in"].append(f"{m['key']} ({m['role']})")
    out = []
    with psycopg.connect(_libpq(url)) as conn:
        for statement, entry in wanted.items():
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement,  # type: ignore[operator]
                entry["params"],
            ).fetchall()
            conn.rollback()
            plan = [r[0] for r in rows]
            out.append(
                {
                    "statement": statement,
                    "measures": entry["in"],
                    "params": entry["params"],
                    "plan": plan[:60],
                    "execution_ms": next(
                        (float(p.split()[-2]) for p in plan if p.startswith("Execution Time")), None
                    ),
                }
            )
    return out


def _by_key(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["role"], m["key"]): m for m in summary["measures"]}


def _compare(before: dict[tuple[str, str], Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Per measure, before and after; the first row also says how busy the machine was."""
    return [
        {
            "role": m["role"],
            "key": m["key"],
            "n": m["n"],
            "before_p50_ms": before[m["role"], m["key"]]["p50_ms"],
            "before_p95_ms": before[m["role"], m["key"]]["p95_ms"],
            "after_p50_ms": m["p50_ms"],
            "after_p95_ms": m["p95_ms"],
            "met_after": m["met"],
            "after_mean_ms": m["mean_ms"],
            "other_load_cores": after["load"]["other_cores"],
        }
        for m in after["measures"]
    ]


_SAME = re.compile(r"INDEX \S+ ON")


def _create(loader: Any, ddl: tuple[str, ...]) -> dict[str, Any]:
    """Create what the statements describe unless the schema has it already (by name, or
    an index of the same definition under another name: the migrations may have caught
    up with a proposal). Returns what was made, what was found, build time and size."""
    started = time.perf_counter()
    made: list[str] = []
    present: dict[str, str] = {}
    for statement in ddl:
        name = _index_names((statement,))
        if name and loader.scalar("SELECT to_regclass(%s)::text", (name[0],)):
            present[name[0]] = name[0]
            continue
        loader.execute(statement, autocommit=True)
        if not name:
            continue  # CREATE EXTENSION
        table = loader.scalar("SELECT tablename FROM pg_indexes WHERE indexname = %s", (name[0],))
        mine = _SAME.sub(
            "INDEX ? ON", loader.scalar("SELECT pg_get_indexdef(%s::regclass)", (name[0],))
        )
        twin = loader.scalar(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname <> %s "
            "AND regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ? ON') = %s",
            (table, name[0], mine),
        )
        if twin:
            loader.execute(f"DROP INDEX {name[0]}", autocommit=True)
            present[name[0]] = twin
        else:
            made.append(name[0])
    loader.execute("ANALYZE evidence_items, activation_events, incidents", autocommit=True)
    size = sum(int(loader.scalar("SELECT pg_relation_size(%s::regclass)", (n,))) for n in made)
    return {
        "created": made,
        "already_in_schema": present,
        "build_s": time.perf_counter() - started,
        "bytes": size,
    }


def _drop(loader: Any, names: list[str]) -> None:
    for name in names:
        loader.execute(f"DROP INDEX IF EXISTS {name}", autocommit=True)


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def _with_few_matches(limit: int) -> Any:
    """The app's own search with its rare-word threshold (FEW_MATCHES) set to limit."""

    def search(*args: Any) -> Any:
        saved = evidence_search.FEW_MATCHES
        evidence_search.FEW_MATCHES = limit
        try:
            return evidence_search.search(*args)
        finally:
            evidence_search.FEW_MATCHES = saved

    return search


def _variants(name: str) -> dict[str, Any]:
    """The app's search first (the reference), then what is tried against it."""
    out: dict[str, Any] = {"app": evidence_search.search}
    if name == "search" and hasattr(evidence_search, "FEW_MATCHES"):
        for limit in (10_000, 2_000):
            out[f"FEW_MATCHES={limit:,}"] = _with_few_matches(limit)
    return out


def compare_queries(bench: Any, count: int, rng: random.Random) -> dict[str, Any]:
    """The app's search and the variants, in random order, on the same inputs."""
    world = bench.world
    tags = [name for _, name in world.tags]
    words = vocabulary(world)
    out: dict[str, Any] = {}
    with bench.side.sessions() as session:
        for role in bench.roles:

            def text(r: random.Random) -> Filters:
                many = 2 if r.random() < 0.25 else 1
                return Filters(text=" ".join(r.choice(words) for _ in range(many)))

            cases = {
                "tag": [(Filters(tag=rng.choice(tags)), None) for _ in range(count)],
                "keyset_51": [deep_page(rng, role, session) for _ in range(count)],
                "search": [(text(rng), None) for _ in range(count)],
            }
            for name, inputs in cases.items():
                variants = _variants(name)
                times: dict[str, list[float]] = {v: [] for v in variants}
                same = dict.fromkeys(variants, 0)
                for filters, cursor in inputs:
                    order = list(variants)
                    rng.shuffle(order)
                    pages = {}
                    for v in order:
                        spent, pages[v] = _timed(variants[v], session, role.scope, filters, cursor)
                        session.rollback()
                        times[v].append(spent)
                    reference = pages["app"]
                    for v, page in pages.items():
                        same[v] += [i.id for i in page.items] == [
                            i.id for i in reference.items
                        ] and page.next_cursor == reference.next_cursor
                out[f"{name}_{role.name}"] = {
                    "n": len(inputs),
                    "variants": {
                        v: {
                            "p50_ms": percentile(t, 0.5) * 1e3,
                            "p95_ms": percentile(t, 0.95) * 1e3,
                            "p99_ms": percentile(t, 0.99) * 1e3,
                            "same_page_as_app": same[v],
                        }
                        for v, t in times.items()
                    },
                }
    return out


def _attempt(out: dict[str, Any], what: str, step: Any, fn: Any) -> Any:
    """One proposal; a failure is recorded and the others still run."""
    step(f"proposal: {what}")
    try:
        return fn()
    except Exception as exc:  # a failed prototype must not lose the run's figures
        out.setdefault("errors", []).append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def try_proposals(
    bench: Any, loader: Any, measured: dict[str, Any], sizes: Any, step: Any
) -> dict[str, Any]:
    rng = random.Random(11)
    baseline = _by_key(measured)
    samples = sizes.proposal_samples
    pages = {(r, k) for r in ("supervisor", "records") for k in PAGES}
    out: dict[str, Any] = {"indexes": []}
    out["explain"] = _attempt(
        out, "EXPLAIN of the misses", step, lambda: explain(bench.url, measured)
    )

    def one_index(proposal: IndexProposal) -> dict[str, Any]:
        built = _create(loader, proposal.ddl)
        try:
            after = bench.rerun(set(proposal.affects), samples) if built["created"] else None
        finally:
            _drop(loader, built["created"])
        return {
            "key": proposal.key,
            "ddl": list(proposal.ddl),
            "why": proposal.why,
            **built,
            "effect": _compare(baseline, after) if after else [],
        }

    for proposal in INDEXES:
        done = _attempt(out, f"{proposal.key} index", step, lambda p=proposal: one_index(p))
        if done:
            out["indexes"].append(done)
    out["queries"] = _attempt(
        out,
        "query changes, side by side",
        step,
        lambda: compare_queries(bench, max(20, samples // 2), rng),
    )

    def everything() -> list[dict[str, Any]]:
        made = [n for p in INDEXES for n in _create(loader, p.ddl)["created"]]
        try:
            return _compare(baseline, bench.rerun(pages, samples))
        finally:
            _drop(loader, made)

    out["all"] = _attempt(out, "everything at once", step, everything)
    return {k: v for k, v in out.items() if v is not None}
