"""Inclusion and consistency proof latency on a large log.

Appending a million events through the service would take hours here, so the leaves
and subtree nodes are computed in Python (the ledger's own leaf format, leaf hashes
and audit.merkle.append_to_frontier) and loaded in one transaction with COPY
(PostgreSQL) or executemany (SQLite). Only the proofs are timed, through
audit.adapters.ledger_sql, and every proof is checked with the standalone verifier."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from _common import backend, percentile, summary_ms
from sqlalchemy import event, select, text

from app.db import Database
from audit import merkle, offline_verify
from audit.adapters import append_only, ledger_sql
from audit.adapters.ledger_tables import LedgerNode
from audit.events import AuditEvent, EventType
from audit.leaves import build_leaf

_ID_MARK = "00000000-0000-4000-8000-000000000000"
_LOADED_AT = datetime(2026, 11, 1, tzinfo=UTC)


def synthetic_leaves(start: int, count: int) -> Iterator[tuple[int, str, bytes]]:
    """(index, event id, leaf) in the ledger's leaf format: a failed sign-in each, with
    its own event id (ledger_leaves.event_id is unique)."""
    pseudonym = "u-" + "5" * 24
    sample = AuditEvent(
        EventType.LOGIN_FAILED,
        _LOADED_AT,
        None,
        actor=pseudonym,
        subject=f"user:{pseudonym}",
        id=_ID_MARK,
    )
    head, tail = build_leaf(sample, "7" * 64, None).split(_ID_MARK.encode())
    for index in range(start, start + count):
        event_id = f"{index:08x}-0000-4000-8000-00000000b0b0"
        yield index, event_id, head + event_id.encode() + tail


def _next_index_trigger_sqlite() -> str:
    return next(s for s in append_only.sqlite_statements() if "ledger_leaves_next_index" in s)


def bulk_load(url: str, district_id: int, size: int) -> dict[str, Any]:
    """Grow the district's log to `size` leaves (setup, not measured); its log id and root."""
    database = Database(url)
    with database.sessions() as session:
        log = ledger_sql.log_of(session, district_id)
        log_id, have, frontier = log.id, log.size, merkle.unpack(log.frontier)
    nodes: list[tuple[int, int, int, bytes]] = []
    stamp: object = _LOADED_AT if backend(url) == "postgresql" else "2026-11-01 00:00:00.000000"

    def rows() -> Iterator[tuple[object, ...]]:
        nonlocal frontier
        for index, event_id, leaf in synthetic_leaves(have, size - have):
            digest = merkle.leaf_hash(leaf)
            frontier, done = merkle.append_to_frontier(frontier, index, digest)
            nodes.extend((log_id, level, idx, h) for (level, idx), h in done)
            yield (log_id, index, event_id, leaf, digest, stamp)

    started = time.perf_counter()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if backend(url) == "postgresql":
            # The per-row index check costs a lookup per leaf; the loader computes the
            # indices itself. The trigger is back (ENABLE ALWAYS, as installed) before
            # the commit.
            cursor.execute("ALTER TABLE ledger_leaves DISABLE TRIGGER ledger_leaves_next_index")
            with cursor.copy(
                "COPY ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, appended_at) "
                "FROM STDIN"
            ) as copy:
                for row in rows():
                    copy.write_row(row)
            with cursor.copy("COPY ledger_nodes (log_id, level, idx, hash) FROM STDIN") as copy:
                for node in nodes:
                    copy.write_row(node)
            cursor.execute(
                "ALTER TABLE ledger_leaves ENABLE ALWAYS TRIGGER ledger_leaves_next_index"
            )
            cursor.execute(
                "UPDATE ledger_logs SET size = %s, frontier = %s WHERE id = %s",
                (size, merkle.pack(frontier), log_id),
            )
        else:
            cursor.execute("DROP TRIGGER ledger_leaves_next_index")
            cursor.executemany(
                "INSERT INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, appended_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows(),
            )
            cursor.executemany(
                "INSERT INTO ledger_nodes (log_id, level, idx, hash) VALUES (?, ?, ?, ?)", nodes
            )
            cursor.execute(_next_index_trigger_sqlite())
            cursor.execute(
                "UPDATE ledger_logs SET size = ?, frontier = ? WHERE id = ?",
                (size, merkle.pack(frontier), log_id),
            )
        raw.commit()
    finally:
        raw.close()
    loaded = time.perf_counter() - started
    if backend(url) == "postgresql":
        # What autovacuum does to a table this size soon after a load of this size.
        with database.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM (ANALYZE) ledger_leaves, ledger_nodes")
            )
    database.dispose()
    return {
        "log_id": log_id,
        "size": size,
        "nodes": len(nodes),
        "root": merkle.frontier_root(frontier),
        "load_s": loaded,
        "load_and_vacuum_s": time.perf_counter() - started,
    }


def _plan(raw: Any, statement: str, parameters: Any, url: str) -> list[str]:
    cursor = raw.cursor()
    prefix = "EXPLAIN QUERY PLAN " if backend(url) == "sqlite" else "EXPLAIN "
    cursor.execute(prefix + statement, parameters)
    return [str(row[-1] if backend(url) == "sqlite" else row[0]) for row in cursor.fetchall()]


def proof_latency(
    url: str, loaded: dict[str, Any], samples: int, seed: int = 9162
) -> dict[str, Any]:
    """Random inclusion and consistency proofs against the full tree, interleaved with
    single primary-key reads of one ledger_nodes row (the raw limit)."""
    log_id, size, root = loaded["log_id"], loaded["size"], loaded["root"]
    database = Database(url)
    fetches: list[tuple[str, Any]] = []
    compiles: Counter[str] = Counter()  # SQLAlchemy's compiled-statement cache, node fetches

    def remember(_c: Any, _k: Any, statement: str, parameters: Any, context: Any, _m: Any) -> None:
        if "ledger_nodes" in statement and "wanted" in statement:
            fetches.append((statement, parameters))
            compiles[context.cache_hit.name] += 1

    event.listen(database.engine, "after_cursor_execute", remember)
    rng = random.Random(seed)
    inclusion: list[float] = []
    consistency: list[float] = []
    point: list[float] = []
    driver_point: list[float] = []
    cpu = {"inclusion": 0.0, "consistency": 0.0}
    marker = "?" if backend(url) == "sqlite" else "%s"
    point_sql = (
        f"SELECT hash FROM ledger_nodes WHERE log_id = {marker} AND level = 0 AND idx = {marker}"
    )
    raw = database.engine.raw_connection()
    try:
        with database.sessions() as session:
            if ledger_sql.root_at(session, log_id, size) != root:
                raise AssertionError("the loaded tree does not give the expected root")
            for n in range(samples + 50):  # the first 50 warm caches and are dropped
                index, first = rng.randrange(size), rng.randrange(1, size)
                c0, t0 = time.process_time(), time.perf_counter()
                proof = ledger_sql.inclusion_proof(session, log_id, index, size)
                c1, t1 = time.process_time(), time.perf_counter()
                cproof = ledger_sql.consistency_proof(session, log_id, first, size)
                c2, t2 = time.process_time(), time.perf_counter()
                session.execute(
                    select(LedgerNode.hash).where(
                        LedgerNode.log_id == log_id, LedgerNode.level == 0, LedgerNode.idx == index
                    )
                ).one()
                t3 = time.perf_counter()
                cursor = raw.cursor()
                cursor.execute(point_sql, (log_id, index))
                cursor.fetchone()
                t4 = time.perf_counter()
                if n >= 50:
                    inclusion.append(t1 - t0)
                    consistency.append(t2 - t1)
                    point.append(t3 - t2)
                    driver_point.append(t4 - t3)
                    cpu["inclusion"] += c1 - c0
                    cpu["consistency"] += c2 - c1
                # Check every proof (untimed) with the verifier a court would use.
                leaf = ledger_sql.entries(session, log_id, index, index + 1)[0][1]
                offline_verify.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, root)
                old_root = ledger_sql.root_at(session, log_id, first)
                offline_verify.verify_consistency(first, size, cproof, old_root, root)
            plan = _plan(raw, *fetches[-1], url)
    finally:
        raw.close()
        database.dispose()
    pk = percentile(point, 0.5)
    return {
        "backend": backend(url),
        "tree_size": size,
        "samples": samples,
        "inclusion": summary_ms(inclusion),
        "consistency": summary_ms(consistency),
        "pk_select": summary_ms(point),
        "pk_select_driver_only": summary_ms(driver_point),
        "ratio_inclusion_p50_to_pk_select_p50": percentile(inclusion, 0.5) / pk,
        "ratio_inclusion_p99_to_pk_select_p50": percentile(inclusion, 0.99) / pk,
        "ratio_consistency_p50_to_pk_select_p50": percentile(consistency, 0.5) / pk,
        "ratio_consistency_p99_to_pk_select_p50": percentile(consistency, 0.99) / pk,
        "inclusion_client_cpu_ms_mean": cpu["inclusion"] / samples * 1e3,
        "consistency_client_cpu_ms_mean": cpu["consistency"] / samples * 1e3,
        "node_fetch_compiled_cache": dict(compiles),
        "node_fetch_plan": plan,
        "load_s": loaded["load_s"],
        "load_and_vacuum_s": loaded["load_and_vacuum_s"],
    }
