"""Background jobs: queueing, claiming and running them, in-process or on RQ workers.

The `jobs` table is the truth about every job. Embedded, a thread in each service
process polls it (and is woken at once by work queued in the same process); with
`BWC_REDIS_URL` set, job ids also go to Redis and `bwc worker` processes (RQ) run them.
Both paths claim a job with one conditional UPDATE, so a job runs once even when a
process polls and a worker receives it at the same time. A job left `running` by a
crashed worker is queued again after `STALE_AFTER`."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import Database
from app.settings import Settings
from app.vault import Vault
from evidence.adapters.sql.jobs import Job
from evidence.errors import EvidenceError

logger = logging.getLogger(__name__)

PLAYBACK_PROXY = "playback_proxy"
#: kind -> "module:function" taking (JobContext, Job) and returning the job's result.
HANDLERS = {PLAYBACK_PROXY: "app.proxies:make_playback_proxy"}
POLL_SECONDS = 5.0
STALE_AFTER = timedelta(hours=2)
RQ_QUEUE = "bwc"
RQ_TIMEOUT_SECONDS = int(STALE_AFTER.total_seconds())
_MAX_ERROR = 500


class JobFailed(EvidenceError):
    """The job cannot succeed as asked; its message is shown to the people who asked."""


@dataclass
class JobContext:
    """What a job needs: the database, the vault and the settings of its process."""

    settings: Settings
    database: Database
    vault: Vault
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Dispatcher(Protocol):
    def submit(self, job_id: str) -> None: ...


def enqueue(
    session: Session,
    kind: str,
    *,
    district_id: int,
    now: datetime,
    evidence_id: str | None = None,
    requested_by: int | None = None,
) -> Job:
    """Queue a job in the caller's transaction; submit its id once that commits."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    job = Job(
        id=str(uuid.uuid4()),
        kind=kind,
        district_id=district_id,
        evidence_id=evidence_id,
        status="queued",
        attempts=0,
        requested_by=requested_by,
        created_at=now,
        result={},
    )
    session.add(job)
    session.flush()
    return job


def latest(session: Session, kind: str, evidence_id: str) -> Job | None:
    return session.scalars(
        select(Job)
        .where(Job.kind == kind, Job.evidence_id == evidence_id)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(1)
    ).first()


def claim(database: Database, job_id: str, now: datetime) -> bool:
    """Move a queued job to running; False if someone else has it (or it is gone)."""
    with database.transaction() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(status="running", started_at=now, attempts=Job.attempts + 1)
        )
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


def run_claimed(ctx: JobContext, job_id: str) -> str:
    """Run a job this process claimed and record how it ended; returns its status."""
    with ctx.database.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            return "gone"
        session.expunge(job)
    module_name, _, name = HANDLERS[job.kind].partition(":")
    handler = getattr(importlib.import_module(module_name), name)
    status, error = "done", None
    result: dict[str, object] = {}
    try:
        result = handler(ctx, job) or {}
    except JobFailed as exc:
        status, error = "failed", str(exc)[:_MAX_ERROR]
        logger.warning("job %s (%s) failed: %s", job.id, job.kind, error)
    except Exception:  # a job's bug must not kill the worker; it is recorded and shown
        logger.exception("job %s (%s) crashed", job.id, job.kind)
        status, error = (
            "failed",
            "the job stopped on an internal error; an administrator can see the log",
        )
    with ctx.database.transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=status, error=error, result=result, finished_at=ctx.clock())
        )
    return status


def queued_ids(database: Database, limit: int = 10) -> list[str]:
    with database.sessions() as session:
        return list(
            session.scalars(
                select(Job.id).where(Job.status == "queued").order_by(Job.created_at).limit(limit)
            )
        )


def requeue_stale(database: Database, now: datetime) -> int:
    """Queue again the jobs a crashed worker left running."""
    with database.transaction() as session:
        stale = session.execute(
            update(Job)
            .where(Job.status == "running", Job.started_at < now - STALE_AFTER)
            .values(status="queued")
        )
        return int(stale.rowcount)  # type: ignore[attr-defined]


def work_once(ctx: JobContext) -> int:
    """Claim and run every job queued now; returns how many this process ran."""
    ran = 0
    for job_id in queued_ids(ctx.database):
        if claim(ctx.database, job_id, ctx.clock()):
            run_claimed(ctx, job_id)
            ran += 1
    return ran


class InProcessWorker:
    """The embedded worker: one thread per service process, polling and woken on submit."""

    def __init__(self, ctx: JobContext, poll_seconds: float = POLL_SECONDS) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def submit(self, job_id: str) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                requeue_stale(self.ctx.database, self.ctx.clock())
                while work_once(self.ctx):
                    if self._stop.is_set():
                        return
            except (DBAPIError, OSError) as exc:
                logger.warning("job worker: %s (will retry)", exc)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()


class NoDispatch:
    """Queued jobs wait for a polling worker (another process's in-process worker)."""

    def submit(self, job_id: str) -> None:
        return None


class RqDispatcher:
    """Send job ids to Redis for `bwc worker` processes (RQ)."""

    def __init__(self, redis_url: str, queue: str = RQ_QUEUE) -> None:
        from redis import Redis
        from rq import Queue

        self.queue = Queue(queue, connection=Redis.from_url(redis_url))

    def submit(self, job_id: str) -> None:
        self.queue.enqueue(
            "app.jobs.rq_entry", job_id, job_id=f"bwc-{job_id}", job_timeout=RQ_TIMEOUT_SECONDS
        )


def build_dispatcher(settings: Settings, worker: InProcessWorker | None) -> Dispatcher:
    if settings.redis_url:
        return RqDispatcher(settings.redis_url)
    return worker or NoDispatch()


def submit_after_commit(dispatcher: Dispatcher | None, job_ids: list[str]) -> None:
    """Hand committed jobs to the dispatcher; a failure leaves them queued for a poll."""
    if dispatcher is None:
        return
    for job_id in job_ids:
        try:
            dispatcher.submit(job_id)
        except Exception as exc:  # Redis down: the job stays queued and is picked up later
            logger.warning("could not dispatch job %s (it stays queued): %s", job_id, exc)


# --- RQ worker processes ---------------------------------------------------------

_served: dict[str, Any] = {}


def serve_context(ctx: JobContext) -> None:
    """Make ctx the context `rq_entry` uses in this process (and its forked children)."""
    _served["ctx"], _served["pid"] = ctx, os.getpid()


def rq_entry(job_id: str) -> str:
    """What RQ runs: claim the job by id and run it (a no-op if it ran elsewhere)."""
    ctx = _served.get("ctx")
    if ctx is None:
        settings = Settings.from_env()
        ctx = JobContext(settings, Database(settings.database_url), Vault(settings))
        serve_context(ctx)
    elif _served.get("pid") != os.getpid():
        ctx.database.engine.dispose(close=False)  # a forked work horse: fresh connections
        _served["pid"] = os.getpid()
    if not claim(ctx.database, job_id, ctx.clock()):
        return "not-claimed"
    return run_claimed(ctx, job_id)


def run_rq_worker(ctx: JobContext, *, burst: bool = False) -> None:
    """`bwc worker`: run RQ jobs from Redis until stopped (or the queue is empty)."""
    from redis import Redis
    from rq import Queue, Worker

    serve_context(ctx)
    connection = Redis.from_url(ctx.settings.redis_url)
    requeue_stale(ctx.database, ctx.clock())
    for job_id in queued_ids(ctx.database, limit=1000):  # queued while Redis was away
        RqDispatcher(ctx.settings.redis_url).submit(job_id)
    Worker([Queue(RQ_QUEUE, connection=connection)], connection=connection).work(burst=burst)
