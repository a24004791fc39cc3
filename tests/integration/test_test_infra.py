"""The test harness itself: private PostgreSQL databases, Redis, and no silent skips in CI."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import need_service


@pytest.mark.postgres
def test_pg_url_is_a_private_database_that_takes_tables(pg_admin_url: str, pg_url: str) -> None:
    assert make_url(pg_url).database != make_url(pg_admin_url).database
    assert make_url(pg_url).database.startswith("bwc_test_")  # type: ignore[union-attr]
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE harness_probe (id integer PRIMARY KEY)"))
            conn.execute(text("INSERT INTO harness_probe VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() == (
                make_url(pg_url).database
            )
            assert conn.execute(text("SELECT count(*) FROM harness_probe")).scalar_one() == 1
    finally:
        engine.dispose()


def test_need_service_fails_rather_than_skips_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Redis is required in CI: refused"):
        need_service("Redis", "refused")


def test_need_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need_service("Redis", "refused")


@pytest.mark.redis
def test_redis_url_answers_pong(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    with socket.create_connection((parts.hostname, parts.port or 6379), timeout=3) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(64) == b"+PONG\r\n"
