"""Background upkeep of the vault in every service process: expiring abandoned uploads.

Each process may run it; they coordinate through the database (an upload expires once,
in one transaction), so scaling out needs no leader. Production's Redis workers take
the same jobs when they arrive with the job queue."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.custody import record_event
from app.db import Database
from app.staging import Staging
from audit.events import EventType
from evidence.adapters.sql.vault import Upload

logger = logging.getLogger(__name__)
EXPIRY_SWEEP_SECONDS = 600.0


class MaintenanceWorker:
    def __init__(
        self, database: Database, staging: Staging, interval: float = EXPIRY_SWEEP_SECONDS
    ) -> None:
        self.database = database
        self.staging = staging
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vault-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep(self) -> int:
        expired = expire_uploads(self.database, self.staging, datetime.now(UTC))
        if expired:
            logger.info("expired %d abandoned upload(s) and removed their bytes", expired)
        return expired

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except (DBAPIError, OSError) as exc:
                logger.warning("upload expiry sweep failed (will retry): %s", exc)


def expire_uploads(database: Database, staging: Staging, now: datetime) -> int:
    """Expire uploads with no progress past their deadline and remove their bytes."""
    with database.transaction() as session:
        stale = list(
            session.scalars(
                select(Upload).where(Upload.status == "receiving", Upload.expires_at < now)
            )
        )
        for upload in stale:
            upload.status, upload.reason, upload.dock_wrapped_key = "expired", "expired", None
            upload.completed_at = now
            record_event(
                session,
                EventType.UPLOAD_EXPIRED,
                now,
                upload.district_id,
                "system",
                subject=f"upload:{upload.id}",
                sha256=upload.plaintext_sha256,
                received=upload.upload_offset,
                length=upload.length,
            )
    for upload in stale:
        staging.remove(upload.id)
    return len(stale)
