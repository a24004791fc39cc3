"""Tables of docking: session reports, activation events from camera logs, alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence.adapters.sql.base import Base, UTCDateTime


class DockSession(Base):
    """One docking of one device, as the dock reported it (DESIGN.md §6 report)."""

    __tablename__ = "dock_sessions"
    __table_args__ = (UniqueConstraint("dock_id", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    dock_id: Mapped[int] = mapped_column(ForeignKey("docks.id"), index=True)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(64))
    device_serial: Mapped[str | None] = mapped_column(String(130))
    decision: Mapped[str] = mapped_column(String(32))
    alerts: Mapped[list[str]] = mapped_column(JSON, default=list)
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ActivationEvent(Base):
    """A recording decision from a camera's own log: start, stop, mute, sleep, power.

    Camera time is data; `corrected_time` applies the offset measured at that docking
    and is what analytics use."""

    __tablename__ = "activation_events"
    __table_args__ = (
        UniqueConstraint("camera_id", "seq"),
        Index("ix_activation_events_school_time", "school_id", "corrected_time"),
        # The item page's events around a recording: one camera, a time window.
        Index("ix_activation_events_camera_time", "camera_id", "corrected_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    wearer_id: Mapped[int | None] = mapped_column(ForeignKey("wearers.id"), index=True)
    dock_id: Mapped[int | None] = mapped_column(ForeignKey("docks.id"))
    evidence_id: Mapped[str | None] = mapped_column(ForeignKey("evidence_items.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(32))
    camera_time: Mapped[str] = mapped_column(String(40))
    corrected_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trigger: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """Something a person must look at: a refused device, a suspect volume, a tamper."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "district_id", "acknowledged_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"))
    dock_id: Mapped[int | None] = mapped_column(ForeignKey("docks.id"))
    kind: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
