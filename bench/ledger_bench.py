"""Custody-ledger benchmarks: append throughput, append-to-checkpoint latency, proof
latency at 1,000,000 leaves, and the standalone verifier on 10,000 events.

Usage: .venv/bin/python bench/ledger_bench.py [--quick]

Writes bench/results/ledger.json and the table in bench/README.md. Every figure is also
given as a ratio to a raw limit of this machine measured in the same run, because
absolute timings drift on shared machines. Each run uses its own throwaway PostgreSQL
database and SQLite files."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app.models  # noqa: E402,F401  (registers every table)
from app.accounts.admin import create_district  # noqa: E402
from app.db import Database, upgrade  # noqa: E402
from app.ledger import LedgerService  # noqa: E402
from app.settings import Settings  # noqa: E402
from audit import merkle, notes, offline_verify  # noqa: E402
from audit.adapters import ledger_sql  # noqa: E402
from audit.adapters.checkpoints_sql import create_signer_file  # noqa: E402
from audit.adapters.ledger_tables import LedgerLog  # noqa: E402
from audit.adapters.sql import SqlEventRecorder  # noqa: E402
from audit.events import AuditEvent, EventType  # noqa: E402

PG_ADMIN = os.environ.get("BWC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = ROOT / "bench" / "results" / "ledger.json"
README = ROOT / "bench" / "README.md"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- Databases ------------------------------------------------------------------------


def new_pg() -> str:
    name = f"bwc_bench_{secrets.token_hex(5)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(url: str) -> int:
    """Migrate and create a district (with its log); returns the district id."""
    upgrade(url)
    db = Database(url)
    with db.transaction() as s:
        district = create_district(s, "bench", "Bench", actor="cli", now=datetime.now(UTC))
        district_id = district.id
    db.dispose()
    return district_id


# --- Append throughput ----------------------------------------------------------------------


def _append_worker(url: str, district_id: int, count: int, barrier: object) -> None:
    db = Database(url)
    barrier.wait()  # type: ignore[attr-defined]
    for n in range(count):
        with db.transaction() as s:
            SqlEventRecorder(s).record(
                AuditEvent(EventType.LOGIN_FAILED, datetime.now(UTC), district_id, details={"n": n})
            )
    db.dispose()


def _raw_worker(url: str, count: int, barrier: object) -> None:
    from sqlalchemy import text

    db = Database(url)
    barrier.wait()  # type: ignore[attr-defined]
    for n in range(count):
        with db.engine.begin() as c:
            c.execute(text("INSERT INTO bench_raw (n) VALUES (:n)"), {"n": n})
    db.dispose()


def run_procs(target: Callable[..., None], args: tuple[object, ...], procs: int) -> float:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    workers = [ctx.Process(target=target, args=(*args, barrier)) for _ in range(procs)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise RuntimeError(f"worker failed with {w.exitcode}")
    return time.perf_counter() - start


def append_throughput(url: str, procs: int, per_proc: int) -> dict[str, float]:
    district_id = prepare(url) if not _has_schema(url) else _district(url)
    from sqlalchemy import text

    db = Database(url)
    with db.engine.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_raw (n integer)"))
    db.dispose()
    raw = run_procs(_raw_worker, (url, per_proc), procs)
    ours = run_procs(_append_worker, (url, district_id, per_proc), procs)
    total = procs * per_proc
    return {
        "events_per_s": total / ours,
        "raw_commits_per_s": total / raw,
        "ratio_to_raw": (total / ours) / (total / raw),
    }


def _has_schema(url: str) -> bool:
    from app.db import schema_is_current

    db = Database(url)
    try:
        return schema_is_current(db.engine)
    finally:
        db.dispose()


def _district(url: str) -> int:
    from sqlalchemy import select

    from evidence.adapters.sql.org import District

    db = Database(url)
    with db.sessions() as s:
        value = s.scalar(select(District.id).limit(1))
    db.dispose()
    assert value is not None
    return int(value)


# --- Append to checkpoint ------------------------------------------------------------------


def checkpoint_latency(url: str, tmp: Path, seconds: float) -> dict[str, float]:
    district_id = _district(url)
    settings = Settings(data_dir=tmp, database_url=url, secret_key="k" * 40)
    assert settings.ledger_key_file is not None
    create_signer_file(settings.ledger_key_file, "bench")
    db = Database(url)
    service = LedgerService(db, settings)
    with db.sessions() as s:
        log_id = ledger_sql.log_of(s, district_id).id
    committed: dict[int, float] = {}
    signed: list[tuple[int, float]] = []
    stop = threading.Event()

    def checkpointer() -> None:  # the service's worker loop at its default 1 s interval
        while not stop.is_set():
            size = service.checkpoint(log_id)
            if size is not None:
                signed.append((size, time.time()))
            stop.wait(settings.checkpoint_seconds)

    thread = threading.Thread(target=checkpointer)
    thread.start()
    end = time.time() + seconds
    while time.time() < end:
        with db.transaction() as s:
            e = AuditEvent(EventType.LOGOUT, datetime.now(UTC), district_id)
            SqlEventRecorder(s).record(e)
            index = ledger_sql.existing_index(s, e.id)
        committed[index] = time.time()  # type: ignore[index]
        time.sleep(0.02)
    time.sleep(settings.checkpoint_seconds * 2.5)
    stop.set()
    thread.join()
    db.dispose()
    latencies = []
    for index, at in committed.items():
        first = next((t for size, t in signed if size > index), None)
        if first is not None:
            latencies.append(first - at)
    return {
        "events": len(committed),
        "covered": len(latencies),
        "p50_s": pct(latencies, 0.5),
        "p99_s": pct(latencies, 0.99),
    }


# --- Proofs at a million leaves ---------------------------------------------------------------


def bulk_load(url: str, size: int) -> int:
    """Leaves and nodes written straight into the tables (setup only, not measured)."""
    prepare(url)
    leaves, nodes, frontier = [], [], []
    for i in range(size):
        leaf = json.dumps({"i": i, "type": "auth.logout", "v": 1}, separators=(",", ":")).encode()
        digest = merkle.leaf_hash(leaf)
        frontier, done = merkle.append_to_frontier(frontier, i, digest)
        leaves.append((i, leaf, digest))
        nodes.extend(done)
    db = Database(url)
    with db.transaction() as s:  # a log of its own, so index 0 is free
        log = LedgerLog(
            district_id=None,
            origin="bench/proofs",
            size=0,
            frontier=b"",
            created_at=datetime.now(UTC),
        )
        s.add(log)
        s.flush()
        log_id = log.id
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if url.startswith("sqlite"):
            cur.executescript("DROP TRIGGER ledger_leaves_next_index;")
            cur.executemany(
                "INSERT INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, appended_at)"
                " VALUES (?, ?, ?, ?, ?, '2026-01-01 00:00:00')",
                ((log_id, i, f"e{i}", leaf, h) for i, leaf, h in leaves),
            )
            cur.executemany(
                "INSERT INTO ledger_nodes (log_id, level, idx, hash) VALUES (?,?,?,?)",
                ((log_id, lv, ix, h) for (lv, ix), h in nodes),
            )
            cur.execute(
                "UPDATE ledger_logs SET size = ?, frontier = ? WHERE id = ?",
                (size, merkle.pack(frontier), log_id),
            )
        else:
            cur.execute("ALTER TABLE ledger_leaves DISABLE TRIGGER ledger_leaves_next_index")
            with cur.copy(
                "COPY ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, "
                "appended_at) FROM STDIN"
            ) as copy:
                for i, leaf, h in leaves:
                    copy.write_row((log_id, i, f"e{i}", leaf, h, "2026-01-01T00:00:00Z"))
            with cur.copy("COPY ledger_nodes (log_id, level, idx, hash) FROM STDIN") as copy:
                for (lv, ix), h in nodes:
                    copy.write_row((log_id, lv, ix, h))
            cur.execute("ALTER TABLE ledger_leaves ENABLE ALWAYS TRIGGER ledger_leaves_next_index")
            cur.execute(
                "UPDATE ledger_logs SET size = %s, frontier = %s WHERE id = %s",
                (size, merkle.pack(frontier), log_id),
            )
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        db.dispose()
    return log_id


def proof_latency(url: str, log_id: int, size: int, samples: int) -> dict[str, float]:
    from sqlalchemy import select

    from audit.adapters.ledger_tables import LedgerNode

    db = Database(url)
    rng = random.Random(7)
    inclusion, consistency, point = [], [], []
    with db.sessions() as s:
        root = ledger_sql.root_at(s, log_id, size)
        for _ in range(samples):
            index = rng.randrange(size)
            t = time.perf_counter()
            proof = ledger_sql.inclusion_proof(s, log_id, index, size)
            inclusion.append(time.perf_counter() - t)
            leaf = ledger_sql.entries(s, log_id, index, index + 1)[0][1]
            offline_verify.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, root)
            first = rng.randrange(1, size)
            t = time.perf_counter()
            ledger_sql.consistency_proof(s, log_id, first, size)
            consistency.append(time.perf_counter() - t)
            t = time.perf_counter()
            s.execute(
                select(LedgerNode.hash).where(
                    LedgerNode.log_id == log_id, LedgerNode.level == 0, LedgerNode.idx == index
                )
            ).one()
            point.append(time.perf_counter() - t)
    db.dispose()
    raw = pct(point, 0.5)
    return {
        "inclusion_p50_ms": pct(inclusion, 0.5) * 1e3,
        "inclusion_p99_ms": pct(inclusion, 0.99) * 1e3,
        "consistency_p50_ms": pct(consistency, 0.5) * 1e3,
        "consistency_p99_ms": pct(consistency, 0.99) * 1e3,
        "pk_select_p50_ms": raw * 1e3,
        "inclusion_p99_over_pk_select": pct(inclusion, 0.99) / raw,
    }


# --- The standalone verifier on 10,000 events ------------------------------------------------


def verifier_on(events: int) -> dict[str, float]:
    items = [f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}" for _ in range(100)]
    heads: dict[str, tuple[int, str | None]] = {}
    leaves = []
    for i in range(events):
        item = items[i % len(items)]
        seq, prev = heads.get(item, (0, None))
        event = {"evidence_id": item, "seq": seq + 1, "type": "evidence.viewed", "v": 1, "i": i}
        if prev:
            event["prev"] = prev
        leaf = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        leaves.append(leaf)
        heads[item] = (seq + 1, merkle.leaf_hash(leaf).hex())
    store: dict[merkle.NodeId, bytes] = {}
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        frontier, done = merkle.append_to_frontier(frontier, i, merkle.leaf_hash(leaf))
        store.update(done)
    fetch = lambda ids: {i: store[i] for i in ids}  # noqa: E731
    proofs = [merkle.range_hashes(merkle.inclusion_ranges(i, events), fetch) for i in range(events)]
    key = notes.new_signing_key()
    note = notes.sign_note(
        notes.format_checkpoint("bench/log", events, merkle.frontier_root(frontier)),
        "bench/log",
        key,
    )
    vkey = notes.verifier_key("bench/log", key.public_key())

    start = time.perf_counter()
    checkpoint = offline_verify.verify_checkpoint(note, offline_verify.parse_verifier_key(vkey))
    for i, leaf in enumerate(leaves):
        offline_verify.verify_inclusion(
            offline_verify.leaf_hash(leaf), i, events, proofs[i], checkpoint.root_hash
        )
    chains = offline_verify.check_chains(leaves)
    assert sum(chains.values()) == events
    elapsed = time.perf_counter() - start

    blob = os.urandom(64 << 20)
    t = time.perf_counter()
    import hashlib

    hashlib.sha256(blob).digest()
    sha_gbps = len(blob) / (time.perf_counter() - t) / 1e9
    pub = key.public_key()
    sig = key.sign(b"x")
    t = time.perf_counter()
    for _ in range(2000):
        pub.verify(sig, b"x")
    verifies_per_s = 2000 / (time.perf_counter() - t)
    return {
        "events": events,
        "seconds": elapsed,
        "sha256_GB_per_s": sha_gbps,
        "ed25519_verifies_per_s": verifies_per_s,
    }


# --- Report ----------------------------------------------------------------------------------


def table(results: dict[str, object]) -> str:
    r: dict[str, dict[str, float]] = results["figures"]  # type: ignore[assignment]
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw limit (same run) |",
        "|---|---|---|---|---|",
    ]
    for db in ("postgresql", "sqlite"):
        goal = 2000 if db == "postgresql" else 500
        for procs in (1, 4):
            f = r[f"append_{db}_{procs}p"]
            rows.append(
                f"| Append, {db}, {procs} writer(s), durable commits | "
                f"{f['events_per_s']:.0f} events/s | ≥ {goal}/s | "
                f"{'yes' if f['events_per_s'] >= goal else 'no'} | "
                f"{f['ratio_to_raw']:.2f} of raw INSERT+COMMIT "
                f"({f['raw_commits_per_s']:.0f}/s) |"
            )
    c = r["checkpoint_latency"]
    rows.append(
        f"| Append → signed checkpoint, p50 / p99 | {c['p50_s']:.2f} s / "
        f"{c['p99_s']:.2f} s | p99 ≤ 2 s | {'yes' if c['p99_s'] <= 2 else 'no'} | "
        "interval 1 s |"
    )
    for db in ("postgresql", "sqlite"):
        p = r.get(f"proofs_{db}")
        if not p:
            continue
        ok = p["inclusion_p99_ms"] <= 10 and p["consistency_p99_ms"] <= 10
        rows.append(
            f"| Proofs at {int(results['proof_tree_size']):,} leaves, {db}: inclusion "
            f"p99 / consistency p99 | {p['inclusion_p99_ms']:.2f} ms / "
            f"{p['consistency_p99_ms']:.2f} ms | p99 ≤ 10 ms | {'yes' if ok else 'no'} "
            f"| {p['inclusion_p99_over_pk_select']:.1f}× one PK select "
            f"({p['pk_select_p50_ms']:.3f} ms) |"
        )
    v = r["verifier"]
    rows.append(
        f"| Verifier on {int(v['events']):,} events (checkpoint, every inclusion proof, "
        f"every chain) | {v['seconds']:.2f} s | < 5 s | "
        f"{'yes' if v['seconds'] < 5 else 'no'} | SHA-256 {v['sha256_GB_per_s']:.2f} "
        f"GB/s, Ed25519 {v['ed25519_verifies_per_s']:.0f} verifies/s |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    args = parser.parse_args()
    quick = args.quick
    per_proc = 100 if quick else 500
    tree = 100_000 if quick else 1_000_000
    samples = 200 if quick else 1000
    started = time.time()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pg = new_pg()
        try:
            for procs in (1, 4):
                figures[f"append_postgresql_{procs}p"] = append_throughput(pg, procs, per_proc)
            figures["checkpoint_latency"] = checkpoint_latency(pg, tmp, 10 if quick else 30)
        finally:
            drop_pg(pg)
        for procs in (1, 4):
            url = f"sqlite:///{tmp}/append{procs}.sqlite3"
            figures[f"append_sqlite_{procs}p"] = append_throughput(url, procs, per_proc)
        pg = new_pg()
        try:
            log_id = bulk_load(pg, tree)
            figures["proofs_postgresql"] = proof_latency(pg, log_id, tree, samples)
        finally:
            drop_pg(pg)
        url = f"sqlite:///{tmp}/proofs.sqlite3"
        log_id = bulk_load(url, tree)
        figures["proofs_sqlite"] = proof_latency(url, log_id, tree, samples)
    figures["verifier"] = verifier_on(10_000)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "quick": quick,
        "proof_tree_size": tree,
        "seconds": round(time.time() - started, 1),
        "figures": figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    text = README.read_text()
    block = (
        f"<!-- ledger:begin -->\n{table(results)}\n\nRun {results['date']}, "
        f"{'quick' if quick else 'full'} mode, {results['seconds']} s: "
        "`.venv/bin/python bench/ledger_bench.py`.\n<!-- ledger:end -->"
    )
    if "<!-- ledger:begin -->" in text:
        head, rest = text.split("<!-- ledger:begin -->", 1)
        text = head + block + rest.split("<!-- ledger:end -->", 1)[1]
    else:
        text = text.rstrip() + "\n\n## Custody ledger\n\n" + block + "\n"
    README.write_text(text)
    print(table(results))


if __name__ == "__main__":
    main()
