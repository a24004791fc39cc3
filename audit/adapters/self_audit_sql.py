"""The self-audit: recompute each log from its stored leaves and hold it against what was
signed. It trusts nothing in the database but the leaf bytes it re-hashes and the
checkpoint signatures it re-verifies with the log's public key.

It streams the leaves in index order (constant memory beyond one batch) and checks:
indices contiguous from 0; each stored leaf hash; each stored subtree node; the root at
every checkpoint size against that checkpoint's signed root; the log's coordinator row;
and the checkpoint mirror kept outside the database, which catches a database rolled
back to an older backup. The result names the first bad index it can pin down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import merkle, offline_verify
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import mirror_path
from audit.adapters.ledger_tables import LedgerAudit, LedgerCheckpoint, LedgerLeaf, LedgerLog

BATCH = 5000


@dataclass(frozen=True)
class AuditResult:
    origin: str
    ok: bool
    size_checked: int
    first_bad_index: int | None
    message: str


class _Failure(Exception):
    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.index = index


def _fresh_log(session: Session, log_id: int) -> LedgerLog:
    return session.scalars(
        select(LedgerLog).where(LedgerLog.id == log_id).execution_options(populate_existing=True)
    ).one()


def read_mirrors(mirror_dir: Path | None) -> dict[str, str]:
    """The checkpoint mirror files' texts by file name, read now.

    Read them before the audit's transaction takes its first snapshot: a checkpoint
    another process signs meanwhile is then in the database view or not in the mirror
    text, never only in the mirror (which would look exactly like a rolled-back
    database and raise a false alarm)."""
    if mirror_dir is None or not mirror_dir.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in mirror_dir.glob("*.checkpoint"):
        try:
            found[path.name] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
    return found


def _check(
    session: Session,
    log_id: int,
    key: offline_verify.VerifierKey,
    mirror_dir: Path | None,
    mirrors: dict[str, str] | None,
) -> int:
    # Checkpoints first, then the log row: a checkpoint signed in between is then
    # no larger than the size we audit, since the log only grows.
    checkpoints = list(ledger_sql.checkpoints(session, log_id))
    log = _fresh_log(session, log_id)
    for cp in checkpoints:
        try:
            signed = offline_verify.verify_checkpoint(cp.note, key)
        except offline_verify.VerificationError as exc:
            raise _Failure(
                f"checkpoint at size {cp.size} fails its signature: {exc}", None
            ) from None
        if (signed.origin, signed.size, signed.root_hash) != (log.origin, cp.size, cp.root_hash):
            raise _Failure(f"checkpoint row at size {cp.size} differs from its signed note", None)
    pending = iter(checkpoints)
    next_cp = next(pending, None)
    last_good = 0
    frontier: list[bytes] = []
    fetch = ledger_sql.node_fetcher(session, log.id)
    expected = 0
    while True:
        rows = session.execute(
            select(LedgerLeaf.idx, LedgerLeaf.leaf, LedgerLeaf.leaf_hash)
            .where(
                LedgerLeaf.log_id == log.id,
                LedgerLeaf.idx >= expected,
                # Appends go on meanwhile; audit the tree as of the coordinator row read.
                LedgerLeaf.idx < log.size,
            )
            .order_by(LedgerLeaf.idx)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        completed: dict[merkle.NodeId, bytes] = {}
        for idx, leaf, stored_hash in rows:
            if idx != expected:
                raise _Failure(f"leaf {expected} is missing (next stored is {idx})", expected)
            digest = merkle.leaf_hash(bytes(leaf))
            if digest != bytes(stored_hash):
                raise _Failure(f"leaf {idx} does not hash to its stored leaf hash", idx)
            frontier, new_nodes = merkle.append_to_frontier(frontier, expected, digest)
            completed.update(new_nodes)
            expected += 1
            while next_cp is not None and next_cp.size == expected:
                if merkle.frontier_root(frontier) != next_cp.root_hash:
                    raise _Failure(
                        f"the leaves no longer give the root signed at size {next_cp.size}; "
                        f"a leaf in [{last_good}, {next_cp.size}) was changed, inserted, "
                        "removed or reordered",
                        last_good,
                    )
                last_good = next_cp.size
                next_cp = next(pending, None)
        stored = fetch(completed.keys())
        bad = [node for node, h in completed.items() if stored.get(node) != h]
        if bad:
            level, index = min(bad, key=lambda n: n[1] << n[0])
            first = index << level
            raise _Failure(
                f"stored subtree ({level}, {index}) over leaves from {first} is wrong", first
            )
    if next_cp is not None:
        raise _Failure(
            f"a checkpoint of size {next_cp.size} was signed but only {expected} leaves remain",
            expected,
        )
    if log.size != expected:
        raise _Failure(f"the log records size {log.size} but {expected} leaves are stored", None)
    if merkle.unpack(log.frontier) != frontier:
        raise _Failure("the log's stored frontier does not match its leaves", None)
    if mirror_dir is not None:
        _check_mirror(mirror_dir, log, key, checkpoints, mirrors)
    return expected


def _check_mirror(
    mirror_dir: Path,
    log: LedgerLog,
    key: offline_verify.VerifierKey,
    checkpoints: list[LedgerCheckpoint],
    mirrors: dict[str, str] | None,
) -> None:
    path = mirror_path(mirror_dir, log.origin)
    if mirrors is not None:
        text = mirrors.get(path.name)
        if text is None:
            return
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
    try:
        mirrored = offline_verify.verify_checkpoint(text, key)
    except offline_verify.VerificationError as exc:
        raise _Failure(f"the checkpoint mirror {path} fails verification: {exc}", None) from None
    by_size = {cp.size: cp for cp in checkpoints}
    newest = max(by_size, default=0)
    if mirrored.size > newest:
        raise _Failure(
            f"the database was rolled back: a checkpoint of size {mirrored.size} was signed, "
            f"but the newest stored is size {newest}",
            newest,
        )
    if by_size[mirrored.size].root_hash != mirrored.root_hash:
        raise _Failure(f"the checkpoint at size {mirrored.size} differs from its mirror", None)


def run(
    session: Session,
    log_id: int,
    key: offline_verify.VerifierKey,
    mirror_dir: Path | None,
    now: datetime | None = None,
    *,
    record: bool = True,
    mirrors: dict[str, str] | None = None,
) -> AuditResult:
    """Audit one log; with record, store the outcome (a failure raises the alarm).

    mirrors: the mirror texts as `read_mirrors` gave them before session's transaction
    began; without them the mirror is read now, which is only safe when nothing else
    signs checkpoints meanwhile."""
    log = _fresh_log(session, log_id)
    try:
        size = _check(session, log_id, key, mirror_dir, mirrors)
        result = AuditResult(log.origin, True, size, None, f"{size} leaves verified")
    except _Failure as failure:
        result = AuditResult(log.origin, False, log.size, failure.index, str(failure))
    if record:
        session.add(
            LedgerAudit(
                log_id=log.id,
                ran_at=now or datetime.now(UTC),
                ok=result.ok,
                size_checked=result.size_checked,
                first_bad_index=result.first_bad_index,
                message=result.message,
            )
        )
        session.flush()
    return result
