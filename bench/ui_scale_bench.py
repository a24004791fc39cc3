"""Evidence web UI at district scale: list, search, item page and ranged streams on a
database of 1,000,000 evidence items and 10,000,000 custody events across 40 schools.

Usage: .venv/bin/python bench/ui_scale_bench.py [--quick] [--keep]

Writes bench/results/ui_scale.json and the table between the ui-scale markers in
bench/README.md; --quick writes bench/results/ui_scale_quick.json and only prints its
table. Times are taken inside the WSGI app
(Flask test client, one process), each figure given with its goal and as a ratio to a
single primary-key SELECT on the same database in the same run. The run makes its own
PostgreSQL database (bwc_bench_<random>, dropped at the end; server from
BWC_BENCH_PG_URL, default postgres@127.0.0.1:5432) and a temporary data dir."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, CpuMeter, check_postgres, machine_info, pg_admin_url, throwaway_postgres
from _ui_scale_generate import LOADED, Shape, generate
from _ui_scale_load import Loader
from _ui_scale_measure import measure_and_propose
from _ui_scale_media import import_media, sign_and_check
from _ui_scale_report import figures, render, where_time_goes, write_readme
from _ui_scale_world import build_world, history_window

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Sizes:
    items: int
    events: int
    schools: int
    wearers_per_school: int
    pooled_per_school: int
    docks_per_school: int
    records_officers: int
    tags: int
    days: int
    incidents_per_school_year: float
    fixity_days: float
    tampered: int
    media: int
    media_bytes: int
    samples: int
    minimum: int
    budget_s: float
    warmup: int
    proposal_samples: int


FULL = Sizes(
    1_000_000, 10_000_000, 40, 25, 3, 2, 4, 300, 1095, 200.0, 182.0, 20, 120, 2 << 20,
    300, 100, 600.0, 5, 150,
)  # fmt: skip
QUICK = Sizes(
    100_000, 1_000_000, 40, 25, 3, 2, 4, 300, 1095, 200.0, 182.0, 5, 40, 2 << 20,
    100, 40, 90.0, 3, 60,
)  # fmt: skip
SEED = 20261203


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(sizes: Sizes, tmp: Path, url: str) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    created, first, last = history_window(end, sizes.days)
    started = time.perf_counter()
    _step("building the district (bwc init, schools, cameras, docks, users)")
    world = build_world(
        tmp / "data",
        url,
        created_at=created,
        schools=sizes.schools,
        wearers_per_school=sizes.wearers_per_school,
        pooled_per_school=sizes.pooled_per_school,
        docks_per_school=sizes.docks_per_school,
        records_officers=sizes.records_officers,
        tags=sizes.tags,
        rng=random.Random(SEED),
    )
    world_s = time.perf_counter() - started
    loader = Loader(url)
    shape = Shape(
        sizes.items,
        sizes.events,
        sizes.days,
        sizes.incidents_per_school_year,
        sizes.fixity_days,
        sizes.tampered,
    )
    _step(f"generating {sizes.items:,} items and {sizes.events:,} custody events")
    generated = generate(loader, world, shape, first.timestamp(), last.timestamp(), SEED, _step)
    generated["timings"]["world_s"] = world_s
    _step(f"importing {sizes.media} real recordings through `bwc evidence import`")
    mark = time.perf_counter()
    media = import_media(
        world,
        sizes.media,
        sizes.media_bytes,
        first.timestamp(),
        last.timestamp(),
        rng,
        tmp / "media",
    )
    generated["timings"]["media_import_s"] = time.perf_counter() - mark
    _step("signing a checkpoint; proving random leaves, walking random chains")
    mark = time.perf_counter()
    checks = sign_and_check(world, 25, rng)
    generated["timings"]["checks_s"] = time.perf_counter() - mark
    generated["timings"]["generation_wall_s"] = time.perf_counter() - started
    sizes_now = loader.sizes(LOADED)
    _step(f"database: {sizes_now['database_bytes'] / 2**30:.1f} GiB; measuring")
    # A fresh process for the requests, as a service worker would be (see its docstring).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        timed = pool.apply(
            measure_and_propose, (world, media, url, first.date(), last.date(), sizes)
        )
    return {
        "generation": generated,
        "checks": checks,
        "database": sizes_now,
        "history": {"first": first.isoformat(), "last": last.isoformat(), "days": sizes.days},
        "world": {
            "schools": len(world.schools),
            "wearers": len(world.wearers),
            "cameras": len(world.cameras),
            "docks": len(world.docks),
            "categories": len(world.categories),
            "tags": len(world.tags),
            "media": len(media),
            "media_bytes": sizes.media_bytes,
        },
        "measured": timed["measured"],
        "proposals": timed["proposals"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100,000 items and 1,000,000 events, 100 samples a measure; a few minutes",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the generated database in place afterwards (its name is printed)",
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
    with (
        throwaway_postgres(keep=args.keep) as url,
        tempfile.TemporaryDirectory(prefix="bwc_bench_") as tmp,
    ):
        details = run(sizes, Path(tmp), url)
    results = {
        "benchmark": "evidence web UI at district scale",
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": machine,
        "background_cpu_busy": background,
        "seconds": time.perf_counter() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": figures(details),
        "where_time_goes": where_time_goes(details),
        "details": details,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("ui_scale_quick.json" if args.quick else "ui_scale.json")
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    table = render(results)
    if not args.quick:  # the README keeps the figures at the goals' sizes
        write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
