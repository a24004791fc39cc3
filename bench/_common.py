"""Shared benchmark plumbing: throwaway databases, percentiles, CPU use, machine facts."""

from __future__ import annotations

import math
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_ENV = "BWC_BENCH_PG_URL"
PG_ADMIN_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_PREFIX = "bwc_bench_"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_admin_url() -> str:
    return os.environ.get(PG_ADMIN_ENV, PG_ADMIN_DEFAULT)


def check_postgres() -> None:
    """Fail early, with the fix, when the server is not there."""
    try:
        with psycopg.connect(_libpq(pg_admin_url()), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        sys.exit(
            f"PostgreSQL is not reachable ({str(exc).splitlines()[0]}): start it with "
            f"`pg_ctlcluster 15 main start` or point {PG_ADMIN_ENV} at a server"
        )


@contextmanager
def throwaway_postgres(*, keep: bool = False) -> Iterator[str]:
    """A new, empty database of our own (bwc_bench_<random>), dropped afterwards unless
    `keep` (then its name is printed, for looking into query plans by hand)."""
    admin = pg_admin_url()
    name = PG_PREFIX + secrets.token_hex(6)
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept database {name}; drop it with: dropdb -h 127.0.0.1 -U postgres {name}")
        else:
            assert name.startswith(PG_PREFIX)  # never anything we did not create
            with psycopg.connect(_libpq(admin), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}.sqlite3"


def backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# --- Statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1): a value that was actually observed."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, max and mean of durations, in milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": percentile(seconds, 0.50) * 1e3,
        "p99_ms": percentile(seconds, 0.99) * 1e3,
        "max_ms": max(seconds) * 1e3,
        "mean_ms": sum(seconds) / len(seconds) * 1e3,
    }


@dataclass
class CpuMeter:
    """Whole-machine CPU use between start() and busy(): client, server and all else."""

    _busy: int = 0
    _total: int = 0
    _steal: int = 0

    @staticmethod
    def _read() -> tuple[int, int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        total = sum(fields[:8])  # guest time is already inside user time
        return total - idle, total, fields[7]

    def start(self) -> None:
        self._busy, self._total, self._steal = self._read()

    def busy(self) -> float:
        """Fraction of all cores busy since start(), 0..1 (steal included)."""
        busy, total, _ = self._read()
        return (busy - self._busy) / max(1, total - self._total)

    def stolen(self) -> float:
        """Fraction of all cores' time since start() that the hypervisor gave to other
        machines (steal), 0..1: a virtual machine's figures are slower by about that."""
        _, total, steal = self._read()
        return (steal - self._steal) / max(1, total - self._total)


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time so far of these processes (gone ones count as 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def pg_backend_pids(url: str) -> list[int]:
    """Server processes of everyone else connected to this (throwaway) database."""
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


# --- The machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            kib = int(handle.readline().split()[1])
        return round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(  # noqa: S603  (fixed git arguments)
            ["git", *args],  # noqa: S607  (git from PATH, as in a developer's shell)
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def machine_info(pg_url: str) -> dict[str, object]:
    import cryptography
    import sqlalchemy

    with psycopg.connect(_libpq(pg_url)) as conn:
        pg = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]  # type: ignore[index]
            for name in (
                "server_version",
                "fsync",
                "synchronous_commit",
                "wal_sync_method",
                "shared_buffers",
            )
        }
    import sqlite3

    changed = [line[3:] for line in _git("status", "--porcelain").splitlines()]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "cryptography": cryptography.__version__,
        "sqlite": sqlite3.sqlite_version,
        "sqlite_settings": "journal_mode=WAL, synchronous=FULL (app/db.py)",
        "postgresql": pg,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_uncommitted_product_files": sorted(
            p for p in changed if p.startswith(("app/", "audit/", "evidence/"))
        ),
    }
