"""The service's custody-ledger duties: signing checkpoints, self-audits, witnesses.

One `LedgerService` per process. The background checkpointer is a daemon thread; every
process may run one, and they coordinate through the database (a checkpoint per size is
unique), so scaling out needs no leader election."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.db import Database
from app.settings import ConfigError, Settings
from audit import offline_verify
from audit.adapters import checkpoints_sql, ledger_sql, self_audit_sql
from audit.adapters.checkpoints_sql import LedgerAlarm, LogSigner
from audit.adapters.ledger_tables import LedgerLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogStatus:
    origin: str
    size: int
    checkpoint_size: int | None
    checkpoint_note: str | None
    checkpoint_signed_at: datetime | None
    cosignatures: int
    published: bool
    last_cosigned_at: datetime | None
    audit_ok: bool | None
    audit_message: str | None
    audit_ran_at: datetime | None
    verifier_key: str


class LedgerService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.mirror_dir = settings.data_dir / "ledger"
        try:
            self.witnesses = [
                offline_verify.parse_verifier_key(v) for v in settings.ledger_witnesses
            ]
        except offline_verify.VerificationError as exc:
            raise ConfigError(f"BWC_LEDGER_WITNESSES: {exc}") from None
        self._signer: LogSigner | None = None

    @property
    def signer(self) -> LogSigner:
        if self._signer is None:
            path = self.settings.ledger_key_file
            if path is None or not Path(path).exists():
                raise ConfigError(f"no ledger signing key at {path}: run `bwc init`")
            try:
                self._signer = checkpoints_sql.load_signer(Path(path))
            except PermissionError as exc:
                raise ConfigError(str(exc)) from None
        return self._signer

    @staticmethod
    def _log(session: Session, log_id: int) -> LedgerLog:
        log = session.get(LedgerLog, log_id)
        if log is None:
            raise ledger_sql.LedgerError(f"no ledger log {log_id}")
        return log

    def log_ids(self) -> list[int]:
        with self.database.sessions() as session:
            return list(session.scalars(select(LedgerLog.id).order_by(LedgerLog.id)))

    def checkpoint(self, log_id: int) -> int | None:
        """Sign a checkpoint for log_id if it grew; returns the new size or None."""
        try:
            with self.database.transaction() as session:
                made = checkpoints_sql.issue_checkpoint(session, log_id, self.signer)
                if made is None:
                    return None
                note, size, name = made.note, made.size, self._log(session, log_id).origin
        except IntegrityError:
            return None  # another process signed this size first
        checkpoints_sql.write_mirror(self.mirror_dir, name, note, size)
        return size

    def checkpoint_all(self) -> dict[int, int | None | LedgerAlarm]:
        """Checkpoint every log; a log under alarm is refused without stopping the rest."""
        outcomes: dict[int, int | None | LedgerAlarm] = {}
        for log_id in self.log_ids():
            try:
                outcomes[log_id] = self.checkpoint(log_id)
            except LedgerAlarm as alarm:
                outcomes[log_id] = alarm
        return outcomes

    def audit(self, log_id: int, *, record: bool = True) -> self_audit_sql.AuditResult:
        mirrors = self_audit_sql.read_mirrors(self.mirror_dir)  # before the snapshot
        with self.database.transaction() as session:
            key = self.signer.parsed_key(self._log(session, log_id).origin)
            result = self_audit_sql.run(
                session, log_id, key, self.mirror_dir, record=record, mirrors=mirrors
            )
        if not result.ok:
            logger.error(
                "custody ledger self-audit FAILED for %s: %s", result.origin, result.message
            )
        return result

    def audit_all(self, *, record: bool = True) -> list[self_audit_sql.AuditResult]:
        return [self.audit(log_id, record=record) for log_id in self.log_ids()]

    def status(self, log_id: int) -> LogStatus:
        with self.database.sessions() as session:
            log = self._log(session, log_id)
            cp = ledger_sql.latest_checkpoint(session, log_id)
            audit = ledger_sql.latest_audit(session, log_id)
            cosigs = checkpoints_sql.cosignature_count(session, cp.id) if cp else 0
            last_cosig = checkpoints_sql.last_cosignature_time(session, log_id)
            return LogStatus(
                origin=log.origin,
                size=log.size,
                checkpoint_size=cp.size if cp else None,
                checkpoint_note=checkpoints_sql.note_with_cosignatures(session, cp) if cp else None,
                checkpoint_signed_at=cp.signed_at if cp else None,
                cosignatures=cosigs,
                published=bool(cp)
                and (cosigs >= self.settings.ledger_witness_quorum if self.witnesses else True),
                last_cosigned_at=last_cosig,
                audit_ok=audit.ok if audit else None,
                audit_message=audit.message if audit else None,
                audit_ran_at=audit.ran_at if audit else None,
                verifier_key=self.signer.verifier_key(log.origin),
            )


class LedgerWorker:
    """Signs checkpoints every few seconds when a log grew, and audits on a schedule.

    The first audit runs at start-up. Errors are logged and retried on the next tick:
    the worker must never die quietly."""

    def __init__(
        self, service: LedgerService, checkpoint_seconds: float, audit_minutes: float
    ) -> None:
        self.service = service
        self.interval = checkpoint_seconds
        self.audit_every = audit_minutes * 60
        self._stop = threading.Event()
        self._last_problem = ""
        self._thread = threading.Thread(target=self._run, name="ledger-worker", daemon=True)
        self._next_audit = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self.audit_every and now >= self._next_audit:
                    self._next_audit = now + self.audit_every
                    self.service.audit_all()
                alarms = [
                    a for a in self.service.checkpoint_all().values() if isinstance(a, LedgerAlarm)
                ]
                if alarms:
                    self._report(logging.ERROR, "; ".join(f"ledger alarm: {a}" for a in alarms))
                else:
                    self._last_problem = ""
            except (DBAPIError, ConfigError, OSError) as exc:
                self._report(logging.WARNING, f"ledger worker: {exc}")
            self._stop.wait(self.interval)

    def _report(self, level: int, message: str) -> None:
        # Once per distinct problem, not once a second.
        if message != self._last_problem:
            logger.log(level, "%s", message)
            self._last_problem = message
