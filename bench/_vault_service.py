"""The service under test for the vault ingest benchmark: a data dir made with the app's
own Python API, `bwc serve` (gunicorn) started on it, a moto S3 server, and what /proc
says about their memory and CPU.

Every process started here is stopped by the context manager that started it, also when
the benchmark fails half-way."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import requests

from app.accounts import admin as accounts
from app.db import Database, upgrade
from app.devices import create_dock, enrol_dock, register_camera
from app.settings import Settings
from app.vault import Vault, ensure_keyring
from audit.adapters.checkpoints_sql import create_signer_file
from evidence.crypto import keywrap
from evidence.roles import Grant, Role

CAMERA = "BWC-0001"
SUPERVISOR = "bench-supervisor"
PASSWORD = "bench password, never used elsewhere"  # noqa: S105  (a throwaway account)
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # moto only
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@dataclass(frozen=True)
class World:
    """A district with one school, its camera, an enrolled dock and a supervisor."""

    settings: Settings
    dock_credential: str
    ingest_version: str
    ingest_public: bytes
    totp_secret: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path, *, storage_url: str = "", s3_endpoint: str = "") -> World:
    """What `bwc init`, `bwc schools add`, `bwc cameras add`, `bwc docks add` and
    `bwc users add` would make, through the same functions, in a fresh data dir."""
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'bwc.sqlite3'}",
        storage_url=storage_url,
        secret_key=secrets.token_urlsafe(48),
        s3_endpoint_url=s3_endpoint,
        aws_region="us-east-1" if s3_endpoint else "",
    )
    now = datetime.now(UTC)
    data_dir.mkdir(parents=True, mode=0o700)
    create_signer_file(settings.ledger_key_file or data_dir / "k", settings.ledger_origin_prefix)
    ensure_keyring(settings, now)
    upgrade(settings.database_url)
    secret = pyotp.random_base32()
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            vault = Vault(settings)
            version, _ = vault.ensure_ingest_key(session, now)
            district = accounts.create_district(
                session,
                "bench",
                "Bench District",
                actor="cli",
                now=now,
                ledger_origin_prefix=settings.ledger_origin_prefix,
            )
            school = accounts.create_school(session, district, "NHS", "North", actor="cli", now=now)
            register_camera(
                session, district, school, CAMERA, profile="bwc-msc/1", actor="cli", now=now
            )
            _, token = create_dock(session, district, school, "bench-dock", actor="cli", now=now)
            _, credential = enrol_dock(session, token, now=now)
            accounts.create_user(
                session,
                district,
                username=SUPERVISOR,
                display_name="Bench Supervisor",
                password=PASSWORD,
                grants=[Grant(Role.SUPERVISOR, school.id)],
                actor="cli",
                now=now,
                totp_secret=secret,
            )
            _, public = vault.ingest_public_key(session)
    finally:
        database.dispose()
    return World(settings, credential, version, keywrap.decode_public_key(public), secret)


# --- Processes and /proc --------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Child pids of every thread of pid; a thread that ends while we look has none."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def status_kib(pid: int, field: str) -> int:
    """A `VmHWM`/`VmRSS`-style field of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} for {pid}")


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) so far of these processes, all their threads, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / ticks, system / ticks


@dataclass
class Server:
    base: str
    master: int
    log: Path

    def workers(self) -> list[int]:
        return children(self.master)

    def pids(self) -> list[int]:
        return [self.master, *self.workers()]

    def cpu(self) -> tuple[float, float]:
        """(utime, stime) of the master and its workers so far."""
        return cpu_times(self.pids())

    def rss_mib(self) -> dict[str, float]:
        """VmRSS now of the master and of each worker, in MiB."""
        now = {"master": status_kib(self.master, "VmRSS") / 1024}
        for n, pid in enumerate(sorted(self.workers()), start=1):
            now[f"worker {n}"] = status_kib(pid, "VmRSS") / 1024
        return now

    def peak_rss_mib(self) -> dict[str, float]:
        """VmHWM of the gunicorn master and of each worker, in MiB."""
        peaks = {"master": status_kib(self.master, "VmHWM") / 1024}
        for n, pid in enumerate(sorted(self.workers()), start=1):
            peaks[f"worker {n}"] = status_kib(pid, "VmHWM") / 1024
        return peaks


def service_env(world: World, port: int) -> dict[str, str]:
    """The environment of `bwc serve`: ours without any BWC_* setting, plus the world's."""
    s = world.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BWC_")},
        "BWC_DATA_DIR": str(s.data_dir),
        "BWC_DATABASE_URL": s.database_url,
        "BWC_SECRET_KEY": s.secret_key or "",
        "BWC_LOG_LEVEL": "INFO",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    if s.storage_url:
        env["BWC_STORAGE_URL"] = s.storage_url
    if s.s3_endpoint_url:
        env |= {"BWC_S3_ENDPOINT_URL": s.s3_endpoint_url, "BWC_AWS_REGION": "us-east-1"}
        env |= FAKE_AWS
    return env


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def serving(world: World, log: Path) -> Iterator[Server]:
    """`bwc serve` on a free port with the shipped defaults (BWC_WEB_WORKERS=2, gthread
    with 4 threads, the 1 s checkpointer); stdout and stderr go to log."""
    port = free_port()
    bwc = Path(sys.executable).with_name("bwc")
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603  (our own entry point)
            [str(bwc), "serve"], env=service_env(world, port), stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        # Every worker forked and answering, so their memory and CPU are there to read.
        while len(children(process.pid)) < world.settings.web_workers or not _answers(
            base + "/api/v1/health"
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the server did not start:\n{tail}")
            time.sleep(0.1)
        yield Server(base, process.pid, log)
    except BaseException:
        tail = log.read_text(errors="replace")[-4000:]
        print(f"--- the end of the server's log ({log.name}):\n{tail}", file=sys.stderr)
        raise
    finally:
        _stop(process, 30)


def log_errors(log: Path) -> list[str]:
    """Lines of a server log that report an error (tracebacks' last lines included)."""
    lines = log.read_text(errors="replace").splitlines()
    return [
        line
        for line in lines
        if " ERROR " in line or "[ERROR]" in line or line.startswith("Traceback")
    ]


@contextmanager
def sink_server(folder: Path, log: Path, workers: int = 2) -> Iterator[Server]:
    """gunicorn with the service's settings (app/server.py) serving _vault_sink_app."""
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [str(gunicorn), "--chdir", str(Path(__file__).parent), "-b", f"127.0.0.1:{port}"]
    args += ["-k", "gthread", "--threads", "4", "-w", str(workers), "--timeout", "120"]
    args += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(b)s']
    env = {**os.environ, "BWC_BENCH_SINK_DIR": str(folder)}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603  (our venv's gunicorn, fixed arguments)
            [*args, "_vault_sink_app:app"], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while len(children(process.pid)) < workers or not _answers(base + "/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sink did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
        yield Server(base, process.pid, log)
    finally:
        _stop(process, 30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


@dataclass
class Moto:
    endpoint: str
    pid: int


_MOTO = """
import logging, sys, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


@contextmanager
def moto_server(log: Path) -> Iterator[Moto]:
    """A ThreadedMotoServer in its own process (so it competes with neither the service
    nor the client for a GIL)."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603  (this interpreter, a fixed script)
            [sys.executable, "-c", _MOTO, str(port)],
            stdout=subprocess.PIPE,
            stderr=out,
            env={**os.environ, **FAKE_AWS},
        )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("moto did not start: " + log.read_text(errors="replace")[-2000:])
        yield Moto(f"http://127.0.0.1:{port}", process.pid)
    finally:
        _stop(process, 10)


def create_locked_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_boto(FAKE_AWS))
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)


def s3_get_seconds(endpoint: str, bucket: str, key: str) -> float:
    """One GetObject of the whole object, its body read in 8 MiB chunks and dropped, by
    a boto3 client made beforehand: what the service's read-back asks of the store."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_boto(FAKE_AWS))
    client.head_bucket(Bucket=bucket)
    started = time.perf_counter()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for _chunk in body.iter_chunks(8 * 1024 * 1024):
        pass
    return time.perf_counter() - started


def _boto(env: dict[str, str]) -> dict[str, Any]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def aws_cli(args: list[str], endpoint: str) -> float:
    """Run the machine's `aws` CLI against endpoint; its wall time in seconds."""
    env = {**os.environ, **FAKE_AWS, "AWS_DEFAULT_REGION": "us-east-1"}
    started = time.perf_counter()
    subprocess.run(  # noqa: S603  (fixed arguments)
        ["aws", *args, "--endpoint-url", endpoint],  # noqa: S607
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


# --- Signing in --------------------------------------------------------------------------


def _csrf(http: requests.Session, url: str) -> str:
    page = http.get(url, timeout=30)
    page.raise_for_status()
    match = _CSRF.search(page.text)
    if not match:
        raise RuntimeError(f"no CSRF token on {url}")
    return match.group(1)


def sign_in(base: str, world: World) -> requests.Session:
    """A keep-alive session signed in as the supervisor: password, then TOTP."""
    http = requests.Session()
    token = _csrf(http, base + "/login")
    first = http.post(
        base + "/login",
        data={"csrf_token": token, "username": SUPERVISOR, "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    if first.status_code != 302 or not first.headers["Location"].endswith("/login/code"):
        raise RuntimeError(f"password step failed: {first.status_code}")
    token = _csrf(http, base + "/login/code")
    code = pyotp.TOTP(world.totp_secret).now()
    done = http.post(
        base + "/login/code",
        data={"csrf_token": token, "code": code},
        allow_redirects=False,
        timeout=30,
    )
    if done.status_code != 302:
        raise RuntimeError(f"TOTP step failed: {done.status_code}")
    return http
