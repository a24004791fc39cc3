"""Alembic environment: runs migrations against the URL the service was given."""

import warnings

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.exc import SAWarning

import app.models  # noqa: F401  (registers every table on the metadata)
from evidence.adapters.sql.base import metadata

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # SQLite's batch migrations reflect their table, and SQLAlchemy cannot reflect the
    # evidence list's expression indexes (migration 0005): it said so on every `bwc
    # init`. Those migrations only add indexes to that table, in place, so the
    # expression indexes stay (tests/integration/test_migrations.py checks it) and the
    # warning was noise to whoever runs the command.
    warnings.filterwarnings(
        "ignore",
        message="Skipped unsupported reflection of expression-based index",
        category=SAWarning,
    )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
