"""Appending to and reading from the custody ledger in SQL, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Integer, and_, column, func, insert, select, update, values
from sqlalchemy.orm import Session

from audit import merkle
from audit.adapters.ledger_tables import (
    LedgerAudit,
    LedgerCheckpoint,
    LedgerItemHead,
    LedgerLeaf,
    LedgerLog,
    LedgerNode,
)
from audit.events import AuditEvent
from audit.leaves import ChainLink, build_leaf

DEFAULT_ORIGIN_PREFIX = "bwc-evidence.local"
SERVICE_LOG = "service"
MAX_ENTRIES_PAGE = 1000


class LedgerError(Exception):
    """The ledger cannot do what was asked (unknown log, impossible range)."""


def origin_for(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def ensure_log(session: Session, district_id: int | None, origin: str, now: datetime) -> int:
    """The id of the district's log (district None: the service log), created if missing."""
    log_id = session.scalar(
        select(LedgerLog.id).where(
            LedgerLog.district_id.is_(None)
            if district_id is None
            else LedgerLog.district_id == district_id
        )
    )
    if log_id is not None:
        return int(log_id)
    row = LedgerLog(district_id=district_id, origin=origin, size=0, frontier=b"", created_at=now)
    session.add(row)
    session.flush()
    return row.id


def log_of(session: Session, district_id: int | None) -> LedgerLog:
    query = select(LedgerLog).where(
        LedgerLog.district_id.is_(None)
        if district_id is None
        else LedgerLog.district_id == district_id
    )
    log = session.scalars(query).one_or_none()
    if log is None:
        raise LedgerError("this district has no ledger log: run `bwc init`")
    return log


def log_by_origin(session: Session, origin: str | None) -> LedgerLog:
    """The named log, or the only district log when no origin is given."""
    if origin:
        log = session.scalars(select(LedgerLog).where(LedgerLog.origin == origin)).one_or_none()
        if log is None:
            raise LedgerError(f"no log with origin {origin}")
        return log
    logs = list(
        session.scalars(select(LedgerLog).where(LedgerLog.district_id.is_not(None)).limit(2))
    )
    if len(logs) != 1:
        raise LedgerError("name the log with ?origin=" if logs else "no ledger log yet")
    return logs[0]


def _lock(session: Session, log_id: int) -> LedgerLog:
    """Take the log's coordinator lock for the rest of the transaction.

    PostgreSQL: a row lock (SELECT … FOR UPDATE) serialises appenders across processes
    and machines. SQLite: a no-op UPDATE takes the database write lock first, so the
    read below cannot be stale (SQLite has one writer at a time)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        session.execute(update(LedgerLog).where(LedgerLog.id == log_id).values(size=LedgerLog.size))
        query = select(LedgerLog).where(LedgerLog.id == log_id)
    else:
        query = select(LedgerLog).where(LedgerLog.id == log_id).with_for_update()
    log = session.scalars(query.execution_options(populate_existing=True)).one()
    return log


def existing_index(session: Session, event_id: str) -> int | None:
    index = session.scalar(select(LedgerLeaf.idx).where(LedgerLeaf.event_id == event_id))
    return None if index is None else int(index)


def append(
    session: Session,
    log_id: int,
    event: AuditEvent,
    details_sha256: str,
    now: datetime | None = None,
) -> int:
    """Append event as the log's next leaf and return its index (exactly once per event id).

    Runs in the caller's transaction: the leaf commits or rolls back with the change
    it records."""
    return append_once(session, log_id, event, details_sha256, now)[0]


def append_once(
    session: Session,
    log_id: int,
    event: AuditEvent,
    details_sha256: str,
    now: datetime | None = None,
) -> tuple[int, bool]:
    """Like append; also says whether the leaf is new (False: the event was logged before)."""
    already = existing_index(session, event.id)
    if already is not None:
        return already, False
    log = _lock(session, log_id)
    chain = None
    head = None
    if event.evidence_id is not None:
        head = session.get(LedgerItemHead, event.evidence_id, populate_existing=True)
        chain = ChainLink(head.seq + 1, head.leaf_hash) if head else ChainLink(1, None)
    leaf = build_leaf(event, details_sha256, chain)
    digest = merkle.leaf_hash(leaf)
    index = log.size
    frontier, completed = merkle.append_to_frontier(merkle.unpack(log.frontier), index, digest)
    session.execute(
        insert(LedgerLeaf).values(
            log_id=log_id,
            idx=index,
            event_id=event.id,
            leaf=leaf,
            leaf_hash=digest,
            evidence_id=event.evidence_id,
            seq=chain.seq if chain else None,
            appended_at=now or datetime.now(UTC),
        )
    )
    session.execute(
        insert(LedgerNode),
        [{"log_id": log_id, "level": lv, "idx": ix, "hash": h} for (lv, ix), h in completed],
    )
    if chain is not None and event.evidence_id is not None:
        if head is None:
            session.add(
                LedgerItemHead(
                    evidence_id=event.evidence_id,
                    log_id=log_id,
                    seq=chain.seq,
                    leaf_index=index,
                    leaf_hash=digest,
                )
            )
        else:
            head.seq, head.leaf_index, head.leaf_hash = chain.seq, index, digest
    log.size = index + 1
    log.frontier = merkle.pack(frontier)
    session.flush()
    return index, True


def node_fetcher(session: Session, log_id: int) -> merkle.NodeFetcher:
    """Fetch stored subtree nodes by (level, index) in batches.

    The wanted ids are joined in as a VALUES list so that every one is a primary-key
    lookup; SQLite would otherwise scan the log's nodes for a row-value IN list."""

    def fetch(ids: Iterable[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        wanted = list(ids)
        found: dict[merkle.NodeId, bytes] = {}
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            w = (
                values(column("level", Integer), column("idx", BigInteger), name="wanted")
                .data(chunk)
                .cte("wanted")
            )
            rows = session.execute(
                select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash).join_from(
                    w,
                    LedgerNode,
                    and_(
                        LedgerNode.log_id == log_id,
                        LedgerNode.level == w.c.level,
                        LedgerNode.idx == w.c.idx,
                    ),
                )
            )
            found.update({(int(lv), int(ix)): bytes(h) for lv, ix, h in rows})
        return found

    return fetch


def current_size(session: Session, log_id: int) -> int:
    return int(session.scalar(select(LedgerLog.size).where(LedgerLog.id == log_id)) or 0)


def inclusion_proof(session: Session, log_id: int, index: int, tree_size: int) -> list[bytes]:
    if not 0 < tree_size <= current_size(session, log_id):
        raise LedgerError("tree_size must be between 1 and the log size")
    if not 0 <= index < tree_size:
        raise LedgerError("index must be below tree_size")
    ranges = merkle.inclusion_ranges(index, tree_size)
    return merkle.range_hashes(ranges, node_fetcher(session, log_id))


def consistency_proof(session: Session, log_id: int, first: int, second: int) -> list[bytes]:
    if not 0 < first <= second <= current_size(session, log_id):
        raise LedgerError("need 0 < first <= second <= the log size")
    ranges = merkle.consistency_ranges(first, second)
    return merkle.range_hashes(ranges, node_fetcher(session, log_id))


def root_at(session: Session, log_id: int, size: int) -> bytes:
    return merkle.root_of(size, node_fetcher(session, log_id))


def entries(session: Session, log_id: int, start: int, end: int) -> list[tuple[int, bytes]]:
    if start < 0 or end <= start:
        raise LedgerError("need 0 <= start < end")
    end = min(end, start + MAX_ENTRIES_PAGE)
    rows = session.execute(
        select(LedgerLeaf.idx, LedgerLeaf.leaf)
        .where(LedgerLeaf.log_id == log_id, LedgerLeaf.idx >= start, LedgerLeaf.idx < end)
        .order_by(LedgerLeaf.idx)
    )
    return [(int(i), bytes(leaf)) for i, leaf in rows]


def leaf_of_event(session: Session, event_id: str) -> LedgerLeaf | None:
    return session.scalars(select(LedgerLeaf).where(LedgerLeaf.event_id == event_id)).first()


def latest_checkpoint(session: Session, log_id: int) -> LedgerCheckpoint | None:
    return session.scalars(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.log_id == log_id)
        .order_by(LedgerCheckpoint.size.desc())
        .limit(1)
    ).first()


def checkpoint_for(session: Session, log_id: int, size: int) -> LedgerCheckpoint | None:
    return session.scalars(
        select(LedgerCheckpoint).where(
            LedgerCheckpoint.log_id == log_id, LedgerCheckpoint.size == size
        )
    ).first()


def checkpoints(session: Session, log_id: int) -> Sequence[LedgerCheckpoint]:
    return session.scalars(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.log_id == log_id)
        .order_by(LedgerCheckpoint.size)
    ).all()


def latest_audit(session: Session, log_id: int) -> LedgerAudit | None:
    return session.scalars(
        select(LedgerAudit)
        .where(LedgerAudit.log_id == log_id)
        .order_by(LedgerAudit.ran_at.desc(), LedgerAudit.id.desc())
        .limit(1)
    ).first()


def leaf_count(session: Session, log_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(LedgerLeaf).where(LedgerLeaf.log_id == log_id)
        )
        or 0
    )
