"""Migrations create the schema on SQLite and PostgreSQL, exactly as the models describe it."""

from __future__ import annotations

import warnings
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, inspect, make_url

import app.models  # noqa: F401  (registers every table)
from app.db import Database, alembic_config, make_engine, schema_is_current, upgrade
from evidence.adapters.sql.base import metadata


def _diff(url: str) -> list[object]:
    engine = make_engine(url)

    def included(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        """Not an index the models create on another database only (`ddl_if`), which
        autogenerate does not know of."""
        only = getattr(obj, "_ddl_if", None) if kind == "index" else None
        return only is None or only.dialect in (None, engine.dialect.name)

    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": included}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrations_and_models_agree(db_url: str) -> None:
    upgrade(db_url)
    assert _diff(db_url) == []


def test_schema_check_tells_an_unmigrated_database_from_a_migrated_one(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert not schema_is_current(db.engine)
        upgrade(db_url)
        assert schema_is_current(db.engine)
    finally:
        db.dispose()


def test_migrations_downgrade_to_nothing_and_upgrade_again(db_url: str) -> None:
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "base")
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(db_url)
    assert _diff(db_url) == []


def test_every_model_table_is_created_by_migrations(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    expected = {
        "districts",
        "schools",
        "users",
        "role_grants",
        "wearers",
        "cameras",
        "docks",
        "evidence_items",
        "derivatives",
        "categories",
        "tags",
        "evidence_tags",
        "incidents",
        "incident_evidence",
        "incident_wearers",
        "bookmarks",
        "audit_events",
        "recovery_codes",
        "web_sessions",
        "login_throttle",
    }
    assert expected <= tables
    assert set(metadata.tables) <= tables


def _expression_indexes(dialect: str) -> set[str]:
    """The names of the models' indexes on expressions (not plain columns) that this
    database gets (some are PostgreSQL's only: `ddl_if`)."""
    return {
        str(index.name)
        for table in metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(e, Column) for e in index.expressions)
        and getattr(getattr(index, "_ddl_if", None), "dialect", None) in (None, dialect)
    }


def test_expression_indexes_survive_the_migrations_without_a_warning(db_url: str) -> None:
    """SQLite's batch migrations reflect their tables, and SQLAlchemy cannot reflect
    expression indexes: the migrations must keep them all the same, and `bwc init` must
    not print a warning about them."""
    wanted = _expression_indexes(make_url(db_url).get_backend_name())
    assert wanted  # the evidence list's time-ordered indexes, at least
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upgrade(db_url)
    assert not [w for w in caught if "expression-based index" in str(w.message)]
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'index'"
            else:
                query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            present = {row[0] for row in connection.exec_driver_sql(query)}
    finally:
        engine.dispose()
    assert wanted <= present
