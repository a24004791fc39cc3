"""Database engine and sessions, and the migration runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from audit.adapters import append_only
from evidence.errors import NotFound

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; FULL makes a commit durable
    # before it returns; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # The database holds password hashes and personal data: owner-only from
            # the start (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No JIT: the app's queries are short, and PostgreSQL's JIT, which starts above a
    # planner cost that list queries over a large district pass, spent 70 ms compiling
    # to save a few (measured on the 1,000,000-item benchmark database).
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c jit=off"})


class Database:
    """An engine and its session factory; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to revision. The only way the schema is created outside tests."""
    command.upgrade(alembic_config(url), revision)
    if url.startswith("postgresql"):
        # Tables added by later migrations get the application role's grants too.
        engine = make_engine(url)
        try:
            with engine.begin() as connection:
                for statement in append_only.postgresql_grants():
                    connection.exec_driver_sql(statement)
        finally:
            engine.dispose()


def schema_is_current(engine: Engine) -> bool:
    """True when the database is migrated to the newest revision this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == head


T = TypeVar("T")


def must_get(session: Session, model: type[T], key: object, *, fresh: bool = False) -> T:
    """The row with primary key `key` (re-read when fresh); NotFound when it vanished."""
    row = session.get(model, key, populate_existing=fresh)
    if row is None:
        raise NotFound(f"{getattr(model, '__tablename__', model.__name__)} {key} not found")
    return row
