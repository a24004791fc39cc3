"""Bulk-loading PostgreSQL for the UI benchmark: COPY on our own connections, indexes
built once after the rows are in, and a check that the schema ends up exactly as the
migrations made it.

Loading 10,000,000 rows into tables whose indexes are on random UUIDs would spend most
of its time in index maintenance, so every index of a loaded table is dropped first
(constraints by ALTER TABLE … DROP CONSTRAINT, others by DROP INDEX) and recreated
afterwards from the definitions PostgreSQL itself printed (pg_get_indexdef,
pg_get_constraintdef). Indexes that a foreign key relies on stay. The catalog is
compared before and after: names and definitions must match exactly.

Connections of a superuser load with session_replication_role = replica, so foreign
keys are not checked row by row (the generator makes every reference itself); the
ledger's own triggers are ENABLE ALWAYS and still fire, except the next-index check,
which the loader switches off and back on as bench/_ledger_proofs.py does."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from _common import _libpq

_INDEXES = """
SELECT i.indexrelid::regclass::text AS name,
       pg_get_indexdef(i.indexrelid) AS indexdef,
       c.conname, pg_get_constraintdef(c.oid) AS condef,
       EXISTS (SELECT 1 FROM pg_constraint f
               WHERE f.contype = 'f' AND f.conindid = i.indexrelid) AS referenced
FROM pg_index i
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
                          AND c.conrelid = i.indrelid
WHERE i.indrelid = %s::regclass
ORDER BY 1
"""


@dataclass
class Deferred:
    """Indexes taken off the loaded tables, to be rebuilt."""

    before: dict[str, list[tuple[str, str]]]  # table -> [(index name, definition)]
    dropped: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    rebuild_s: dict[str, float] = field(default_factory=dict)


class Loader:
    def __init__(self, url: str) -> None:
        self.dsn = _libpq(url)
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            self.superuser = bool(row.fetchone()[0])  # type: ignore[index]

    def connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.dsn)
        conn.execute("SET synchronous_commit = off")  # the load is redone if it fails
        if self.superuser:
            conn.execute("SET session_replication_role = replica")
        return conn

    def execute(self, statement: str, *, autocommit: bool = False) -> None:
        """One statement on its own connection; DDL gives up after a minute waiting for a
        lock rather than hanging the run."""
        with psycopg.connect(self.dsn, autocommit=autocommit) as conn:
            conn.execute("SET lock_timeout = '60s'")
            conn.execute(statement)  # type: ignore[arg-type]

    def copy(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        """COPY rows into table in one transaction; how many."""
        n = 0
        with self.connect() as conn, conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        return n

    @contextmanager
    def copying(self, table: str, columns: tuple[str, ...]) -> Iterator[Any]:
        """An open COPY (its write_row) for a producer that feeds several tables at once."""
        with self.connect() as conn, conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                yield copy.write_row

    # --- indexes -------------------------------------------------------------------------

    def index_catalog(self, tables: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        with psycopg.connect(self.dsn) as conn:
            for table in tables:
                rows = conn.execute(_INDEXES, (table,)).fetchall()
                out[table] = [(r[0], r[1]) for r in rows]
        return out

    def drop_indexes(self, tables: list[str]) -> Deferred:
        deferred = Deferred(self.index_catalog(tables))
        with psycopg.connect(self.dsn) as conn:
            for table in tables:
                for name, indexdef, conname, condef, referenced in conn.execute(
                    _INDEXES, (table,)
                ).fetchall():
                    if referenced:
                        continue  # a foreign key needs it; it stays and is maintained
                    if conname:
                        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{conname}"')  # type: ignore[arg-type]
                    else:
                        conn.execute(f'DROP INDEX "{name}"')  # type: ignore[arg-type]
                    deferred.dropped.append((table, indexdef, conname, condef))
        return deferred

    def rebuild_indexes(self, deferred: Deferred, maintenance_work_mem: str = "1GB") -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")  # type: ignore[arg-type]
            for table, indexdef, conname, condef in deferred.dropped:
                started = time.perf_counter()
                if conname:
                    conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{conname}" {condef}')  # type: ignore[arg-type]
                    key = conname
                else:
                    conn.execute(indexdef)  # type: ignore[arg-type]
                    key = indexdef.split(" ON ")[0].split()[-1]
                deferred.rebuild_s[f"{table}.{key}"] = time.perf_counter() - started
        after = self.index_catalog(deferred.before)
        if after != deferred.before:
            raise AssertionError(f"indexes differ from the migrations': {deferred.before} {after}")

    # --- after the load ------------------------------------------------------------------

    def vacuum_analyze(self) -> float:
        """What autovacuum would do soon after a load this size (visibility map, stats)."""
        started = time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        return time.perf_counter() - started

    def sizes(self, tables: Iterable[str]) -> dict[str, Any]:
        with psycopg.connect(self.dsn) as conn:
            total = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            out: dict[str, Any] = {"database_bytes": int(total[0])}  # type: ignore[index]
            for table in tables:
                row = conn.execute(
                    "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass), "
                    "(SELECT reltuples FROM pg_class WHERE oid = %s::regclass)",
                    (table, table, table),
                ).fetchone()
                assert row is not None
                out[table] = {
                    "table_bytes": int(row[0]),
                    "index_bytes": int(row[1]),
                    "rows": int(row[2]),
                }
        return out

    def scalar(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(statement, params).fetchone()  # type: ignore[arg-type]
            return None if row is None else row[0]
