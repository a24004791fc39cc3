"""Cameras and docks as administrators see them: assignment, and each dock's live state.

Registration, dock creation, enrolment and revocation live in app/devices.py; this adds
re-assigning a camera to a wearer or the school's pool (a custody-relevant change: later
footage from it is attributed to that wearer) and reading a dock's status from its
heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.custody import record_event
from audit.events import EventType
from evidence.adapters.sql.org import Camera, Dock, User, Wearer
from evidence.errors import InvalidInput

#: A dock whose last heartbeat is older than this is shown as offline.
ONLINE_WITHIN = timedelta(minutes=5)


def assign_camera(
    session: Session, camera: Camera, wearer_id: int | None, user: User, now: datetime
) -> None:
    """Assign the camera to a wearer of its own school, or to the pool (None)."""
    wearer = None
    if wearer_id is not None:
        wearer = session.get(Wearer, wearer_id)
        if wearer is None or wearer.school_id != camera.school_id:
            raise InvalidInput("choose a wearer of the camera's school, or the pool")
    if camera.assigned_wearer_id == (wearer.id if wearer else None):
        return
    camera.assigned_wearer_id = wearer.id if wearer else None
    record_event(
        session,
        EventType.CAMERA_ASSIGNED,
        now,
        camera.district_id,
        user.pseudonym,
        subject=f"camera:{camera.id}",
        serial=camera.serial,
        wearer=wearer.badge if wearer else None,
    )


def retire_camera(session: Session, camera: Camera, user: User, now: datetime) -> None:
    """Take a camera out of service (lost, broken, replaced): docks refuse it from now
    on, and alert; its footage stays as it is."""
    if camera.retired_at is not None:
        return
    camera.retired_at = now
    _camera_event(session, EventType.CAMERA_RETIRED, camera, user, now)


def restore_camera(session: Session, camera: Camera, user: User, now: datetime) -> None:
    if camera.retired_at is None:
        return
    camera.retired_at = None
    _camera_event(session, EventType.CAMERA_RESTORED, camera, user, now)


def _camera_event(
    session: Session, kind: EventType, camera: Camera, user: User, now: datetime
) -> None:
    record_event(
        session,
        kind,
        now,
        camera.district_id,
        user.pseudonym,
        subject=f"camera:{camera.id}",
        serial=camera.serial,
    )


@dataclass(frozen=True)
class DockState:
    label: str  # online | offline | awaiting enrolment | enrolment expired | revoked
    detail: str


def dock_state(dock: Dock, now: datetime) -> DockState:
    if dock.revoked_at is not None:
        return DockState("revoked", f"revoked {dock.revoked_at:%Y-%m-%d %H:%M} UTC")
    if dock.enrolled_at is None:
        expires = dock.enrolment_expires_at
        if expires is None or expires < now:
            return DockState("enrolment expired", "revoke it and add the dock again")
        return DockState("awaiting enrolment", f"token valid until {expires:%Y-%m-%d %H:%M} UTC")
    seen = dock.last_heartbeat_at
    if seen is None:
        return DockState("offline", "enrolled, no heartbeat yet")
    ago = now - seen
    minutes = int(ago.total_seconds() // 60)
    when = "just now" if minutes < 1 else f"{minutes} min ago"
    if ago <= ONLINE_WITHIN:
        return DockState("online", f"last heartbeat {when}")
    return DockState("offline", f"last heartbeat {seen:%Y-%m-%d %H:%M} UTC")
