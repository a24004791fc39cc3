"""The `bwc` command line as an operator uses it, including the gunicorn server."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app import cli
from tests.fast_hashing import fast_password_hashing  # noqa: F401


def run(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    sys.stdin = io.StringIO(stdin)
    try:
        code = cli.main(list(args))
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return code, out, err


def test_init_is_idempotent_and_keeps_secrets_private(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and "generated secret key" in out and "created" in out
    assert stat.S_IMODE((env / "secret_key").stat().st_mode) == 0o600
    secret = (env / "secret_key").read_text()
    code, out, _ = run(capsys, "init")
    assert code == 0 and "generated" not in out and "created" not in out
    assert (env / "secret_key").read_text() == secret


def test_users_and_schools_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "init")
    assert run(capsys, "schools", "add", "NHS", "North High")[0] == 0
    code, out, _ = run(
        capsys,
        "users",
        "add",
        "sam",
        "--role",
        "wearer",
        "--school",
        "NHS",
        "--badge",
        "SRO-7",
        "--password-stdin",
        stdin="a long password here\n",
    )
    assert code == 0 and "MFA enrolment at first sign-in" in out
    code, out, _ = run(
        capsys,
        "users",
        "add",
        "rec",
        "--role",
        "records",
        "--password-stdin",
        "--totp-secret",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        stdin="another long password\n",
    )
    assert code == 0
    code, out, _ = run(capsys, "users", "list")
    assert "sam\tmfa-pending\twearer@NHS" in out and "rec\tactive\trecords@district" in out
    assert run(capsys, "users", "disable", "sam")[0] == 0
    assert "sam\tdisabled" in run(capsys, "users", "list")[1]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("schools", "add", "bad code!", "X"), "", "school code"),
        (
            ("users", "add", "x1", "--role", "wearer", "--school", "NOPE", "--password-stdin"),
            "a long password here\n",
            "no school with code NOPE",
        ),
        (("users", "add", "x2", "--role", "records", "--password-stdin"), "short\n", "at least 12"),
        (("users", "add", "x3", "--role", "records"), "", "--password-stdin"),
        (("users", "disable", "ghost"), "", "no user named ghost"),
    ],
)
def test_failures_are_one_line_and_non_zero(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    run(capsys, "init")
    code, _, err = run(capsys, *args, stdin=stdin)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("bwc: error: ") and message in err


def test_commands_before_init_say_what_to_do(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "users", "list")
    assert code == 1 and "run `bwc init`" in err


def test_demo_seeds_once_and_prints_the_same_logins(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "init")
    code, first, _ = run(capsys, "demo")
    assert code == 0
    for role in ("wearer", "supervisor", "records", "oversight", "admin"):
        assert f"demo-{role}" in first
    assert stat.S_IMODE((env / "demo-logins.json").stat().st_mode) == 0o600
    assert run(capsys, "demo")[1] == first
    code, out, _ = run(capsys, "demo-code", "demo-admin")
    assert code == 0 and out.strip().isdigit() and len(out.strip()) == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_gunicorn_on_host_and_port(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "init")
    port = _free_port()
    environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "BWC_WEB_WORKERS": "1"}
    log = (env / "serve.log").open("w")
    server = subprocess.Popen(  # noqa: S603  (our own entry point, fixed arguments)
        [sys.executable, "-m", "app.cli", "serve"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as page:  # noqa: S310
                    body = page.read().decode()
                    server_header = page.headers.get("Server", "")
                break
            except OSError:
                assert server.poll() is None, (env / "serve.log").read_text()
                assert time.monotonic() < deadline, "server did not answer within 60 s"
                time.sleep(0.2)
        assert "Sign in" in body
        assert "gunicorn" in server_header
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_production_mode_refuses_to_serve_on_embedded_defaults(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BWC_PRODUCTION", "1")
    code, _, err = run(capsys, "serve")
    assert code == 1 and "refusing to run in production" in err
