"""Append throughput with durable commits: the service's append path against the raw
INSERT+COMMIT rate of the same database, with the same number of writer processes.

Each writer is its own process (spawned, so nothing is shared but the database) and
commits one event per transaction, as the service does when it records an action. A
run alternates raw, ledger, raw, so that drift on a shared machine shows up as a
difference between the two raw figures instead of skewing the ratio."""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg
from _common import CpuMeter, percentile, pg_backend_pids, process_cpu_seconds
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

import app.models  # noqa: F401  (registers every table)
from app.accounts.admin import create_district
from app.db import Database, upgrade
from audit import merkle
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType, details_commitment, new_salt
from audit.leaves import build_leaf

WARMUP_OPS = 20  # per writer and phase, before the clock starts: connections, caches
RAW_TABLE = "bench_raw"


def prepare(url: str) -> int:
    """Migrate, create a district (and its log) and the trivial table; the district id."""
    upgrade(url)
    database = Database(url)
    try:
        with database.transaction() as session:
            district = create_district(
                session, "bench", "Bench", actor="cli", now=datetime.now(UTC)
            )
            district_id = district.id
        with database.engine.begin() as connection:
            connection.execute(text(f"CREATE TABLE {RAW_TABLE} (n integer)"))
    finally:
        database.dispose()
    return district_id


def failed_login(district_id: int, n: int) -> AuditEvent:
    """What the service records for a failed sign-in (app/accounts/signin.py)."""
    pseudonym = "u-" + secrets.token_hex(12)
    return AuditEvent(
        type=EventType.LOGIN_FAILED,
        occurred_at=datetime.now(UTC),
        district_id=district_id,
        actor=pseudonym,
        subject=f"user:{pseudonym}",
        details={"username": f"user{n % 500}", "address": "10.1.2.3", "reason": "bad_password"},
    )


def domain_cost_ms(repeats: int = 2000) -> float:
    """CPU per event of the ledger's own work, without SQL: details commitment, leaf
    JSON (RFC 8785), leaf hash and frontier update."""
    frontier: list[bytes] = []
    for index in range(1000):
        frontier, _ = merkle.append_to_frontier(frontier, index, merkle.leaf_hash(b"%d" % index))
    recorded = failed_login(1, 0)
    started = time.process_time()
    for index in range(1000, 1000 + repeats):
        commitment = details_commitment(recorded.details, new_salt())
        leaf = build_leaf(recorded, commitment, None)
        frontier, _ = merkle.append_to_frontier(frontier, index, merkle.leaf_hash(leaf))
    return (time.process_time() - started) / repeats * 1e3


def _statement_kind(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper()
    table = "?"
    for marker in ("FROM", "INTO", "UPDATE"):
        if marker in words[:-1]:
            table = words[words.index(marker) + 1]
            break
    if "FOR UPDATE" in statement or "SET size=ledger_logs.size" in statement:
        return f"{verb} {table} (log lock)"
    return f"{verb} {table}"


class _StatementClock:
    """Time inside each SQL statement (driver, network, server), by kind of statement."""

    def __init__(self, database: Database) -> None:
        self.seconds: Counter[str] = Counter()
        self.count: Counter[str] = Counter()
        self.compiled: Counter[str] = Counter()  # SQLAlchemy's compiled-statement cache
        self._started = 0.0
        event.listen(database.engine, "before_cursor_execute", self._before)
        event.listen(database.engine, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started = time.perf_counter()

    def _after(
        self, _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: Any
    ) -> None:
        kind = _statement_kind(statement)
        self.seconds[kind] += time.perf_counter() - self._started
        self.count[kind] += 1
        self.compiled[context.cache_hit.name] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.count.clear()
        self.compiled.clear()


def _worker(
    url: str,
    district_id: int,
    phases: list[str],
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    database = Database(url)
    clock = _StatementClock(database)
    raw = database.engine.raw_connection()  # the app's connection settings, bare driver
    driver_errors = (sqlite3.Error, psycopg.Error, DBAPIError)
    n = 0

    def raw_op() -> tuple[float, float]:
        cursor = raw.cursor()
        cursor.execute(f"INSERT INTO {RAW_TABLE} (n) VALUES (1)")  # noqa: S608
        before_commit = time.perf_counter()
        raw.commit()
        return before_commit, time.perf_counter()

    def ledger_op() -> tuple[float, float]:
        nonlocal n
        n += 1
        with database.transaction() as session:
            SqlEventRecorder(session).record(failed_login(district_id, n))
            before_commit = time.perf_counter()  # the audit row is flushed at commit
        return before_commit, time.perf_counter()

    try:
        for phase in phases:
            op = raw_op if phase == "raw" else ledger_op
            for _ in range(WARMUP_OPS):
                op()
            clock.reset()
            barrier.wait()
            latencies: list[float] = []
            commit, errors = 0.0, 0
            cpu0, start = time.process_time(), time.perf_counter()
            deadline = start + seconds
            now = start
            while now < deadline:
                try:
                    before_commit, done = op()
                except driver_errors:
                    errors += 1
                    if phase == "raw":
                        raw.rollback()
                    done = before_commit = time.perf_counter()
                else:
                    latencies.append(done - now)
                    commit += done - before_commit
                now = done
            elapsed = time.perf_counter() - start
            results.put(
                {
                    "phase": phase,
                    "count": len(latencies),
                    "errors": errors,
                    "elapsed_s": elapsed,
                    "client_cpu_s": time.process_time() - cpu0,
                    "commit_s": commit,
                    "latency_p50_s": percentile(latencies, 0.5),
                    "latency_p99_s": percentile(latencies, 0.99),
                    "statement_s": dict(clock.seconds),
                    "statements": dict(clock.count),
                    "compiled": dict(clock.compiled),
                }
            )
            barrier.wait()  # connections stay open until the parent has read server CPU
    finally:
        raw.close()
        database.dispose()


def _combine(parts: list[dict[str, Any]], busy: float, server_cpu: float) -> dict[str, Any]:
    count = sum(p["count"] for p in parts)
    elapsed = max(p["elapsed_s"] for p in parts)
    per = max(1, count)
    client_cpu = sum(p["client_cpu_s"] for p in parts)
    cores = os.cpu_count() or 1
    statement_s: Counter[str] = Counter()
    statements: Counter[str] = Counter()
    compiled: Counter[str] = Counter()
    for p in parts:
        statement_s.update(p["statement_s"])
        statements.update(p["statements"])
        compiled.update(p["compiled"])
    return {
        "per_s": count / elapsed,
        "count": count,
        "errors": sum(p["errors"] for p in parts),
        "seconds": elapsed,
        "machine_cpu_busy": round(busy, 3),
        "client_cpu_ms_per_op": client_cpu / per * 1e3,
        "server_cpu_ms_per_op": server_cpu / per * 1e3,
        # CPU used by anything but the writers and their server processes: other work on
        # a shared machine, and PostgreSQL's background writers.
        "other_load_cores": max(0.0, busy * cores - (client_cpu + server_cpu) / elapsed),
        "commit_ms_per_op": sum(p["commit_s"] for p in parts) / per * 1e3,
        "latency_p50_ms": max(p["latency_p50_s"] for p in parts) * 1e3,
        "latency_p99_ms": max(p["latency_p99_s"] for p in parts) * 1e3,
        "statements_per_op": sum(statements.values()) / per,
        "compiled_statement_cache": dict(compiled),
        "statement_ms_per_op": {
            k: round(v / per * 1e3, 3) for k, v in statement_s.most_common() if v / per > 1e-5
        },
    }


def append_throughput(url: str, district_id: int, writers: int, seconds: float) -> dict[str, Any]:
    """Raw, ledger, raw with `writers` processes for `seconds` each; rates and anatomy."""
    phases = ["raw", "ledger", "raw"]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(writers + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, district_id, phases, seconds, barrier, results))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    measured: list[dict[str, Any]] = []
    try:
        meter = CpuMeter()
        for _ in phases:
            barrier.wait(timeout=300)
            meter.start()
            servers = [] if url.startswith("sqlite") else pg_backend_pids(url)
            server0 = process_cpu_seconds(servers)
            parts = [results.get(timeout=seconds + 300) for _ in range(writers)]
            server = process_cpu_seconds(servers) - server0
            measured.append(_combine(parts, meter.busy(), server) | {"phase": parts[0]["phase"]})
            barrier.wait(timeout=300)
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError("an append writer failed; see its traceback above")
    raws = [m for m in measured if m["phase"] == "raw"]
    ledger = next(m for m in measured if m["phase"] == "ledger")
    raw_rate = sum(r["per_s"] for r in raws) / len(raws)
    return {
        "writers": writers,
        "seconds_per_phase": seconds,
        "events_per_s": ledger["per_s"],
        "raw_commits_per_s": raw_rate,
        "ratio_to_raw": ledger["per_s"] / raw_rate,
        "ledger": ledger,
        "raw_runs": raws,
    }
