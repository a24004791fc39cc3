"""Dock offload benchmarks: the spool's one read pass (volume → spool), a whole docking
through the real agent and server to verified receipts and a wiped camera, and the
agent's peak memory, beside raw limits measured in the same run.

Usage: .venv/bin/python bench/dock_bench.py [--quick]

Writes bench/results/dock.json and the table between the dock markers in
bench/README.md. The raw limits are one-core hashlib SHA-256, os.write + fsync on the
spool's disk and a sequential read of the recording with its pages dropped. The volume,
the dock's state and the service's data dir (SQLite, local store) live in a temporary
folder on disk, removed at the end; the server and agents are stopped whatever happens."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import ROOT, CpuMeter
from _dock_agent import (
    Run,
    dock_once,
    enrol,
    fixity,
    import_rss,
    service_item,
    set_up_service,
    world_for,
)
from _dock_notes import where_time_goes
from _dock_phases import phases, rss_timeline
from _dock_report import figures, render, write_readme
from _dock_spool import PROFILE, other_cores, seal_once, seal_to_null
from _dock_volume import (
    BigVolume,
    drop_cache,
    raw_read,
    raw_write_fsync,
    resident_fraction,
    simulated_usb,
    wait_stable,
    write_event_log,
    write_volume,
)
from _vault_raw import random_pool, sha256_rate
from _vault_service import log_errors, serving
from vault_ingest_bench import _filesystem, _step, machine

import dock
from dock.simulate import simulate_volume
from evidence.crypto import segments

RESULTS = ROOT / "bench" / "results" / "dock.json"
REEXEC = "_DOCK_BENCH_REEXEC"
MiB = 1024 * 1024
BIG_SERIAL, SMALL_SERIAL = "BWC-0002", "BWC-0003"
SMALL_CLIPS = 3
AGENT_START_SECONDS = 1.0


@dataclass(frozen=True)
class Sizes:
    volume: int  # the recording on the large volume
    raw_bytes: int  # per raw SHA-256 figure (the disk figure writes `volume` bytes)


FULL = Sizes(2048 * MiB, 1024 * MiB)
QUICK = Sizes(256 * MiB, 256 * MiB)


def _report(reports: Path) -> dict[str, Any]:
    (path,) = sorted(reports.glob("*.json"))
    report = json.loads(path.read_text())
    entries = report.get("entries", [])
    return {
        "decision": report.get("decision"),
        "alerts": report.get("alerts"),
        "errors": report.get("errors"),
        "clock_offset_ms": report.get("clock_offset_ms"),
        "entries": len(entries),
        "wiped": sum(1 for e in entries if e.get("wiped")),
        "outcomes": sorted({str(e.get("outcome")) for e in entries}),
    }


def _docked(usb: Path, tmp: Path, server: Any, name: str, **kw: Any) -> dict[str, Any]:
    """One watched docking, and the cores other processes used meanwhile."""
    reports = tmp / f"reports-{name}"
    meter = CpuMeter()
    meter.start()
    run = dock_once(usb, tmp / "dock-state", reports, server, tmp / f"agent-{name}", **kw)
    busy = meter.busy()
    samples = run.watch.samples
    service = samples[-1].server_cpu - samples[0].server_cpu if samples else 0.0
    return {
        "run": run,
        "reports": reports,
        "service_cpu_s": service,
        "other_load_cores": other_cores(busy, run.user_s + run.system_s + service, run.seconds),
    }


def _docking_record(run: Run, plaintext: int, reports: Path) -> dict[str, Any]:
    if run.returncode != 0:
        raise RuntimeError(
            f"bwc-dock run --once exited {run.returncode}:\n{run.stdout}\n{run.stderr[-3000:]}"
        )
    report = _report(reports)
    if report["decision"] != "accept" or report["errors"]:
        raise RuntimeError(f"the session did not end clean: {report}")
    polled = max((s.hwm_kib for s in run.watch.samples), default=0)
    return {
        "seconds": run.seconds,
        "plaintext_bytes": plaintext,
        "MB_per_s": plaintext / run.seconds / 1e6,
        "returncode": run.returncode,
        "peak_rss_mib": run.maxrss_kib / 1024,
        "peak_rss_polled_mib": polled / 1024,
        "samples": len(run.watch.samples),
        "agent_cpu": [run.user_s, run.system_s],
        "rss_timeline_mib": rss_timeline(run),
        "report": report,
        "stdout": run.stdout.strip().splitlines()[-3:],
    }


def dock_large(volume: BigVolume, tmp: Path, world: Any, server: Any) -> dict[str, Any]:
    # DOCKED at the moment the agent will look: after the stability window has passed
    # and the agent has started (about a second), so the measured clock offset is ~0.
    window = PROFILE.limits.stability_window_seconds
    docked_at = datetime.now(UTC) + timedelta(seconds=window + 0.2 + AGENT_START_SECONDS)
    write_event_log(volume, docked_at)
    waited = wait_stable(volume.root, window)
    drop_cache(volume.recording)  # a camera's files are not in the dock's page cache
    resident = resident_fraction(volume.recording)
    usb = simulated_usb(tmp / "usb-large.json", volume.root, volume.serial)
    plaintext = sum(p.stat().st_size for p in volume.root.rglob("*") if p.is_file())
    _step(f"docking the {volume.size >> 20} MiB volume: bwc-dock run --once")
    docked = _docked(usb, tmp, server, "large", recording=volume.recording)
    run = docked["run"]
    out = _docking_record(run, plaintext, docked["reports"])
    out["service_cpu_s"] = docked["service_cpu_s"]
    out["other_load_cores"] = docked["other_load_cores"]
    cipher = segments.ciphertext_size(volume.size)
    out["phases"] = phases(run, cipher)
    out["stability_wait_s"] = waited
    out["recording_resident_before"] = resident
    item = service_item(world, volume.sha256)
    out["verification"] = {
        "recording_wiped": not volume.recording.exists(),
        "sidecar_wiped": not volume.sidecar.exists(),
        "kept": sorted(str(p.relative_to(volume.root)) for p in volume.root.rglob("*.*")),
        "item": item,
        "fixity": fixity(world, item["evidence_id"]) if item else None,
    }
    v = out["verification"]
    if not (v["recording_wiped"] and v["sidecar_wiped"] and item and item["size"] == volume.size):
        raise RuntimeError(f"the docking did not end as it should: {v}")
    if "ok" not in (v["fixity"] or ""):
        raise RuntimeError(f"fixity check failed: {v['fixity']}")
    return out


def dock_small(tmp: Path, world: Any, server: Any) -> dict[str, Any]:
    root = tmp / "small-volume"
    _step(f"simulating a small volume ({SMALL_CLIPS} clips) and docking it")
    simulated = simulate_volume(root, serial=SMALL_SERIAL, clips=SMALL_CLIPS)
    waited = wait_stable(root, PROFILE.limits.stability_window_seconds)
    usb = simulated_usb(tmp / "usb-small.json", root, SMALL_SERIAL)
    plaintext = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    docked = _docked(usb, tmp, server, "small")
    out = _docking_record(docked["run"], plaintext, docked["reports"])
    out["stability_wait_s"] = waited
    out["clips"] = [c.size for c in simulated.clips]
    items = [service_item(world, c.sha256) for c in simulated.clips]
    out["verification"] = {
        "recordings_wiped": all(not c.path.exists() for c in simulated.clips),
        "items": sum(1 for i in items if i),
    }
    if not out["verification"]["recordings_wiped"] or out["verification"]["items"] != 3:
        raise RuntimeError(f"the small docking did not end as it should: {out['verification']}")
    return out


def run(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    pool = random_pool()
    d: dict[str, Any] = {"raw": {}, "filesystem": _filesystem(tmp)}
    raw = d["raw"]
    _step(f"raw limits: SHA-256 ({sizes.raw_bytes >> 20} MiB), disk ({sizes.volume >> 20} MiB)")
    raw["sha256_before"] = sha256_rate(pool, sizes.raw_bytes)
    raw["disk_before"] = [raw_write_fsync(tmp, pool, sizes.volume) for _ in range(2)]
    _step(f"writing a {sizes.volume >> 20} MiB volume (DEVICE.JSON, recording, sidecar)")
    volume = write_volume(tmp / "volume", serial=BIG_SERIAL, size=sizes.volume)
    d["volume"] = {
        "size": volume.size,
        "sha256": volume.sha256,
        "write_seconds": volume.write_seconds,
        "recording": str(volume.recording.relative_to(volume.root)),
    }
    _step("raw read of the recording (page cache dropped)")
    raw["volume_read"] = raw_read(volume.recording)
    _step("offload: Spool.seal of the recording, page cache dropped, then cached")
    d["offload"] = {
        "cold": seal_once(volume, tmp / "bench-spool", drop=True),
        "warm": seal_once(volume, tmp / "bench-spool", drop=False),
        "no_disk": seal_to_null(volume),
    }
    d["imports"] = import_rss()
    world = world_for(tmp / "data")
    _step("service: bwc init, schools add, cameras add, docks add; bwc serve; bwc-dock enroll")
    token = set_up_service(world, [BIG_SERIAL, SMALL_SERIAL])
    log = tmp / "server.log"
    with serving(world, log) as server:
        enrol(server.base, token, tmp / "dock-state")
        d["docking"] = {"large": dock_large(volume, tmp, world, server)}
        d["docking"]["small"] = dock_small(tmp, world, server)
        d["service_peak_rss_mib"] = server.peak_rss_mib()
    d["server_log_errors"] = log_errors(log)[:20]
    _step("raw SHA-256 and disk again")
    raw["sha256_after"] = sha256_rate(pool, sizes.raw_bytes)
    raw["disk_after"] = [raw_write_fsync(tmp, pool, sizes.volume) for _ in range(2)]
    return d


def _use_this_checkout() -> None:
    """Measure this checkout's code. The venv's editable install may map `dock`, `app`
    and the rest to another copy; then this process and every `bwc`, `bwc serve` and
    `bwc-dock` it starts would run that one. Re-run with this checkout on PYTHONPATH,
    which the subprocesses inherit."""
    import dock

    here = Path(dock.__file__).resolve().parents[1]
    if here == ROOT:
        return
    if os.environ.get(REEXEC):
        raise SystemExit(f"dock is still imported from {here}, not {ROOT}")
    print(f"note: this venv imports dock from {here}; re-running with PYTHONPATH={ROOT}")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, REEXEC: "1"}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606


def main() -> None:
    _use_this_checkout()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a 256 MiB recording instead of 2 GiB; under a minute"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    meter = CpuMeter()
    meter.start()
    time.sleep(2)
    background = meter.busy()
    if background > 0.25:
        print(f"warning: the machine is already {background:.0%} busy; figures will suffer")
    started = time.perf_counter()
    meter.start()  # from here on: the run's steal
    if "(tmpfs)" in _filesystem(Path(tempfile.gettempdir()).resolve()):
        raise SystemExit("the temporary folder is in memory (tmpfs); point TMPDIR at a disk")
    with tempfile.TemporaryDirectory(prefix="bwc_bench_dock_") as name:
        details = run(sizes, Path(name))
    results: dict[str, Any] = {
        "benchmark": "dock offload",
        "quick": args.quick,
        "command": "bench/dock_bench.py" + (" --quick" if args.quick else ""),
        "sizes": asdict(sizes),
        "machine": machine(),
        "code": {
            "imported_from": str(Path(dock.__file__).resolve().parents[1]),
            "pythonpath": os.environ.get("PYTHONPATH", ""),
        },
        "background_cpu_busy": background,
        "steal_during_run": meter.stolen(),
        "seconds": time.perf_counter() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["figures"] = figures(details)
    results["where_time_goes"] = where_time_goes(details)
    results["details"] = details
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
