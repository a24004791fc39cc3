"""Vault ingest and read benchmarks through the real server (`bwc serve`, gunicorn):
tus uploads to a verified receipt on the local store and on S3 (moto), ranged reads,
and the service's peak memory and CPU, beside raw limits measured in the same run.

Usage: .venv/bin/python bench/vault_ingest_bench.py [--quick]

Writes bench/results/vault_ingest.json and the table between the vault-ingest markers in
bench/README.md. The raw limits are one-core hashlib SHA-256 and AES-256-GCM, one TCP
stream and one HTTP stream (requests, as the tus client) over 127.0.0.1 into a receiver
process, and write+fsync on the data dir's disk. The service runs with SQLite and its
shipped defaults in a fresh data dir under a temporary folder on disk, removed at the
end with everything else; the server and moto processes are stopped whatever happens."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from _common import ROOT, CpuMeter, _cpu_model, _git, _memory_gib, percentile
from _vault_figures import figures
from _vault_raw import (
    aesgcm_rates,
    disk_write_fsync,
    http_loopback,
    random_pool,
    sha256_rate,
    tcp_loopback,
)
from _vault_report import render, where_time_goes, write_readme
from _vault_service import (
    World,
    aws_cli,
    create_locked_bucket,
    log_errors,
    moto_server,
    prepare,
    s3_get_seconds,
    serving,
    sink_server,
    status_kib,
)
from _vault_tus import PATCH_BYTES, Sealed, push, read_latency, seal, upload

RESULTS = ROOT / "bench" / "results" / "vault_ingest.json"
MiB = 1024 * 1024
BUCKET = "bench-evidence"
CLI_AT_ONCE = 10  # files `aws s3 cp --recursive` sends at once (max_concurrent_requests)


@dataclass(frozen=True)
class Sizes:
    raw_bytes: int  # per raw throughput figure
    large: int  # the one large file, local store
    small_count: int  # 10 MiB files, local store
    s3_large: int
    s3_small_count: int
    read_samples: int
    small: int = 10 * MiB


FULL = Sizes(1024 * MiB, 2048 * MiB, 200, 2048 * MiB, 200, 300)
QUICK = Sizes(256 * MiB, 256 * MiB, 20, 64 * MiB, 5, 100)


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def raw_limits(pool: bytes, sizes: Sizes, folder: Path) -> dict[str, Any]:
    total = sizes.raw_bytes
    _step(
        f"raw limits: SHA-256, AES-256-GCM, loopback TCP and HTTP ({total >> 20} MiB), "
        f"disk ({sizes.large >> 20} MiB)"
    )
    return {
        "sha256_before": sha256_rate(pool, total),
        "aesgcm": aesgcm_rates(pool, total, 300),
        "tcp_loopback": tcp_loopback(pool, total),
        "http_loopback": http_loopback(pool, total, PATCH_BYTES),
        # At the large file's size: writeback throttling sets in only after a while.
        "disk_before": disk_write_fsync(folder, pool, sizes.large, PATCH_BYTES),
    }


def _upload_record(up: Any, sealed: Sealed) -> dict[str, Any]:
    record = asdict(up)
    record.pop("receipt")
    record |= {
        "plaintext_bytes": sealed.plaintext_size,
        "ciphertext_bytes": sealed.ciphertext_size,
        "MB_per_s": sealed.plaintext_size / up.seconds / 1e6,
        "dock_seal_s": sealed.seconds,
        "dock_seal_MB_per_s": sealed.plaintext_size / sealed.seconds / 1e6,
        "leaf_index": up.receipt["leaf_index"],
    }
    return record


def _series(
    http: requests.Session, server: Any, world: World, sealed: list[Sealed], *, keep: bool = False
) -> Any:
    """Upload sealed files one after another (removing each unless keep); the totals."""
    cpu0, started = server.cpu(), time.perf_counter()
    meter = CpuMeter()
    meter.start()
    ups = []
    for one in sealed:
        ups.append(upload(http, server.base, world, one))
        if not keep:
            one.path.unlink()
    seconds = time.perf_counter() - started
    plain = sum(s.plaintext_size for s in sealed)
    per_file = [u.seconds for u in ups]
    return {
        "files": len(sealed),
        "plaintext_bytes": plain,
        "seconds": seconds,
        "MB_per_s": plain / seconds / 1e6,
        "per_file_s": {
            "p50": percentile(per_file, 0.5),
            "p95": percentile(per_file, 0.95),
            "max": max(per_file),
        },
        "per_file_phases_ms_mean": {
            "post": statistics.fmean(u.post_s for u in ups) * 1e3,
            "patch": statistics.fmean(sum(u.patch_s) for u in ups) * 1e3,
            "receipt": statistics.fmean(u.receipt_s for u in ups) * 1e3,
            "client_gap": statistics.fmean(u.client_gap_s for u in ups) * 1e3,
        },
        "receipt_retries": sum(u.receipt_retries for u in ups),
        "dock_seal_s": sum(s.seconds for s in sealed),
        "service_cpu": [b - a for a, b in zip(cpu0, server.cpu(), strict=True)],
        "client_cpu_s": sum(u.client_cpu_s for u in ups),
        "machine_busy": meter.busy(),
    }


def _parallel(server: Any, world: World, sealed: list[Sealed], at_once: int) -> Any:
    """Upload sealed files `at_once` at a time, each on its own connection (as the CLI
    sends a folder); the totals."""
    cpu0, started = server.cpu(), time.perf_counter()

    def one(item: Sealed) -> Any:
        with requests.Session() as http:
            return upload(http, server.base, world, item)

    with ThreadPoolExecutor(at_once) as pool:
        ups = list(pool.map(one, sealed))
    seconds = time.perf_counter() - started
    plain = sum(s.plaintext_size for s in sealed)
    return {
        "files": len(sealed),
        "at_once": at_once,
        "plaintext_bytes": plain,
        "seconds": seconds,
        "MB_per_s": plain / seconds / 1e6,
        "receipt_retries": sum(u.receipt_retries for u in ups),
        "service_cpu": [b - a for a, b in zip(cpu0, server.cpu(), strict=True)],
    }


def _large(http: requests.Session, server: Any, world: World, sealed: Sealed) -> dict[str, Any]:
    meter = CpuMeter()
    meter.start()
    up = upload(http, server.base, world, sealed, server.cpu)
    return _upload_record(up, sealed) | {"machine_busy": meter.busy()}


def _seal_many(world: World, folder: Path, prefix: str, count: int, size: int) -> list[Sealed]:
    return [seal(world, folder, f"{prefix}{n:05d}", size) for n in range(count)]


def stack_sink(sealed: Sealed, tmp: Path) -> dict[str, Any]:
    """The upload's bytes through the service's stack doing only the per-byte work."""
    folder = tmp / "sink"
    folder.mkdir()
    with sink_server(folder, tmp / "sink.log") as sink, requests.Session() as http:
        cpu0 = sink.cpu()
        seconds = push(http, f"{sink.base}/sink/big", sealed)
        cpu = [b - a for a, b in zip(cpu0, sink.cpu(), strict=True)]
    (folder / "big").unlink()
    os.sync()  # its writeback must not overlap the service's upload
    return {
        "bytes": sealed.ciphertext_size,
        "seconds": seconds,
        "MB_per_s": sealed.ciphertext_size / seconds / 1e6,
        "cpu": cpu,
    }


def local_phase(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"store": "file:// (LocalObjectStore) in the data dir"}
    world = prepare(tmp / "local-data")
    sealed_dir = tmp / "sealed-local"
    sealed_dir.mkdir()
    _step(f"local: sealing {sizes.large >> 20} MiB (dock side)")
    big = seal(world, sealed_dir, "big00001", sizes.large)
    _step("local: the same bytes to a plain gunicorn + Flask sink (read, SHA-256, write, fsync)")
    out["sink"] = stack_sink(big, tmp)
    with serving(world, tmp / "local-server.log") as server, requests.Session() as http:
        out["service_rss_start_mib"] = {
            "VmHWM": server.peak_rss_mib(),
            "VmRSS": server.rss_mib(),
        }
        _step(f"local: tus upload of {sizes.large >> 20} MiB to a verified receipt")
        out["large"] = _large(http, server, world, big)
        big.path.unlink()
        out["peak_rss_after_large_mib"] = server.peak_rss_mib()
        _step(f"local: sealing {sizes.small_count} × 10 MiB (dock side)")
        small = _seal_many(world, sealed_dir, "clip", sizes.small_count, sizes.small)
        _step(f"local: {sizes.small_count} × 10 MiB uploads, one after another")
        out["small"] = _series(http, server, world, small)
        out["peak_rss_mib"] = server.peak_rss_mib()
        out["workers"] = len(server.workers())
        _step(f"local: {sizes.read_samples} ranged 1 MiB reads of the large item")
        item = out["large"]["evidence_id"]
        obj = world.settings.data_dir / "objects" / "originals" / f"{item}.obj"
        out["reads"] = read_latency(server, world, item, big, sizes.read_samples, obj)
        out["peak_rss_after_reads_mib"] = server.peak_rss_mib()
    out["server_log_errors"] = log_errors(tmp / "local-server.log")[:20]
    return out


def s3_phase(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"store": f"s3://{BUCKET}/bwc on moto ThreadedMotoServer"}
    with moto_server(tmp / "moto.log") as moto:
        create_locked_bucket(moto.endpoint, BUCKET)
        world = prepare(
            tmp / "s3-data", storage_url=f"s3://{BUCKET}/bwc", s3_endpoint=moto.endpoint
        )
        sealed_dir, small_dir = tmp / "sealed-s3", tmp / "sealed-s3-small"
        sealed_dir.mkdir()
        small_dir.mkdir()
        _step(f"S3: sealing {sizes.s3_large >> 20} MiB and {sizes.s3_small_count} × 10 MiB")
        big = seal(world, sealed_dir, "s3big0001", sizes.s3_large)
        small = _seal_many(world, small_dir, "s3clip", sizes.s3_small_count, sizes.small)
        parallel_dir = tmp / "sealed-s3-parallel"
        parallel_dir.mkdir()
        parallel = _seal_many(
            world, parallel_dir, "s3par", sizes.s3_small_count, sizes.small
        )  # other files: the same ones again would be answered as duplicates
        aws = ["s3", "cp", "--only-show-errors"]
        startup = aws_cli(["s3api", "head-bucket", "--bucket", BUCKET], moto.endpoint)
        _step("S3: aws s3 cp of the same ciphertext (before)")
        base_large = [aws_cli([*aws, str(big.path), f"s3://{BUCKET}/cp/a/big"], moto.endpoint)]
        base_small = [
            aws_cli(
                [*aws, str(small_dir), f"s3://{BUCKET}/cp/a/small/", "--recursive"], moto.endpoint
            )
        ]
        with serving(world, tmp / "s3-server.log") as server, requests.Session() as http:
            _step(f"S3: tus upload of {sizes.s3_large >> 20} MiB to a verified receipt")
            out["large"] = _large(http, server, world, big)
            _step(f"S3: {sizes.s3_small_count} × 10 MiB uploads, one after another")
            out["small"] = _series(http, server, world, small, keep=True)
            _step(f"S3: {sizes.s3_small_count} other × 10 MiB uploads, {CLI_AT_ONCE} at a time")
            out["small_parallel"] = _parallel(server, world, parallel, CLI_AT_ONCE)
            out["peak_rss_mib"] = server.peak_rss_mib()
        out["server_log_errors"] = log_errors(tmp / "s3-server.log")[:20]
        _step("S3: aws s3 cp of the same ciphertext (after)")
        base_large.append(aws_cli([*aws, str(big.path), f"s3://{BUCKET}/cp/b/big"], moto.endpoint))
        base_small.append(
            aws_cli(
                [*aws, str(small_dir), f"s3://{BUCKET}/cp/b/small/", "--recursive"], moto.endpoint
            )
        )
        get = s3_get_seconds(moto.endpoint, BUCKET, "cp/a/big")
        out["aws_cli"] = {
            "startup_s": startup,
            "boto3_get_large_s": get,
            "large_s": base_large,
            "small_recursive_s": base_small,
            "large_bytes": big.ciphertext_size,
            "small_bytes": sum(s.ciphertext_size for s in small),
        }
        out["moto_peak_rss_mib"] = status_kib(moto.pid, "VmHWM") / 1024
    return out


def machine() -> dict[str, Any]:
    import sqlite3

    import cryptography
    import gunicorn
    import moto
    from cryptography.hazmat.backends.openssl.backend import backend

    changed = [line[3:] for line in _git("status", "--porcelain").splitlines()]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "gunicorn": gunicorn.__version__,
        "moto": moto.__version__,
        "sqlite": sqlite3.sqlite_version,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_uncommitted_product_files": sorted(
            p for p in changed if p.startswith(("app/", "audit/", "evidence/"))
        ),
    }


def _filesystem(folder: Path) -> str:
    best = ("", "?", "?")
    with open("/proc/mounts", encoding="utf-8") as handle:
        for line in handle:
            device, point, kind = line.split()[:3]
            inside = str(folder).startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best[0]):
                best = (point, device, kind)
    return f"{best[1]} ({best[2]}) on {best[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="256 MiB large file, 20 small files, 64 MiB on S3, 100 reads; under a minute",
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
        sys.exit("the temporary folder is in memory (tmpfs); point TMPDIR at a disk")
    with tempfile.TemporaryDirectory(prefix="bwc_bench_") as name:
        tmp = Path(name)
        pool = random_pool()
        details: dict[str, Any] = {"raw": raw_limits(pool, sizes, tmp)}
        details["local"] = local_phase(sizes, tmp)
        details["s3"] = s3_phase(sizes, tmp)
        _step("raw SHA-256 and disk again")
        details["raw"]["sha256_after"] = sha256_rate(pool, sizes.raw_bytes)
        details["raw"]["disk_after"] = disk_write_fsync(tmp, pool, sizes.large, PATCH_BYTES)
        details["data_dir_filesystem"] = _filesystem(tmp)
    results = {
        "benchmark": "vault ingest and reads",
        "quick": args.quick,
        "command": "bench/vault_ingest_bench.py" + (" --quick" if args.quick else ""),
        "sizes": asdict(sizes),
        "patch_bytes": PATCH_BYTES,
        "machine": machine(),
        "background_cpu_busy": background,
        "steal_during_run": meter.stolen(),
        "seconds": time.perf_counter() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["figures"] = figures(details)
    results["where_time_goes"] = where_time_goes(details, PATCH_BYTES)
    results["details"] = details
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
