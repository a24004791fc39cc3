"""Signing checkpoints and accepting witness cosignatures.

A checkpoint is only signed for a tree that provably extends the previous checkpoint:
the stored subtrees must still give the previous root, and a consistency proof between
the two must verify with the standalone verifier. While the self-audit alarm is raised,
nothing is signed."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit import merkle, notes, offline_verify
from audit.adapters import ledger_sql
from audit.adapters.ledger_tables import LedgerCheckpoint, LedgerCosignature, LedgerLog

logger = logging.getLogger(__name__)


class LedgerAlarm(ledger_sql.LedgerError):
    """The self-audit or a consistency check failed; no checkpoint or export until resolved."""


@dataclass(frozen=True)
class LogSigner:
    """The service's checkpoint key. One key signs every log, under each log's origin."""

    private_key: Ed25519PrivateKey

    def verifier_key(self, origin: str) -> str:
        return notes.verifier_key(origin, self.private_key.public_key())

    def parsed_key(self, origin: str) -> offline_verify.VerifierKey:
        return offline_verify.parse_verifier_key(self.verifier_key(origin))

    def sign(self, origin: str, size: int, root: bytes) -> str:
        return notes.sign_note(
            notes.format_checkpoint(origin, size, root), origin, self.private_key
        )


def load_signer(path: Path) -> LogSigner:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by other users; run: chmod 600 {path}")
    return LogSigner(notes.load_private_key(path.read_text(encoding="ascii").strip()))


def create_signer_file(path: Path, name: str) -> bool:
    """Write a new signing key with mode 0600 unless one exists; True if created."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(notes.dump_private_key(notes.new_signing_key(), name) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def alarm_raised(session: Session, log_id: int) -> str | None:
    audit = ledger_sql.latest_audit(session, log_id)
    if audit is not None and not audit.ok:
        return audit.message
    return None


def issue_checkpoint(
    session: Session, log_id: int, signer: LogSigner, now: datetime | None = None
) -> LedgerCheckpoint | None:
    """Sign a checkpoint for the log's current size if it grew; None if nothing to sign.

    Runs in the caller's transaction; concurrent issuers may race, and the loser's
    insert fails on the (log, size) uniqueness or the growth trigger."""
    alarm = alarm_raised(session, log_id)
    if alarm:
        raise LedgerAlarm(f"not signing while the self-audit alarm is raised: {alarm}")
    log = session.scalars(
        select(LedgerLog).where(LedgerLog.id == log_id).execution_options(populate_existing=True)
    ).one()
    size = log.size
    if size == 0:
        return None
    previous = ledger_sql.latest_checkpoint(session, log_id)
    if previous is not None and previous.size >= size:
        return None
    root = merkle.frontier_root(merkle.unpack(log.frontier))
    if previous is not None:
        if ledger_sql.root_at(session, log_id, previous.size) != previous.root_hash:
            raise LedgerAlarm(
                f"the stored tree no longer gives the root signed at size {previous.size}"
            )
        proof = ledger_sql.consistency_proof(session, log_id, previous.size, size)
        try:
            offline_verify.verify_consistency(previous.size, size, proof, previous.root_hash, root)
        except offline_verify.VerificationError as exc:
            raise LedgerAlarm(
                f"size {size} is not consistent with size {previous.size}: {exc}"
            ) from None
    checkpoint = LedgerCheckpoint(
        log_id=log_id,
        size=size,
        root_hash=root,
        note=signer.sign(log.origin, size, root),
        signed_at=now or datetime.now(UTC),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def mirror_path(directory: Path, origin: str) -> Path:
    return directory / (re.sub(r"[^A-Za-z0-9._-]", "_", origin) + ".checkpoint")


def write_mirror(directory: Path, origin: str, note: str, size: int) -> None:
    """Keep the newest signed checkpoint outside the database too.

    A database restored from an old backup loses its newest checkpoints with it;
    the mirror (and every witness) still remembers them, so the rollback is caught."""
    path = mirror_path(directory, origin)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Several processes sign checkpoints: one writer at a time, and the size compared
    # under the lock, so the mirror never moves backwards and no temp file is shared.
    lock_fd = os.open(directory / ".mirror.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            current = offline_verify.parse_checkpoint(
                offline_verify.parse_note(path.read_text()).body
            )
            if current.size >= size:
                return
        except FileNotFoundError:
            pass
        except offline_verify.VerificationError:
            logger.warning("replacing an unreadable checkpoint mirror at %s", path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        os.close(lock_fd)


def note_with_cosignatures(session: Session, checkpoint: LedgerCheckpoint) -> str:
    lines = session.scalars(
        select(LedgerCosignature.signature_line)
        .where(LedgerCosignature.checkpoint_id == checkpoint.id)
        .order_by(LedgerCosignature.witness)
    ).all()
    return notes.add_signatures(checkpoint.note, list(lines))


def cosignature_count(session: Session, checkpoint_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LedgerCosignature)
            .where(LedgerCosignature.checkpoint_id == checkpoint_id)
        )
        or 0
    )


def last_cosignature_time(session: Session, log_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(LedgerCosignature.received_at))
        .join(LedgerCheckpoint, LedgerCheckpoint.id == LedgerCosignature.checkpoint_id)
        .where(LedgerCheckpoint.log_id == log_id)
    )


class CosignatureRejected(ledger_sql.LedgerError):
    """A submitted cosignature is not for one of our checkpoints or does not verify."""


def accept_cosignatures(
    session: Session,
    note_text: str,
    witnesses: list[offline_verify.VerifierKey],
    now: datetime | None = None,
) -> list[str]:
    """Store every valid cosignature in note_text by a configured witness.

    The note's body must be exactly one of our signed checkpoints. Returns the names
    of the witnesses whose cosignature was newly stored."""
    try:
        note = offline_verify.parse_note(note_text)
        claimed = offline_verify.parse_checkpoint(note.body)
    except offline_verify.VerificationError as exc:
        raise CosignatureRejected(f"not a signed checkpoint: {exc}") from None
    log = session.scalars(select(LedgerLog).where(LedgerLog.origin == claimed.origin)).first()
    if log is None:
        raise CosignatureRejected("unknown log origin")
    ours = ledger_sql.checkpoint_for(session, log.id, claimed.size)
    if ours is None or offline_verify.parse_note(ours.note).body != note.body:
        raise CosignatureRejected("the checkpoint is not one this log signed")
    stored: list[str] = []
    for witness in witnesses:
        try:
            timestamp = offline_verify.verify_cosignature(note_text, witness)
        except offline_verify.VerificationError:
            continue
        exists = session.scalar(
            select(LedgerCosignature.id).where(
                LedgerCosignature.checkpoint_id == ours.id,
                LedgerCosignature.witness == witness.name,
            )
        )
        if exists is not None:
            continue
        # A witness may be configured by its 0x01 vkey; its cosignatures carry the
        # key id of the same key as type 0x04.
        cosigning_id = offline_verify.as_cosignature_key(witness).key_id
        line = next(
            sig.line
            for sig in note.signatures
            if sig.name == witness.name and sig.key_id == cosigning_id
        )
        session.add(
            LedgerCosignature(
                checkpoint_id=ours.id,
                witness=witness.name,
                signature_line=line,
                witness_time=timestamp,
                received_at=now or datetime.now(UTC),
            )
        )
        stored.append(witness.name)
    if not stored and not any(sig.name in {w.name for w in witnesses} for sig in note.signatures):
        raise CosignatureRejected("no signature by a configured witness")
    session.flush()
    return stored
