"""Shared fixtures: databases (SQLite and PostgreSQL), Redis, Chromium, a live server.

With CI=true, a test that needs PostgreSQL, Redis or Chromium fails when the service is
missing; elsewhere it is skipped with the reason. `make test` provisions all three."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from moto.server import ThreadedMotoServer
from psycopg import sql
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_service(name: str, reason: str) -> None:
    """Skip locally, but fail in CI: a missing service must never pass silently there."""
    if in_ci():
        pytest.fail(f"{name} is required in CI: {reason}", pytrace=False)
    pytest.skip(f"{name} unavailable: {reason}")  # outside CI only; CI failed above


# --- PostgreSQL ----------------------------------------------------------------------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = os.environ.get("BWC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        need_service("PostgreSQL", str(exc).splitlines()[0])
    return url


class _PgDatabases:
    """Creates throwaway databases so that runs and tests never see each other's data."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def create(self) -> str:
        name = f"bwc_test_{secrets.token_hex(6)}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name and name.startswith("bwc_test_"), f"refusing to drop {name!r}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url: str) -> _PgDatabases:
    return _PgDatabases(pg_admin_url)


@pytest.fixture(scope="session")
def pg_url(pg_databases: _PgDatabases) -> Iterator[str]:
    """A PostgreSQL database of this run's own, shared by its tests, dropped at the end."""
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)


@pytest.fixture
def fresh_pg_url(pg_databases: _PgDatabases) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (migration tests start from empty)."""
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bwc.sqlite3"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


# --- Redis ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("BWC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), timeout=3
        ) as conn:
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
    except OSError as exc:
        need_service("Redis", str(exc))
    if not answer.startswith(b"+PONG"):
        need_service("Redis", f"unexpected answer to PING: {answer!r}")
    return url


# --- Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("BWC_TEST_CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        need_service("Chromium", "Debian's chromium is not installed (make test installs it)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(ignore_https_errors=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


# --- AWS (moto) -----------------------------------------------------------------------

AWS_REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no shared config: nothing here can reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_AWS_REGION", AWS_REGION)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto S3 server over loopback HTTP, shared by the session; each test makes its
    own bucket."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


# --- A live HTTP server --------------------------------------------------------------


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], str]]:
    """Serve a WSGI app on a free loopback port in a thread; returns its base URL."""
    servers: list[Any] = []

    def start(wsgi_app: Any) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)


# --- A run that executes nothing must not pass ----------------------------------------

# Tests whose body ran (passed, failed or xfailed); skips and deselections don't count.
_executed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _executed
    if report.when == "call" and (not report.skipped or hasattr(report, "wasxfail")):
        _executed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a run that collected nothing or skipped everything fails (pytest's own
    exit 5 covers only the first; a CI with every service missing would be all skips)."""
    if not in_ci() or session.config.option.collectonly or exitstatus != pytest.ExitCode.OK:
        return
    if _executed == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    quiet_run = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if in_ci() and quiet_run and not config.option.collectonly and _executed == 0:
        terminalreporter.write_sep("=", "CI=true: no test was executed; the run fails", red=True)
