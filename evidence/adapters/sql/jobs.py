"""Background jobs: one row per job, the truth about it whichever worker runs it.

Embedded, a thread in each service process polls this table; in production Redis (RQ)
carries job ids to worker processes. Either way a job runs once: a worker claims it by
moving it from `queued` to `running` in one conditional UPDATE."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from evidence.adapters.sql.base import Base, UTCDateTime

JOB_STATUSES = ("queued", "running", "done", "failed")
_STATUS_VALUES = ", ".join(f"'{s}'" for s in JOB_STATUSES)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_known"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_evidence_kind", "evidence_id", "kind"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    evidence_id: Mapped[str | None] = mapped_column(ForeignKey("evidence_items.id"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What went wrong, for the people who asked: never footage, keys or personal data.
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
