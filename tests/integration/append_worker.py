"""A separate process that appends custody events, for concurrency and crash tests.

Usage: python -m tests.integration.append_worker URL DISTRICT_ID COUNT [--hang-mid-append]

Prints "committed N" after each commit. With --hang-mid-append, after COUNT commits it
begins one more append, writes its leaf, prints "mid-append" and waits to be killed."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import app.models  # noqa: F401  (registers every table)
from app.db import Database
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType


def main() -> None:
    url, district_id, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hang = "--hang-mid-append" in sys.argv
    database = Database(url)
    for n in range(count):
        with database.transaction() as session:
            SqlEventRecorder(session).record(
                AuditEvent(EventType.LOGIN_FAILED, datetime.now(UTC), district_id, details={"n": n})
            )
        print(f"committed {n + 1}", flush=True)
    if hang:
        with database.transaction() as session:
            SqlEventRecorder(session).record(
                AuditEvent(EventType.LOGIN_FAILED, datetime.now(UTC), district_id)
            )
            session.flush()
            print("mid-append", flush=True)
            time.sleep(600)
    database.dispose()


if __name__ == "__main__":
    main()
