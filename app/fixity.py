"""Fixity checks and verified exports of evidence items.

A fixity check re-reads the stored object, authenticates every segment and re-hashes
the plaintext; the result is a custody event either way. A failure marks the item
`tampered` and raises the alarm in the log; it is never silently repaired. The item's
derivatives (playback copies) are checked with it, each with its own custody event."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.custody import record_event
from app.db import Database, must_get
from app.vault import Vault, decode_wrapped, item_context
from audit.events import EventType
from evidence import vault as vault_core
from evidence.adapters.sql.items import Derivative, EvidenceItem
from evidence.errors import EvidenceError, IntegrityError, NotFound, StorageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DerivativeResult:
    derivative_id: str
    kind: str
    ok: bool
    problem: str | None = None


@dataclass(frozen=True)
class FixityResult:
    evidence_id: str
    ok: bool
    sha256: str
    problem: str | None = None
    derivatives: tuple[DerivativeResult, ...] = ()

    @property
    def damaged_derivatives(self) -> list[DerivativeResult]:
        return [d for d in self.derivatives if not d.ok]


def _load(database: Database, vault: Vault, evidence_id: str) -> tuple[EvidenceItem, bytes]:
    with database.sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        if item is None or item.object_id is None:
            raise NotFound(f"no stored evidence item {evidence_id}")
        session.expunge(item)
    dek = vault.keys.unwrap(
        decode_wrapped(item.key_version or "", item.wrapped_key or ""),
        item_context(item.id, item.object_id or ""),
    )
    return item, dek


def _obj(stored: EvidenceItem | Derivative) -> vault_core.EncryptedObject:
    return vault_core.EncryptedObject(
        stored.object_key, bytes.fromhex(stored.object_id or ""), stored.stored_size or 0
    )


def _event(
    session: Session,
    item: EvidenceItem,
    kind: EventType,
    actor: str,
    now: datetime,
    media_sha256: str | None = None,
    **details: object,
) -> None:
    """A custody event of item; media_sha256 names a derivative's own bytes."""
    record_event(
        session,
        kind,
        now,
        item.district_id,
        actor,
        subject=f"evidence:{item.id}",
        evidence_id=item.id,
        sha256=media_sha256 or item.sha256,
        **details,
    )


def check_fixity(
    database: Database, vault: Vault, evidence_id: str, *, actor: str, now: datetime
) -> FixityResult:
    """Re-read, authenticate and re-hash one item; record the outcome in the ledger."""
    problem: str | None = None
    try:
        item, dek = _load(database, vault, evidence_id)
    except IntegrityError:
        with database.sessions() as session:
            item = must_get(session, EvidenceItem, evidence_id)
            session.expunge(item)
        dek = b""
        problem = "the wrapped data key failed authentication"
    digest = None
    if problem is None:
        try:
            digest = vault_core.digest_object(vault.store, _obj(item), dek)
        except IntegrityError:
            problem = "the stored object failed authentication"
        except StorageError as exc:
            problem = f"the stored object could not be read: {exc}"
    if digest is not None:
        if digest.sha256 != item.sha256 or digest.size != item.size:
            problem = "the decrypted content does not match the recorded SHA-256 and size"
        elif item.stored_sha256 and digest.stored_sha256 != item.stored_sha256:
            problem = "the stored ciphertext differs from what was stored at ingest"
    with database.transaction() as session:
        row = must_get(session, EvidenceItem, evidence_id)
        row.last_fixity_at = now
        if problem is None:
            row.integrity = "ok"
            _event(session, row, EventType.FIXITY_PASSED, actor, now)
        else:
            row.integrity = "tampered"
            _event(session, row, EventType.FIXITY_FAILED, actor, now, problem=problem)
    if problem is not None:
        logger.error("ALERT: fixity check failed for evidence %s: %s", evidence_id, problem)
    derivatives = tuple(
        _check_derivative(database, vault, d, actor=actor, now=now)
        for d in _derivatives_of(database, evidence_id)
    )
    return FixityResult(evidence_id, problem is None, item.sha256, problem, derivatives)


def _derivatives_of(database: Database, evidence_id: str) -> list[Derivative]:
    with database.sessions() as session:
        rows = list(
            session.scalars(
                select(Derivative)
                .where(Derivative.evidence_id == evidence_id, Derivative.integrity == "ok")
                .order_by(Derivative.created_at)
            )
        )
        session.expunge_all()
    return rows


def _derivative_problem(vault: Vault, derivative: Derivative) -> str | None:
    try:
        dek = vault.keys.unwrap(
            decode_wrapped(derivative.key_version or "", derivative.wrapped_key or ""),
            item_context(derivative.id, derivative.object_id or ""),
        )
    except IntegrityError:
        return "the wrapped data key failed authentication"
    try:
        digest = vault_core.digest_object(vault.store, _obj(derivative), dek)
    except IntegrityError:
        return "the stored copy failed authentication"
    except StorageError as exc:
        return f"the stored copy could not be read: {exc}"
    if digest.sha256 != derivative.sha256 or digest.size != derivative.size:
        return "the decrypted copy does not match its recorded SHA-256 and size"
    recorded = (derivative.details or {}).get("stored_sha256")
    if recorded and digest.stored_sha256 != recorded:
        return "the stored copy's ciphertext differs from what was stored"
    return None


def _check_derivative(
    database: Database, vault: Vault, derivative: Derivative, *, actor: str, now: datetime
) -> DerivativeResult:
    """Check one derivative the way an original is checked. A damaged copy is set aside
    (never served again; a new one may be made) and alarmed, but it does not make the
    original tampered: the original alone is the evidence of record."""
    problem = _derivative_problem(vault, derivative)
    with database.transaction() as session:
        row = must_get(session, Derivative, derivative.id)
        item = must_get(session, EvidenceItem, row.evidence_id)
        row.last_fixity_at = now
        details: dict[str, object] = {"derivative": row.id, "derivative_kind": row.kind}
        if problem is None:
            kind = EventType.DERIVATIVE_FIXITY_PASSED
        else:
            row.integrity = "damaged"
            kind = EventType.DERIVATIVE_FIXITY_FAILED
            details["problem"] = problem
        _event(session, item, kind, actor, now, media_sha256=row.sha256, **details)
    if problem is not None:
        logger.error(
            "ALERT: fixity check failed for the %s copy %s of evidence %s: %s",
            derivative.kind,
            derivative.id,
            derivative.evidence_id,
            problem,
        )
    return DerivativeResult(derivative.id, derivative.kind, problem is None, problem)


def export_item(
    database: Database,
    vault: Vault,
    evidence_id: str,
    out: Path,
    *,
    actor: str,
    now: datetime,
) -> tuple[str, int]:
    """Decrypt an item to out, verifying its SHA-256 on the way.

    Writes to a temporary file beside out and renames it into place only after the hash
    and size match, so a failed export never leaves a partial or wrong file."""
    if out.exists() or out.is_symlink():
        raise EvidenceError(f"{out} exists; refusing to overwrite it")
    item, dek = _load(database, vault, evidence_id)
    temp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for piece in vault_core.read_plaintext(vault.store, _obj(item), dek, 0, item.size):
                digest.update(piece)
                size += len(piece)
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != item.sha256 or size != item.size:
            raise IntegrityError("the decrypted content does not match the recorded SHA-256")
        with database.transaction() as session:  # record first, then disclose
            row = must_get(session, EvidenceItem, evidence_id)
            _event(session, row, EventType.EVIDENCE_EXPORTED, actor, now, size=size)
        os.link(temp, out)  # never replaces a file that appeared meanwhile
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        temp.unlink(missing_ok=True)
    return item.sha256, size
