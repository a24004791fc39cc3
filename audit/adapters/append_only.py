"""Database-enforced append-only ledger tables (DESIGN.md §4), as DDL for migrations.

PostgreSQL: the application role `bwc_app` may only SELECT and INSERT ledger rows; row
and TRUNCATE triggers raise for everyone, owner included, and are ENABLE ALWAYS so that
session_replication_role cannot switch them off; an insert trigger demands index =
previous + 1. SQLite: UPDATE and DELETE triggers raise, and a BEFORE INSERT trigger
checks the index, which also stops INSERT OR REPLACE from silently rewriting a row.

What bypasses the database (a superuser dropping triggers, an edited file) is caught
by the self-audit and by witnesses, not here.

Migration 0002 installs these statements: change them only together with a new
migration that replaces what 0002 installed, never in place."""

from __future__ import annotations

APP_ROLE = "bwc_app"
APPEND_ONLY = ("ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_cosignatures")


def sqlite_statements() -> list[str]:
    statements = []
    for table in APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    statements.append(
        "CREATE TRIGGER ledger_leaves_next_index BEFORE INSERT ON ledger_leaves "
        "WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx), -1) + 1 FROM ledger_leaves "
        "WHERE log_id = NEW.log_id) "
        "BEGIN SELECT RAISE(ABORT, 'ledger index must be the previous index plus one'); END"
    )
    statements.append(
        "CREATE TRIGGER ledger_checkpoints_grow BEFORE INSERT ON ledger_checkpoints "
        "WHEN NEW.size <= (SELECT COALESCE(MAX(size), 0) FROM ledger_checkpoints "
        "WHERE log_id = NEW.log_id) "
        "BEGIN SELECT RAISE(ABORT, 'a checkpoint must be larger than the previous one'); END"
    )
    return statements


def sqlite_drop_statements() -> list[str]:
    names = [f"{t}_no_{v}" for t in APPEND_ONLY for v in ("update", "delete")]
    names += ["ledger_leaves_next_index", "ledger_checkpoints_grow"]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in names]


_PG_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION bwc_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION bwc_ledger_next_index() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.idx IS DISTINCT FROM COALESCE(
           (SELECT max(idx) FROM ledger_leaves WHERE log_id = NEW.log_id), -1) + 1 THEN
        RAISE EXCEPTION 'ledger index must be the previous index plus one'
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION bwc_checkpoint_grows() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.size <= COALESCE(
           (SELECT max(size) FROM ledger_checkpoints WHERE log_id = NEW.log_id), 0) THEN
        RAISE EXCEPTION 'a checkpoint must be larger than the previous one'
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END $$
    """,
]


def postgresql_statements() -> list[str]:
    statements = [s.strip() for s in _PG_FUNCTIONS]
    for table in APPEND_ONLY:
        statements += [
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bwc_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bwc_refuse_change()",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
        ]
    statements += [
        "CREATE TRIGGER ledger_leaves_next_index BEFORE INSERT ON ledger_leaves "
        "FOR EACH ROW EXECUTE FUNCTION bwc_ledger_next_index()",
        "ALTER TABLE ledger_leaves ENABLE ALWAYS TRIGGER ledger_leaves_next_index",
        "CREATE TRIGGER ledger_checkpoints_grow BEFORE INSERT ON ledger_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION bwc_checkpoint_grows()",
        "ALTER TABLE ledger_checkpoints ENABLE ALWAYS TRIGGER ledger_checkpoints_grow",
    ]
    return statements + postgresql_grants()


def postgresql_grants() -> list[str]:
    """The application role: full use of ordinary tables, SELECT/INSERT on the ledger.

    Creating the role needs CREATEROLE; a migrator without it skips creation (the
    deployment creates the role) but the grants still name it."""
    ledger = ", ".join(APPEND_ONLY)
    # S608: every name interpolated below is a constant of this module, not input.
    return [
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN;
          END IF;
        EXCEPTION
          WHEN duplicate_object THEN NULL;
          WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role {APP_ROLE}; create it and re-run the grants';
        END $$
        """.strip(),
        f"""
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
            REVOKE UPDATE, DELETE, TRUNCATE ON {ledger} FROM {APP_ROLE};
            REVOKE ALL ON alembic_version FROM {APP_ROLE};
            GRANT SELECT ON alembic_version TO {APP_ROLE};
          END IF;
        END $$
        """.strip(),  # noqa: S608
    ]


def postgresql_drop_statements() -> list[str]:
    statements = []
    for table in APPEND_ONLY:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        ]
    statements += [
        "DROP TRIGGER IF EXISTS ledger_leaves_next_index ON ledger_leaves",
        "DROP TRIGGER IF EXISTS ledger_checkpoints_grow ON ledger_checkpoints",
        "DROP FUNCTION IF EXISTS bwc_refuse_change()",
        "DROP FUNCTION IF EXISTS bwc_ledger_next_index()",
        "DROP FUNCTION IF EXISTS bwc_checkpoint_grows()",
    ]
    return statements


def install(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return sqlite_statements()
    if dialect == "postgresql":
        return postgresql_statements()
    raise ValueError(f"no append-only protections for {dialect}")


def remove(dialect: str) -> list[str]:
    return sqlite_drop_statements() if dialect == "sqlite" else postgresql_drop_statements()
