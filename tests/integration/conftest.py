"""Fixtures for tests against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.accounts import admin as accounts
from app.db import Database, upgrade
from app.ledger import LedgerService
from app.settings import Settings
from audit.adapters.checkpoints_sql import create_signer_file
from evidence.adapters.sql.org import District, School
from tests.fast_hashing import fast_password_hashing  # noqa: F401

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A migrated database, on SQLite and on PostgreSQL (the db_url parameter)."""
    upgrade(db_url)
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.sessions() as s:
        yield s
        s.rollback()


@pytest.fixture
def district(session: Session) -> District:
    district = accounts.create_district(session, "d1", "First District", actor="cli", now=NOW)
    session.commit()
    return district


@pytest.fixture
def schools(session: Session, district: District) -> tuple[School, School]:
    north = accounts.create_school(session, district, "NHS", "North High", actor="cli", now=NOW)
    south = accounts.create_school(session, district, "SMS", "South Middle", actor="cli", now=NOW)
    session.commit()
    return north, south


def ledger_service(database: Database, tmp_path: Path, **changes: object) -> LedgerService:
    """A ledger service with its own signing key in tmp_path; changes go to Settings."""
    settings = Settings(
        data_dir=tmp_path, database_url=database.url, secret_key="k" * 40, **changes
    )  # type: ignore[arg-type]
    assert settings.ledger_key_file is not None
    create_signer_file(settings.ledger_key_file, "bwc-evidence.local")
    return LedgerService(database, settings)
