"""What an attacker with direct database access does to the ledger, for tamper tests.

Each helper bypasses the database's own protections first (dropping SQLite triggers,
disabling PostgreSQL triggers as a superuser), exactly as such an attacker would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from audit import merkle


def param(connection: Connection) -> str:
    return "?" if connection.dialect.name == "sqlite" else "%s"


def without_protection(connection: Connection, table: str) -> None:
    if connection.dialect.name == "sqlite":
        names = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
        ).all()
        for (name,) in names:
            connection.exec_driver_sql(f"DROP TRIGGER {name}")
    else:
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER ALL")


def restore_protection(connection: Connection, table: str) -> None:
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def execute(connection: Connection, sql: str, *args: Any) -> None:
    connection.exec_driver_sql(sql.replace("?", param(connection)), tuple(args))


def rewrite_leaf(
    connection: Connection, log_id: int, index: int, leaf: bytes, *, fix_hashes: bool
) -> None:
    """Replace a leaf's bytes; with fix_hashes also its leaf hash and level-0 node, as a
    careful attacker would so that the row looks self-consistent."""
    for table in ("ledger_leaves", "ledger_nodes"):
        without_protection(connection, table)
    execute(
        connection,
        "UPDATE ledger_leaves SET leaf = ? WHERE log_id = ? AND idx = ?",
        leaf,
        log_id,
        index,
    )
    if fix_hashes:
        digest = merkle.leaf_hash(leaf)
        execute(
            connection,
            "UPDATE ledger_leaves SET leaf_hash = ? WHERE log_id = ? AND idx = ?",
            digest,
            log_id,
            index,
        )
        execute(
            connection,
            "UPDATE ledger_nodes SET hash = ? WHERE log_id = ? AND level = 0 AND idx = ?",
            digest,
            log_id,
            index,
        )
    for table in ("ledger_leaves", "ledger_nodes"):
        restore_protection(connection, table)


def delete_leaf(connection: Connection, log_id: int, index: int) -> None:
    without_protection(connection, "ledger_leaves")
    execute(connection, "DELETE FROM ledger_leaves WHERE log_id = ? AND idx = ?", log_id, index)
    restore_protection(connection, "ledger_leaves")


def swap_leaves(connection: Connection, log_id: int, a: int, b: int) -> None:
    without_protection(connection, "ledger_leaves")
    rows = {
        idx: (leaf, digest)
        for idx, leaf, digest in connection.exec_driver_sql(
            "SELECT idx, leaf, leaf_hash FROM ledger_leaves WHERE log_id = "
            f"{param(connection)} AND idx IN ({a}, {b})",
            (log_id,),
        ).all()
    }
    for target, source in ((a, b), (b, a)):
        execute(
            connection,
            "UPDATE ledger_leaves SET leaf = ?, leaf_hash = ?, event_id = ? "
            "WHERE log_id = ? AND idx = ?",
            rows[source][0],
            rows[source][1],
            f"swap-{target}",
            log_id,
            target,
        )
    restore_protection(connection, "ledger_leaves")


def insert_leaf(connection: Connection, log_id: int, index: int, leaf: bytes) -> None:
    """Slip a forged leaf in at index, shifting the later ones up by one."""
    without_protection(connection, "ledger_leaves")
    later = connection.exec_driver_sql(
        f"SELECT idx FROM ledger_leaves WHERE log_id = {param(connection)} AND idx >= "
        f"{param(connection)} ORDER BY idx DESC",
        (log_id, index),
    ).all()
    for (idx,) in later:
        execute(
            connection,
            "UPDATE ledger_leaves SET idx = ? WHERE log_id = ? AND idx = ?",
            idx + 1,
            log_id,
            idx,
        )
    execute(
        connection,
        "INSERT INTO ledger_leaves (log_id, idx, event_id, leaf, leaf_hash, "
        "appended_at) SELECT log_id, ?, 'forged', ?, ?, appended_at FROM ledger_leaves "
        "WHERE log_id = ? AND idx = ?",
        index,
        leaf,
        merkle.leaf_hash(leaf),
        log_id,
        index + 1,
    )
    execute(connection, "UPDATE ledger_logs SET size = size + 1 WHERE id = ?", log_id)
    restore_protection(connection, "ledger_leaves")


def roll_back_to(connection: Connection, log_id: int, size: int, frontier: bytes) -> None:
    """What restoring an older backup does: newer leaves, nodes and checkpoints vanish."""
    for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_cosignatures"):
        without_protection(connection, table)
    execute(
        connection,
        "DELETE FROM ledger_cosignatures WHERE checkpoint_id IN "
        "(SELECT id FROM ledger_checkpoints WHERE log_id = ? AND size > ?)",
        log_id,
        size,
    )
    execute(
        connection, "DELETE FROM ledger_checkpoints WHERE log_id = ? AND size > ?", log_id, size
    )
    execute(connection, "DELETE FROM ledger_leaves WHERE log_id = ? AND idx >= ?", log_id, size)
    execute(
        connection,
        "DELETE FROM ledger_nodes WHERE log_id = ? AND ((idx + 1) << level) > ?",
        log_id,
        size,
    )
    execute(
        connection,
        "UPDATE ledger_logs SET size = ?, frontier = ? WHERE id = ?",
        size,
        frontier,
        log_id,
    )
    for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_cosignatures"):
        restore_protection(connection, table)


def rebuild_nodes(connection: Connection, log_id: int) -> None:
    """Recompute the interior subtree nodes and frontier from the (edited) leaf hashes."""
    rows = connection.exec_driver_sql(
        f"SELECT idx, leaf_hash FROM ledger_leaves WHERE log_id = {param(connection)} ORDER BY idx",
        (log_id,),
    ).all()
    frontier: list[bytes] = []
    for idx, digest in rows:
        frontier, nodes = merkle.append_to_frontier(frontier, idx, bytes(digest))
        for (level, index), h in nodes:
            if level > 0:
                execute(
                    connection,
                    "INSERT INTO ledger_nodes (log_id, level, idx, hash) VALUES (?, ?, ?, ?)",
                    log_id,
                    level,
                    index,
                    h,
                )
    execute(
        connection,
        "UPDATE ledger_logs SET frontier = ? WHERE id = ?",
        merkle.pack(frontier),
        log_id,
    )
