"""The dock benchmark's service and agent: a data dir made with the `bwc` CLI, a dock
enrolled with `bwc-dock enroll`, and `bwc-dock run --once` timed as a subprocess while a
sampler thread watches it (memory, CPU, disk reads, the spool folder) and stamps the
server's access-log lines as they appear, so a docking can be split into its phases.

The server itself is `bwc serve` under the vault benchmark's `serving()`; every process
started here is waited for or killed before these functions return."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _dock_volume import storage_read_bytes
from _vault_service import Server, World, cpu_times, service_env, status_kib
from sqlalchemy import select

from app.db import Database
from app.settings import Settings
from evidence.adapters.sql.items import EvidenceItem

BIN = Path(sys.executable).parent
SCHOOL = ("NHS", "North")
DOCK_NAME = "bench-dock"
SAMPLE_SECONDS = 0.02
_ACCESS = re.compile(
    r'^\S+ "(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}) \S+ (?P<s>[\d.]+)s$'
)


def world_for(data_dir: Path) -> World:
    """The settings `bwc` and `bwc serve` run with (local store, SQLite) as the vault
    benchmark's World; its dock fields stay empty: the dock here enrols for itself."""
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'bwc.sqlite3'}",
        secret_key=secrets.token_urlsafe(48),
    )
    return World(settings, "", "", b"", "")


def bwc(world: World, *args: str) -> str:
    """Run `bwc ARGS` with the service's environment; its stdout."""
    done = subprocess.run(  # noqa: S603  (our own entry point, fixed arguments)
        [str(BIN / "bwc"), *args],
        env=service_env(world, 5000),  # the CLI never listens
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bwc {' '.join(args)} failed: {done.stderr.strip()[-1000:]}")
    return done.stdout


def set_up_service(world: World, serials: list[str]) -> str:
    """`bwc init`, a school, the cameras and a dock; the dock's one-time token."""
    world.settings.data_dir.mkdir(parents=True, mode=0o700)
    bwc(world, "init", "--district-code", "bench", "--district-name", "Bench District")
    bwc(world, "schools", "add", *SCHOOL)
    for serial in serials:
        bwc(world, "cameras", "add", serial, "--profile", "bwc-msc/1", "--school", SCHOOL[0])
    printed = bwc(world, "docks", "add", DOCK_NAME, "--school", SCHOOL[0])
    return printed.strip().splitlines()[-1]


def agent_env(state_dir: Path) -> dict[str, str]:
    """Ours without any BWC_* setting, plus the dock's state dir: every other dock setting
    at its default (2 concurrent uploads, 16 MiB PATCHes, no bandwidth limit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    return env | {"BWC_DOCK_STATE_DIR": str(state_dir)}


def enrol(base: str, token: str, state_dir: Path) -> None:
    done = subprocess.run(  # noqa: S603  (our own entry point, fixed arguments)
        [str(BIN / "bwc-dock"), "enroll", "--service", base, "--token", token],
        env=agent_env(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bwc-dock enroll failed: {done.stderr.strip()[-1000:]}")


# --- Watching a docking ------------------------------------------------------------------


@dataclass
class Access:
    """One access-log line: when the sampler saw it (≈ the response's end) and its
    request time, both seconds from the agent's start."""

    end: float
    method: str
    path: str
    status: int
    seconds: float

    @property
    def start(self) -> float:
        return self.end - self.seconds


@dataclass
class SpoolFile:
    first_seen: float
    last_growth: float
    size: int


@dataclass
class Sample:
    t: float
    rss_kib: int
    hwm_kib: int
    agent_cpu: float
    server_cpu: float
    agent_read_bytes: int
    recording_present: bool


@dataclass
class Watch:
    samples: list[Sample] = field(default_factory=list)
    access: list[Access] = field(default_factory=list)
    spool: dict[str, SpoolFile] = field(default_factory=dict)


class _Sampler(threading.Thread):
    def __init__(
        self, pid: int, t0: float, server: Server, spool: Path, recording: Path | None
    ) -> None:
        super().__init__(daemon=True, name="dock-sampler")
        self.pid, self.t0, self.server = pid, t0, server
        self.spool_dir, self.recording = spool, recording
        self.watch = Watch()
        self.stop = threading.Event()
        self._log = server.log.open("rb")
        self._log.seek(0, os.SEEK_END)
        self._pending = b""

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.tick()
                self.stop.wait(SAMPLE_SECONDS)
            self.tick()
        finally:
            self._log.close()

    def tick(self) -> None:
        t = time.perf_counter() - self.t0
        self._read_log(t)
        self._read_spool(t)
        try:
            rss, hwm = status_kib(self.pid, "VmRSS"), status_kib(self.pid, "VmHWM")
            cpu = sum(cpu_times([self.pid]))
            fetched = storage_read_bytes(self.pid)
        except (OSError, LookupError):
            return  # exited (a zombie has no memory lines) or reaped
        present = self.recording.exists() if self.recording else False
        server = sum(self.server.cpu())
        self.watch.samples.append(Sample(t, rss, hwm, cpu, server, fetched, present))

    def _read_log(self, t: float) -> None:
        self._pending += self._log.read()
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            match = _ACCESS.match(raw.decode("utf-8", "replace").strip())
            if match:
                self.watch.access.append(
                    Access(
                        t,
                        match["method"],
                        match["path"],
                        int(match["status"]),
                        float(match["s"]),
                    )
                )

    def _read_spool(self, t: float) -> None:
        try:
            listing = list(os.scandir(self.spool_dir))
        except FileNotFoundError:
            return
        for entry in listing:
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            seen = self.watch.spool.get(entry.name)
            if seen is None:
                self.watch.spool[entry.name] = SpoolFile(t, t, size)
            elif size != seen.size:
                seen.size, seen.last_growth = size, t


@dataclass
class Run:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    maxrss_kib: int  # wait4's ru_maxrss of the agent (at least the launcher's few MiB)
    user_s: float
    system_s: float
    watch: Watch


# Spawned from this process, a child's ru_maxrss would start at this process's own peak:
# Linux keeps the high-water mark of the address space an exec replaces (and a vfork
# child runs in ours). So a launcher of a few MiB forks the agent from itself, times it
# on the same monotonic clock as perf_counter here, and reports wait4's rusage of it.
_LAUNCHER = """
import json, os, sys, time
out, err, *args = sys.argv[1:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
    os.execv(args[0], args)
print(pid, started, flush=True)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "returncode": os.waitstatus_to_exitcode(status),
    "maxrss_kib": usage.ru_maxrss,
    "user_s": usage.ru_utime,
    "system_s": usage.ru_stime,
}), flush=True)
"""


def dock_once(
    usb: Path,
    state_dir: Path,
    reports: Path,
    server: Server,
    logs: Path,
    *,
    recording: Path | None = None,
    timeout: float = 300.0,
) -> Run:
    """Time `bwc-dock run --once --simulated-usb usb` from fork to exit, watched."""
    args = [str(BIN / "bwc-dock"), "run", "--once", "--simulated-usb", str(usb)]
    args += ["--report-dir", str(reports)]
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    launcher = subprocess.Popen(  # noqa: S603  (this interpreter, a fixed script)
        [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(out), str(err), *args],
        env=agent_env(state_dir),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    pid = 0
    try:
        pid_text, t0_text = launcher.stdout.readline().split()
        pid = int(pid_text)
        sampler = _Sampler(pid, float(t0_text), server, state_dir / "spool", recording)
        sampler.start()
        killer = threading.Timer(timeout, os.kill, (pid, signal.SIGKILL))
        killer.start()
        try:
            usage = json.loads(launcher.stdout.readline())
        finally:
            killer.cancel()
            sampler.stop.set()
            sampler.join()
        launcher.wait(timeout=30)
    except BaseException:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.kill()
        launcher.wait()
        raise
    return Run(
        returncode=usage["returncode"],
        seconds=usage["seconds"],
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
        maxrss_kib=usage["maxrss_kib"],
        user_s=usage["user_s"],
        system_s=usage["system_s"],
        watch=sampler.watch,
    )


def import_rss() -> dict[str, Any]:
    """Peak RSS (MiB) and seconds of a fresh interpreter importing what `bwc-dock run`
    imports before it docks anything (`dock.__main__` and its parser), and which of the
    simulator's media libraries (PyAV, numpy, scikit-image, SciPy) that pulled in."""
    # VmHWM, not ru_maxrss: the latter would start at this (large) process's peak.
    probe = (
        "import sys, time; t = time.perf_counter(); "
        "import dock.__main__ as m; m.build_parser(); s = time.perf_counter() - t; "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]; "
        "heavy = [n for n in ('av', 'numpy', 'skimage', 'scipy') if n in sys.modules]; "
        "print(s, hwm.split()[1], m.__file__, ','.join(heavy) or '-')"
    )
    runs = [
        subprocess.run(  # noqa: S603  (this interpreter, a fixed script)
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
        for _ in range(2)  # the second with the modules' files in the page cache
    ]
    _, kib, where, heavy = runs[-1]
    return {
        "seconds": min(float(run[0]) for run in runs),
        "peak_rss_mib": int(kib) / 1024,
        "module": where,
        "media_libraries": [] if heavy == "-" else heavy.split(","),
    }


def service_item(world: World, sha256: str) -> dict[str, Any] | None:
    """The evidence item the service holds with this plaintext SHA-256, if any."""
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            item = session.scalars(
                select(EvidenceItem).where(EvidenceItem.sha256 == sha256)
            ).first()
            if item is None:
                return None
            return {
                "evidence_id": item.id,
                "status": item.status,
                "size": item.size,
                "sha256": item.sha256,
                "file_name": item.file_name,
                "clock_offset_ms": item.clock_offset_ms,
                "flags": list(item.flags or []),
            }
    finally:
        database.dispose()


def fixity(world: World, evidence_id: str) -> str:
    """`bwc evidence verify ID`: the service reads the stored object back, decrypts it and
    re-hashes the plaintext; its last line."""
    return bwc(world, "evidence", "verify", evidence_id).strip().splitlines()[-1]
