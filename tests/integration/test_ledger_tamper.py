"""Rewriting custody history: the database refuses it, and what bypasses the database is
caught by the self-audit (and `bwc ledger verify`), which names the first bad index."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import cli
from app.db import Database
from app.ledger import LedgerService
from app.settings import Settings
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import LedgerAlarm, create_signer_file
from audit.adapters.ledger_tables import LedgerLog
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType
from evidence.adapters.sql.org import District

from . import tampering
from .conftest import NOW

EVENTS = 20


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url=database.url, secret_key="k" * 40)
    assert settings.ledger_key_file is not None
    create_signer_file(settings.ledger_key_file, "bwc-evidence.local")
    return settings


@pytest.fixture
def ledger(
    database: Database, settings: Settings, district: District, session: Session
) -> tuple[LedgerService, int]:
    """A log with EVENTS more entries and a signed checkpoint over all of them."""
    service = LedgerService(database, settings)
    recorder = SqlEventRecorder(session)
    for i in range(EVENTS):
        recorder.record(
            AuditEvent(EventType.LOGIN_FAILED, NOW, district.id, details={"attempt": i})
        )
    session.commit()
    log_id = ledger_sql.log_of(session, district.id).id
    assert service.checkpoint(log_id) is not None
    assert service.audit(log_id).ok
    return service, log_id


def _size(session: Session, log_id: int) -> int:
    return ledger_sql.current_size(session, log_id)


# --- The database refuses changes ------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_leaves SET leaf = leaf || leaf",
        "DELETE FROM ledger_leaves",
        "UPDATE ledger_nodes SET hash = hash",
        "DELETE FROM ledger_checkpoints",
    ],
)
def test_updates_and_deletes_are_refused(
    ledger: tuple[LedgerService, int], database: Database, statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
        connection.exec_driver_sql(statement)


def test_replacing_a_leaf_is_refused(ledger: tuple[LedgerService, int], database: Database) -> None:
    _, log_id = ledger
    with database.engine.begin() as connection:
        dialect = connection.dialect.name
    replace = (
        "INSERT OR REPLACE INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, "
        "appended_at) VALUES (:log, 0, 'x', X'00', X'00', '2026-01-01 00:00:00')"
        if dialect == "sqlite"
        else "INSERT INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, appended_at) "
        "VALUES (:log, 0, 'x', '\\x00', '\\x00', now()) "
        "ON CONFLICT (log_id, idx) DO UPDATE SET leaf = EXCLUDED.leaf"
    )
    with pytest.raises(DBAPIError), database.engine.begin() as connection:
        connection.execute(text(replace), {"log": log_id})
    with database.sessions() as session:
        assert _size(session, log_id) == ledger_sql.leaf_count(session, log_id)


def test_an_index_other_than_the_next_is_refused(
    ledger: tuple[LedgerService, int], database: Database, session: Session
) -> None:
    _, log_id = ledger
    gap = _size(session, log_id) + 5
    with (
        pytest.raises(DBAPIError, match="previous index plus one"),
        database.engine.begin() as connection,
    ):
        connection.execute(
            text(
                "INSERT INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, "
                "appended_at) VALUES (:log, :idx, :ev, :leaf, :leaf, :at)"
            ),
            {"log": log_id, "idx": gap, "ev": str(uuid.uuid4()), "leaf": b"x", "at": NOW},
        )


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_truncate_is_refused_on_postgresql(
    ledger: tuple[LedgerService, int], database: Database
) -> None:
    for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints"):
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {table} CASCADE")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_app_role_may_only_read_and_append(
    ledger: tuple[LedgerService, int], database: Database
) -> None:
    url = make_url(database.url)
    login = f"bwc_app_test_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN IN ROLE bwc_app")
    try:
        as_app = url.set(drivername="postgresql", username=login).render_as_string(
            hide_password=False
        )
        with psycopg.connect(as_app, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM ledger_leaves").fetchone()[0] > 0
            for statement in (
                "UPDATE ledger_leaves SET leaf = leaf",
                "DELETE FROM ledger_nodes",
                "TRUNCATE ledger_checkpoints",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {login}")
            conn.execute(f"DROP ROLE {login}")


# --- What bypasses the database is detected ---------------------------------------------


def _detected(service: LedgerService, log_id: int) -> tuple[str, int | None]:
    result = service.audit(log_id)
    assert not result.ok, "tampering went unnoticed"
    return result.message, result.first_bad_index


def test_edited_leaf_is_named(ledger: tuple[LedgerService, int], database: Database) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.rewrite_leaf(connection, log_id, 7, b'{"forged":true}', fix_hashes=False)
    message, index = _detected(service, log_id)
    assert index == 7 and "leaf 7" in message


def test_carefully_edited_leaf_is_caught_by_the_signed_root(
    ledger: tuple[LedgerService, int], database: Database
) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.rewrite_leaf(connection, log_id, 7, b'{"forged":true}', fix_hashes=True)
    message, index = _detected(service, log_id)
    assert index is not None and index <= 7


def test_deleted_leaf_is_named(ledger: tuple[LedgerService, int], database: Database) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.delete_leaf(connection, log_id, 4)
    message, index = _detected(service, log_id)
    assert index == 4 and "missing" in message


def test_reordered_leaves_are_caught(ledger: tuple[LedgerService, int], database: Database) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.swap_leaves(connection, log_id, 2, 3)
    _, index = _detected(service, log_id)
    assert index is not None and index <= 2


def test_inserted_leaf_is_caught(ledger: tuple[LedgerService, int], database: Database) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.insert_leaf(connection, log_id, 5, b'{"forged":true}')
    _, index = _detected(service, log_id)
    assert index is not None and index <= 5


def test_rolled_back_database_is_caught_by_the_checkpoint_mirror(
    ledger: tuple[LedgerService, int], database: Database, session: Session, district: District
) -> None:
    service, log_id = ledger
    old = session.get(LedgerLog, log_id, populate_existing=True)
    assert old is not None
    old_size, old_frontier = old.size, old.frontier
    SqlEventRecorder(session).record(AuditEvent(EventType.LOGOUT, NOW, district.id))
    session.commit()
    assert service.checkpoint(log_id) == old_size + 1
    with database.engine.begin() as connection:
        tampering.roll_back_to(connection, log_id, old_size, old_frontier)
    message, _ = _detected(service, log_id)
    assert "rolled back" in message


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_file_restored_from_a_copy_is_caught(
    ledger: tuple[LedgerService, int],
    database: Database,
    session: Session,
    district: District,
    settings: Settings,
) -> None:
    service, log_id = ledger
    path = Path(database.url.removeprefix("sqlite:///"))
    session.close()
    database.dispose()  # a consistent file copy: every connection closed (WAL folded in)
    backup = path.with_suffix(".backup")
    shutil.copy(path, backup)
    with database.transaction() as s:
        SqlEventRecorder(s).record(AuditEvent(EventType.LOGOUT, NOW, district.id))
    assert service.checkpoint(log_id) is not None
    database.dispose()
    shutil.copy(backup, path)  # the operator restores yesterday's backup
    restored = Database(database.url)
    try:
        result = LedgerService(restored, settings).audit(log_id)
    finally:
        restored.dispose()
    assert not result.ok and "rolled back" in result.message


def test_alarm_stops_new_checkpoints(
    ledger: tuple[LedgerService, int], database: Database, session: Session, district: District
) -> None:
    service, log_id = ledger
    with database.engine.begin() as connection:
        tampering.delete_leaf(connection, log_id, 1)
    _detected(service, log_id)
    with pytest.raises(LedgerAlarm, match="alarm"):
        with database.transaction() as s:
            from audit.adapters.checkpoints_sql import issue_checkpoint

            issue_checkpoint(s, log_id, service.signer)


def test_bwc_ledger_verify_exits_non_zero_on_tampering(
    ledger: tuple[LedgerService, int],
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, log_id = ledger
    monkeypatch.setenv("BWC_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BWC_DATABASE_URL", database.url)
    assert cli.main(["ledger", "verify"]) == 0
    assert ": ok:" in capsys.readouterr().out
    with database.engine.begin() as connection:
        tampering.rewrite_leaf(
            connection, log_id, 3, json.dumps({"v": 1}).encode(), fix_hashes=False
        )
    assert cli.main(["ledger", "verify"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED" in out and "first bad index 3" in out
    assert err.startswith("bwc: error: custody ledger verification failed")
