"""Custody-ledger benchmarks: append throughput with durable commits, append-to-checkpoint
latency, proof latency on a 1,000,000-leaf log, and bwc-verify on 10,000 events.

Usage: .venv/bin/python bench/ledger_bench.py [--quick]

Writes bench/results/ledger.json and the table between the ledger markers in
bench/README.md. Each figure is given with its goal and as a ratio to a raw limit of
this machine measured in the same run, because absolute timings drift on shared
machines. Every run makes its own PostgreSQL databases (bwc_bench_<random>, dropped at
the end) and SQLite files in a temporary folder; it touches no other database.
PostgreSQL is reached as BWC_BENCH_PG_URL (default postgres@127.0.0.1:5432)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    CpuMeter,
    check_postgres,
    machine_info,
    pg_admin_url,
    sqlite_url,
    throwaway_postgres,
)
from _ledger_append import append_throughput, domain_cost_ms, prepare
from _ledger_checkpoints import checkpoint_latency
from _ledger_proofs import bulk_load, proof_latency
from _ledger_verifier import verifier_benchmark

RESULTS = ROOT / "bench" / "results" / "ledger.json"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- ledger:begin -->", "<!-- ledger:end -->"
NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
APPEND_GOAL = {"postgresql": 2000, "sqlite": 500}
CHECKPOINT_GOAL_S = 2.0
PROOF_GOAL_MS = 10.0
VERIFY_GOAL_S = 5.0


@dataclass(frozen=True)
class Sizes:
    append_seconds: float  # per phase (raw, ledger, raw)
    checkpoint_seconds: dict[str, float]
    checkpoint_rate: float  # events per second while checkpoints are measured
    proof_leaves: int
    proof_samples: int
    verify_events: int


FULL = Sizes(10.0, {"postgresql": 60.0, "sqlite": 30.0}, 20.0, 1_000_000, 2000, 10_000)
QUICK = Sizes(1.5, {"postgresql": 8.0, "sqlite": 5.0}, 20.0, 100_000, 300, 1_000)


def _figure(
    key: str,
    measure: str,
    value: float,
    unit: str,
    goal: str,
    met: bool,
    ratio: float,
    ratio_meaning: str,
    result: str,
    ratio_text: str,
) -> dict[str, Any]:
    return {
        "id": key,
        "measure": measure,
        "value": value,
        "unit": unit,
        "goal": goal,
        "met": met,
        "ratio": ratio,
        "ratio_meaning": ratio_meaning,
        "table": {"result": result, "ratio": ratio_text},
    }


def append_figures(name: str, runs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    goal = APPEND_GOAL[name]
    out = []
    for writers, r in runs.items():
        rate, raw = r["events_per_s"], r["raw_commits_per_s"]
        out.append(
            _figure(
                f"append_{name}_{writers}w",
                f"Append, {NAMES[name]}, {writers} writer{'s' if writers > 1 else ''}, "
                "one event per durable commit",
                rate,
                "events/s",
                f">= {goal} events/s",
                rate >= goal,
                r["ratio_to_raw"],
                "events/s divided by raw single-row INSERT+COMMIT/s, same writers, same database",
                f"{rate:,.0f} events/s",
                f"{r['ratio_to_raw']:.2f} of raw INSERT+COMMIT ({raw:,.0f}/s)"
                + (f"; {r['ledger']['errors']} failed" if r["ledger"]["errors"] else ""),
            )
        )
    return out


def checkpoint_figure(c: dict[str, Any]) -> dict[str, Any]:
    name = c["backend"]
    return _figure(
        f"checkpoint_latency_{name}",
        f"Append → signed checkpoint, {NAMES[name]} (LedgerWorker, {c['interval_s']:g} s "
        f"interval, {c['append_rate_per_s']:.0f} events/s)",
        c["p99_s"],
        "s (p99)",
        f"p99 <= {CHECKPOINT_GOAL_S:g} s",
        c["p99_s"] <= CHECKPOINT_GOAL_S and c["uncovered_events"] == 0,
        c["p99_s"] / c["interval_s"],
        "p99 divided by the checkpoint interval (the floor for the worst case)",
        f"p50 {c['p50_s']:.2f} s / p99 {c['p99_s']:.2f} s",
        f"p99 = {c['p99_s'] / c['interval_s']:.2f}× the interval; signing p50 "
        f"{c['checkpoint_duration']['p50_ms']:.0f} ms",
    )


def proof_figures(p: dict[str, Any]) -> list[dict[str, Any]]:
    name, leaves = p["backend"], p["tree_size"]
    pk = p["pk_select"]["p50_ms"]
    out = []
    for kind in ("inclusion", "consistency"):
        s = p[kind]
        out.append(
            _figure(
                f"{kind}_proof_{name}",
                f"{kind.capitalize()} proof at {leaves:,} leaves, {NAMES[name]} "
                f"({p['samples']:,} random proofs)",
                s["p99_ms"],
                "ms (p99)",
                f"p99 <= {PROOF_GOAL_MS:g} ms",
                s["p99_ms"] <= PROOF_GOAL_MS,
                s["p50_ms"] / pk,
                "p50 proof time divided by p50 of one primary-key SELECT of a ledger_nodes row",
                f"p50 {s['p50_ms']:.2f} ms / p99 {s['p99_ms']:.2f} ms",
                f"p50 = {s['p50_ms'] / pk:.1f}× one PK select ({pk:.3f} ms), "
                f"p99 = {s['p99_ms'] / pk:.1f}×",
            )
        )
    return out


def verifier_figures(v: dict[str, Any]) -> list[dict[str, Any]]:
    events, items = v["set"]["events"], v["set"]["evidence_items"]
    raw = v["raw"]
    limits = (
        f"SHA-256 {raw['sha256_bulk_GB_per_s']:.2f} GB/s, "
        f"{raw['sha256_node_hashes_per_s'] / 1e6:.1f} M node hashes/s; "
        f"Ed25519 {raw['ed25519_verifies_per_s']:,.0f} verifies/s"
    )
    out = []
    for mode, what in (
        (
            "library",
            f"bwc-verify functions on {events:,} events: checkpoint, {events:,} inclusion "
            f"proofs, whole-log root, {items} custody chains (fresh interpreter)",
        ),
        (
            "cli",
            f"bwc-verify commands on {events:,} events: 1 checkpoint + {events:,} inclusion + "
            f"{items} chain commands through main() (one interpreter)",
        ),
    ):
        r = v[mode]
        ratio = r["seconds"] / r["crypto_floor_s"]
        out.append(
            _figure(
                f"verifier_{mode}",
                what,
                r["seconds"],
                "s",
                f"< {VERIFY_GOAL_S:g} s",
                r["seconds"] < VERIFY_GOAL_S,
                ratio,
                "wall time divided by the time its SHA-256 and Ed25519 work alone takes "
                "at the raw rates measured in this run",
                f"{r['seconds']:.2f} s",
                f"{ratio:.0f}× its hashing + signature floor ({r['crypto_floor_s']:.3f} s; "
                f"{limits})",
            )
        )
    return out


def where_time_goes(details: dict[str, Any]) -> list[str]:
    """A few lines per benchmark, from this run's own breakdowns."""
    lines = []
    for name in ("postgresql", "sqlite"):
        one = details["append"][name][1]
        four = details["append"][name][4]["ledger"]
        ledger, raw = one["ledger"], one["raw_runs"][0]
        lock = sum(v for k, v in four["statement_ms_per_op"].items() if "log lock" in k)
        cores = details["cores"]
        cpu_ms = ledger["client_cpu_ms_per_op"] + ledger["server_cpu_ms_per_op"]
        if name == "postgresql":
            server = (
                f"The PostgreSQL server adds {ledger['server_cpu_ms_per_op']:.2f} ms of CPU "
                f"(raw: {raw['server_cpu_ms_per_op']:.2f} ms)."
            )
            held = "row lock"
        else:
            server = "SQLite runs inside the writer, so its work is part of that CPU."
            held = "lock (SQLite's database write lock)"
        lines.append(
            f"Append, {NAMES[name]}: one writer spends {1e3 / ledger['per_s']:.2f} ms per event "
            f"(raw INSERT+COMMIT: {1e3 / one['raw_commits_per_s']:.2f} ms). Its own CPU is "
            f"{ledger['client_cpu_ms_per_op']:.2f} ms (raw: {raw['client_cpu_ms_per_op']:.2f} "
            f"ms), mostly SQLAlchemy and the driver running {ledger['statements_per_op']:.0f} "
            f"statements: the ledger's own work (leaf JSON, commitment, hashes) is "
            f"{details['append']['domain_cpu_ms']:.2f} ms. {server} Flush and COMMIT take "
            f"{ledger['commit_ms_per_op']:.2f} ms of the wall time. At {cpu_ms:.2f} ms of CPU "
            f"per event, {cores} cores could append at most about {cores * 1e3 / cpu_ms:,.0f} "
            f"events/s. With four writers each event waits {lock:.1f} ms for the log's "
            f"{held}, which is held until COMMIT returns, so appends to one log run one at a "
            "time."
        )
    for name in ("postgresql", "sqlite"):
        c = details["checkpoint"][name]
        lines.append(
            f"Checkpoint, {NAMES[name]}: an event waits for the worker's next tick (0 to "
            f"{c['interval_s']:g} s) plus the signing transaction (p50 "
            f"{c['checkpoint_duration']['p50_ms']:.0f} ms, p99 "
            f"{c['checkpoint_duration']['p99_ms']:.0f} ms); {c['events']:,} events, "
            f"{c['checkpoints']} checkpoints."
        )
    for name in ("postgresql", "sqlite"):
        p = details["proofs"][name]
        cache = p["node_fetch_compiled_cache"]
        fresh = sum(v for k, v in cache.items() if k != "CACHE_HIT")
        lines.append(
            f"Proofs, {NAMES[name]}: p50 {p['inclusion']['p50_ms']:.2f} ms per inclusion "
            f"proof, of which {p['inclusion_client_cpu_ms_mean']:.2f} ms (mean) is client "
            f"CPU for 2 statements; SQLAlchemy compiled the node-fetch statement afresh for "
            f"{fresh:,} of {sum(cache.values()):,} fetches (its VALUES list has no cache key)."
        )
    v = details["verifier"]
    cli = v["cli"]
    lines.append(
        f"Verifier: through main(), each `inclusion` command takes "
        f"{cli['inclusion_s'] / v['set']['events'] * 1e3:.2f} ms, "
        f"{cli['build_parser_ms']:.2f} ms of it building the argument parser, and each "
        "`chain` command "
        f"{cli['chains_s'] / max(1, v['set']['evidence_items']) * 1e3:.0f} ms (it re-reads and "
        f"re-hashes the whole log); run as separate processes, {cli['commands']:,} commands "
        f"would take about {v['projected_cli_processes_s']:,.0f} s "
        f"({v['one_cli_process_s'] * 1e3:.0f} ms per process, a projection)."
    )
    return lines


def render(results: dict[str, Any]) -> str:
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw limit (same run) |",
        "|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        goal = f["goal"].replace(">=", "≥").replace("<=", "≤")
        rows.append(
            f"| {f['measure']} | {f['table']['result']} | {goal} | "
            f"{'yes' if f['met'] else '**no**'} | {f['table']['ratio']} |"
        )
    m = results["machine"]
    mode = "quick mode (smaller sizes: not the goals' sizes)" if results["quick"] else "full run"
    notes = "\n".join(f"- {line}" for line in results["where_time_goes"])
    return (
        "\n".join(rows)
        + f"\n\n{mode.capitalize()} of `.venv/bin/python bench/ledger_bench.py"
        + (" --quick" if results["quick"] else "")
        + f"` on {m['date']}, {results['seconds']:.0f} s, {m['cores']} × {m['cpu']}, "
        f"PostgreSQL {m['postgresql']['server_version']}, SQLite {m['sqlite']}; other load "
        f"on the machine: {results['background_cpu_busy']:.0%} of its CPUs before the run, "
        f"up to {results['other_load_cores']:.2f} cores during the append runs. "
        "Raw figures: `bench/results/ledger.json`.\n\nWhere the time goes in this run:\n\n" + notes
    )


def write_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Custody ledger\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    details: dict[str, Any] = {
        "append": {},
        "checkpoint": {},
        "proofs": {},
        "cores": os.cpu_count() or 1,
    }
    details["append"]["domain_cpu_ms"] = domain_cost_ms()
    for name in ("postgresql", "sqlite"):
        with throwaway_postgres() if name == "postgresql" else nullcontext() as pg:
            url = pg or sqlite_url(tmp, "append")
            district = prepare(url)
            runs = {}
            for writers in (1, 4):
                _step(f"append throughput, {name}, {writers} writer(s)")
                runs[writers] = append_throughput(url, district, writers, sizes.append_seconds)
            details["append"][name] = runs
            _step(f"append → checkpoint latency, {name}")
            details["checkpoint"][name] = checkpoint_latency(
                url,
                district,
                tmp / f"checkpoint-{name}",
                sizes.checkpoint_seconds[name],
                sizes.checkpoint_rate,
            )
    for name in ("postgresql", "sqlite"):
        with throwaway_postgres() if name == "postgresql" else nullcontext() as pg:
            url = pg or sqlite_url(tmp, "proofs")
            district = prepare(url)
            _step(f"bulk-loading {sizes.proof_leaves:,} leaves, {name}")
            loaded = bulk_load(url, district, sizes.proof_leaves)
            _step(f"proof latency, {name}")
            details["proofs"][name] = proof_latency(url, loaded, sizes.proof_samples)
    _step(f"bwc-verify on {sizes.verify_events:,} events (building and exporting the set)")
    url = sqlite_url(tmp, "verifier")
    details["verifier"] = verifier_benchmark(url, prepare(url), sizes.verify_events, tmp)
    return details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (100,000 leaves); about a minute"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sizes = QUICK if args.quick else FULL
    check_postgres()
    machine = machine_info(pg_admin_url())
    meter = CpuMeter()
    meter.start()
    time.sleep(2)
    background = meter.busy()
    if background > 0.25:
        print(f"warning: the machine is already {background:.0%} busy; figures will suffer")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bwc_bench_") as tmp:
        details = run(sizes, Path(tmp))
    figures = []
    for name in ("postgresql", "sqlite"):
        figures += append_figures(name, details["append"][name])
    for name in ("postgresql", "sqlite"):
        figures.append(checkpoint_figure(details["checkpoint"][name]))
    for name in ("postgresql", "sqlite"):
        figures += proof_figures(details["proofs"][name])
    figures += verifier_figures(details["verifier"])
    results = {
        "benchmark": "custody ledger",
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "machine": machine,
        "background_cpu_busy": background,
        "other_load_cores": max(
            phase["other_load_cores"]
            for name in ("postgresql", "sqlite")
            for run in details["append"][name].values()
            for phase in (run["ledger"], *run["raw_runs"])
        ),
        "seconds": time.perf_counter() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": figures,
        "where_time_goes": where_time_goes(details),
        "details": details,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    table = render(results)
    write_readme(table)
    print(table)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot store {type(value).__name__} in the results")


if __name__ == "__main__":
    main()
