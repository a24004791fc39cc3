"""Registration of cameras and docks, and the credentials docks authenticate with.

Only SHA-256 hashes of enrolment tokens and dock credentials are stored: a copy of the
database lets nobody upload as a dock. Each change appends its audit event through the
caller's session."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.admin import new_pseudonym
from app.custody import record_event
from audit.events import EventType
from evidence.adapters.sql.org import Camera, District, Dock, School, Wearer
from evidence.errors import Conflict, InvalidInput, NotFound

#: The shape of a camera serial or a wearer badge, wherever one arrives.
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
KNOWN_PROFILES = ("bwc-msc/1",)
ENROLMENT_LIFETIME = timedelta(hours=24)
CREDENTIAL_PREFIX = "bwcd_"  # noqa: S105  (a prefix that makes leaked credentials greppable)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _record(
    session: Session,
    kind: EventType,
    now: datetime,
    district_id: int,
    actor: str,
    subject: str,
    **details: object,
) -> None:
    record_event(session, kind, now, district_id, actor, subject=subject, **details)


def register_camera(
    session: Session,
    district: District,
    school: School,
    serial: str,
    *,
    profile: str,
    actor: str,
    now: datetime,
    wearer_badge: str | None = None,
) -> Camera:
    """Register a camera to a school, assigned to a wearer or (no badge) pooled."""
    if not SERIAL.fullmatch(serial):
        raise InvalidInput("camera serial: letters, digits, '.', '-' and '_' only (up to 64)")
    if profile not in KNOWN_PROFILES:
        raise InvalidInput(
            f"unknown device profile {profile!r}; known: {', '.join(KNOWN_PROFILES)}"
        )
    if find_camera(session, district.id, serial) is not None:
        raise Conflict(f"camera {serial} is already registered")
    wearer_id = None
    if wearer_badge:
        wearer = session.scalars(
            select(Wearer).where(Wearer.district_id == district.id, Wearer.badge == wearer_badge)
        ).first()
        if wearer is None:
            raise NotFound(f"no wearer with badge {wearer_badge}")
        wearer_id = wearer.id
    camera = Camera(
        district_id=district.id,
        school_id=school.id,
        serial=serial,
        profile=profile,
        assigned_wearer_id=wearer_id,
        registered_at=now,
    )
    session.add(camera)
    session.flush()
    _record(
        session,
        EventType.CAMERA_REGISTERED,
        now,
        district.id,
        actor,
        f"camera:{camera.id}",
        serial=serial,
        school=school.code,
        profile=profile,
        wearer=wearer_badge,
    )
    return camera


def find_camera(session: Session, district_id: int, serial: str) -> Camera | None:
    return session.scalars(
        select(Camera).where(Camera.district_id == district_id, Camera.serial == serial)
    ).first()


def create_dock(
    session: Session, district: District, school: School, name: str, *, actor: str, now: datetime
) -> tuple[Dock, str]:
    """A new dock and its one-time enrolment token (valid 24 hours; only its hash is kept)."""
    if not _DOCK_NAME.match(name):
        raise InvalidInput("dock name: letters, digits, spaces, '.', '-' and '_' (up to 100)")
    exists = session.scalars(
        select(Dock).where(Dock.district_id == district.id, Dock.name == name)
    ).first()
    if exists is not None:
        raise Conflict(f"a dock named {name} exists")
    token = secrets.token_urlsafe(32)
    dock = Dock(
        district_id=district.id,
        school_id=school.id,
        name=name,
        pseudonym=new_pseudonym("d"),
        enrolment_token_hash=token_hash(token),
        enrolment_expires_at=now + ENROLMENT_LIFETIME,
        created_at=now,
    )
    session.add(dock)
    session.flush()
    _record(session, EventType.DOCK_CREATED, now, district.id, actor, f"dock:{dock.id}", name=name)
    return dock, token


def enrol_dock(session: Session, token: str, *, now: datetime) -> tuple[Dock, str]:
    """Exchange a one-time enrolment token for the dock's credential (shown once)."""
    dock = session.scalars(
        select(Dock).where(Dock.enrolment_token_hash == token_hash(token))
    ).first()
    if (
        dock is None
        or dock.revoked_at is not None
        or dock.enrolment_expires_at is None
        or dock.enrolment_expires_at < now
    ):
        raise NotFound("unknown, used or expired enrolment token")
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    dock.credential_hash = token_hash(credential)
    dock.enrolment_token_hash = None
    dock.enrolment_expires_at = None
    dock.enrolled_at = now
    _record(
        session, EventType.DOCK_ENROLLED, now, dock.district_id, dock.pseudonym, f"dock:{dock.id}"
    )
    return dock, credential


def dock_for_credential(session: Session, credential: str) -> Dock | None:
    """The enrolled, unrevoked dock holding credential, or None."""
    if not credential.startswith(CREDENTIAL_PREFIX) or len(credential) > 200:
        return None
    dock = session.scalars(
        select(Dock).where(Dock.credential_hash == token_hash(credential))
    ).first()
    if dock is None or dock.revoked_at is not None:
        return None
    return dock


def revoke_dock(session: Session, dock: Dock, *, actor: str, now: datetime) -> None:
    """Stop a dock's uploads at once; its credential is never accepted again."""
    if dock.revoked_at is None:
        dock.revoked_at = now
        dock.credential_hash = None
        dock.enrolment_token_hash = None
        _record(session, EventType.DOCK_REVOKED, now, dock.district_id, actor, f"dock:{dock.id}")
