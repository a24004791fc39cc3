"""Time from an append's commit to the commit of the first signed checkpoint that
covers it, with the service's own background checkpointer (app.ledger.LedgerWorker) at
its default interval, while events arrive at a modest, steady rate."""

from __future__ import annotations

import bisect
import time
from pathlib import Path
from typing import Any

from _common import percentile, summary_ms
from _ledger_append import failed_login
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.db import Database
from app.ledger import LedgerService, LedgerWorker
from app.settings import Settings
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import create_signer_file
from audit.adapters.sql import SqlEventRecorder


class _CommitClock:
    """The moment the last transaction of a session factory was committed."""

    def __init__(self, database: Database) -> None:
        self.last = 0.0
        event.listen(database.sessions, "after_commit", self._committed)

    def _committed(self, _session: Session) -> None:
        self.last = time.perf_counter()


class _TimedLedgerService(LedgerService):
    """The real service, noting when each checkpoint it signs was committed."""

    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(database, settings)
        self.clock = _CommitClock(database)
        self.signed: list[tuple[int, float]] = []  # (size, commit time), sizes ascending
        self.durations: list[float] = []

    def checkpoint(self, log_id: int) -> int | None:
        started = time.perf_counter()
        size = super().checkpoint(log_id)
        if size is not None:  # returned only after its transaction committed
            self.signed.append((size, self.clock.last))
            self.durations.append(self.clock.last - started)
        return size


def checkpoint_latency(
    url: str, district_id: int, data_dir: Path, seconds: float, rate: float
) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, database_url=url)
    assert settings.ledger_key_file is not None
    create_signer_file(settings.ledger_key_file, "bench-ledger")
    service = _TimedLedgerService(Database(url), settings)
    worker = LedgerWorker(service, settings.checkpoint_seconds, settings.ledger_audit_minutes)
    appender = Database(url)
    append_clock = _CommitClock(appender)
    committed: list[tuple[int, float]] = []  # (leaf index, commit time)
    worker.start()
    try:
        time.sleep(settings.checkpoint_seconds * 1.5)  # start-up self-audit, first tick
        start = time.perf_counter()
        n = 0
        while (due := start + n / rate) < start + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            with appender.transaction() as session:
                recorded = failed_login(district_id, n)
                SqlEventRecorder(session).record(recorded)
                index = ledger_sql.existing_index(session, recorded.id)
            assert index is not None
            committed.append((index, append_clock.last))
            n += 1
        achieved = n / (time.perf_counter() - start)
        last = committed[-1][0]
        give_up = time.perf_counter() + 10 * settings.checkpoint_seconds + 30
        while time.perf_counter() < give_up and not (
            service.signed and service.signed[-1][0] > last
        ):
            time.sleep(0.05)
    finally:
        worker.stop()
        service.database.dispose()
        appender.dispose()
    sizes = [size for size, _ in service.signed]
    latencies = []
    uncovered = 0
    for index, at in committed:
        first = bisect.bisect_right(sizes, index)  # first checkpoint with size > index
        if first == len(sizes):
            uncovered += 1
        else:
            latencies.append(service.signed[first][1] - at)
    return {
        "backend": "sqlite" if url.startswith("sqlite") else "postgresql",
        "interval_s": settings.checkpoint_seconds,
        "append_rate_per_s": achieved,
        "events": len(committed),
        "uncovered_events": uncovered,
        "checkpoints": len(service.signed),
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
        "min_s": min(latencies),
        "checkpoint_duration": summary_ms(service.durations),
    }
