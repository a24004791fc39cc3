"""The dock's journal: a crash-safe state machine per camera file, in SQLite (WAL).

Every step is recorded after it is durable and before the next one starts, so an agent
killed at any moment resumes from the journal: a spooled file is not read again, a
confirmed byte is not sent again, and nothing is wiped without a verified receipt.

    discovered → spooled → uploading → verified → wiping → wiped → done
                                 ↘ rejected          ↘ kept (no wipe allowed) → done

`kept` means the receipt was verified but the session's decision or a failed re-hash
forbids the wipe; the camera keeps the file."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATES = (
    "discovered",
    "spooled",
    "uploading",
    "verified",
    "wiping",
    "wiped",
    "kept",
    "rejected",
    "done",
)
_FILE_COLUMNS = (
    "id, session_id, path_b64, size, mtime_ns, inode, state, sha256, spool_name, meta, "
    "upload_url, evidence_id, leaf_index, wiped, error"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    serial TEXT,
    started_at TEXT NOT NULL,
    state TEXT NOT NULL,
    decision TEXT,
    report TEXT,
    finished_at TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    path_b64 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    state TEXT NOT NULL,
    sha256 TEXT,
    spool_name TEXT,
    meta TEXT,
    upload_url TEXT,
    evidence_id TEXT,
    leaf_index INTEGER,
    wiped INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (session_id, path_b64)
);
CREATE INDEX IF NOT EXISTS files_state ON files (state);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class FileRow:
    id: int
    session_id: str
    path_b64: str
    size: int
    mtime_ns: int
    inode: int
    state: str
    sha256: str | None
    spool_name: str | None
    meta: dict[str, Any] | None
    upload_url: str | None
    evidence_id: str | None
    leaf_index: int | None
    wiped: bool
    error: str | None


class Journal:
    """One SQLite file, shared by the agent's threads (one connection, a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # a recorded step survives power loss
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- sessions ---------------------------------------------------------------------

    def open_session(self, session_id: str, serial: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sessions (id, serial, started_at, state) "
                "VALUES (?, ?, ?, 'open')",
                (session_id, serial, _now()),
            )

    def unfinished_session(self, serial: str) -> str | None:
        """The session of this camera that a crash or unplugging left unfinished."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM sessions WHERE serial = ? AND state != 'finished' "
                "ORDER BY started_at DESC LIMIT 1",
                (serial,),
            ).fetchone()
        return str(row[0]) if row else None

    def set_session(self, session_id: str, **fields: Any) -> None:
        allowed = {"state", "decision", "report", "finished_at", "last_error"}
        if not set(fields) <= allowed:
            raise ValueError(f"unknown session fields {set(fields) - allowed}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as conn:
            conn.execute(
                f"UPDATE sessions SET {assignments} WHERE id = ?",  # noqa: S608  (fixed names)
                (*fields.values(), session_id),
            )

    def session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
        return dict(zip(names, row, strict=True)) if row else None

    def sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(
                "SELECT * FROM sessions ORDER BY started_at DESC LIMIT ?", (limit,)
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # --- files ------------------------------------------------------------------------

    def file(self, session_id: str, path_b64: str) -> FileRow | None:
        rows = self._select("WHERE session_id = ? AND path_b64 = ?", (session_id, path_b64))
        return rows[0] if rows else None

    def files(self, session_id: str | None = None) -> list[FileRow]:
        if session_id is None:
            return self._select("", ())
        return self._select("WHERE session_id = ?", (session_id,))

    def discover(
        self, session_id: str, path_b64: str, size: int, mtime_ns: int, inode: int
    ) -> FileRow:
        """The file's row, created as `discovered`; an existing row is kept as it is
        unless the camera file changed since (then it starts over)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, inode, state FROM files "
                "WHERE session_id = ? AND path_b64 = ?",
                (session_id, path_b64),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO files (session_id, path_b64, size, mtime_ns, inode, state, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, 'discovered', ?)",
                    (session_id, path_b64, size, mtime_ns, inode, _now()),
                )
            elif tuple(row[:3]) != (size, mtime_ns, inode) and row[3] in ("discovered",):
                conn.execute(
                    "UPDATE files SET size = ?, mtime_ns = ?, inode = ?, updated_at = ? "
                    "WHERE session_id = ? AND path_b64 = ?",
                    (size, mtime_ns, inode, _now(), session_id, path_b64),
                )
        found = self.file(session_id, path_b64)
        if found is None:  # pragma: no cover - inserted above
            raise RuntimeError("journal lost a row it just wrote")
        return found

    def advance(self, file_id: int, state: str, **fields: Any) -> None:
        """Move a file to state, recording fields; only forward moves are accepted."""
        if state not in STATES:
            raise ValueError(f"unknown state {state}")
        allowed = {
            "sha256",
            "spool_name",
            "meta",
            "upload_url",
            "evidence_id",
            "leaf_index",
            "wiped",
            "error",
        }
        if not set(fields) <= allowed:
            raise ValueError(f"unknown file fields {set(fields) - allowed}")
        if "meta" in fields and fields["meta"] is not None:
            fields["meta"] = json.dumps(fields["meta"], sort_keys=True)
        assignments = "".join(f", {name} = ?" for name in fields)
        with self._tx() as conn:
            current = conn.execute("SELECT state FROM files WHERE id = ?", (file_id,)).fetchone()
            if current is None:
                raise KeyError(file_id)
            if STATES.index(state) < STATES.index(current[0]) and state != "rejected":
                raise ValueError(f"file {file_id} cannot go back from {current[0]} to {state}")
            conn.execute(
                f"UPDATE files SET state = ?, updated_at = ?{assignments} WHERE id = ?",  # noqa: S608
                (state, _now(), *fields.values(), file_id),
            )

    def note_error(self, file_id: int, error: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE files SET error = ?, updated_at = ? WHERE id = ?",
                (error[:500], _now(), file_id),
            )

    def _select(self, where: str, args: tuple[Any, ...]) -> list[FileRow]:
        with self._lock:
            # where is one of this module's constant clauses, never caller text.
            query = f"SELECT {_FILE_COLUMNS} FROM files {where} ORDER BY id"  # noqa: S608
            rows = self._conn.execute(query, args).fetchall()
        return [
            FileRow(
                id=r[0],
                session_id=r[1],
                path_b64=r[2],
                size=r[3],
                mtime_ns=r[4],
                inode=r[5],
                state=r[6],
                sha256=r[7],
                spool_name=r[8],
                meta=json.loads(r[9]) if r[9] else None,
                upload_url=r[10],
                evidence_id=r[11],
                leaf_index=r[12],
                wiped=bool(r[13]),
                error=r[14],
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(
                self._conn.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall()
            )
