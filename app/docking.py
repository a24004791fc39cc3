"""What docks report beside the footage: sessions, activation logs, wipes, heartbeats.

Everything a dock sends is checked for form and size here; camera-supplied text is data
(stored, escaped when shown, never interpreted). Custody-relevant facts — a session's
decision, a refused device, the measured clock offset, a camera file wiped — are ledger
events in the same transaction as the rows they describe."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import rfc8785
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from app.custody import record_event
from app.declaration import UploadRefused
from app.devices import SERIAL, find_camera
from audit.events import EventType
from evidence.adapters.sql.docking import ActivationEvent, Alert, DockSession
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.org import Camera, Dock, Wearer

DECISIONS = ("accept", "accept_no_delete", "refuse")
ALERTS = (
    "device_refused",
    "volume_integrity_suspect",
    "possible_tamper",
    "custody_anomaly",
    "missing_recording",
    "clock_skew",
    "file_too_large",
    "source_changed_after_copy",
    "unexpected_content",
)
EVENTS = (
    "POWER_ON",
    "POWER_OFF",
    "RECORD_START",
    "RECORD_STOP",
    "MUTE",
    "UNMUTE",
    "SLEEP",
    "WAKE",
    "NOTICE",
    "DOCKED",
)
MAX_ENTRIES = 20_000
MAX_EVENTS = 50_000
CLOCK_TOLERANCE = timedelta(seconds=300)
_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_WORD = re.compile(r"^[a-z_]{1,40}$")
_RECORDING = re.compile(r"^[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9]{1,5}$")


def _bad(message: str) -> UploadRefused:
    return UploadRefused(400, "bad_report", message)


def _session_id(value: object) -> str:
    if not isinstance(value, str) or not _SESSION.match(value):
        raise _bad("session_id: 8-64 letters, digits, '-' or '_'")
    return value


def _time(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise _bad(f"{what} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{what} must be an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise _bad(f"{what} needs a UTC offset")
    return moment


def _offset(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 10**13:
        raise _bad("clock_offset_ms must be a whole number of milliseconds")
    return value


def registered_cameras(session: Session, dock: Dock) -> list[dict[str, Any]]:
    """The cameras a dock may offload: registered to its school and not retired."""
    rows = session.execute(
        select(Camera.serial, Camera.profile, Wearer.badge)
        .outerjoin(Wearer, Wearer.id == Camera.assigned_wearer_id)
        .where(Camera.school_id == dock.school_id, Camera.retired_at.is_(None))
        .order_by(Camera.serial)
    )
    return [{"serial": s, "profile": p, "wearer_badge": b} for s, p, b in rows]


def record_heartbeat(dock: Dock, body: object, now: datetime) -> None:
    """Keep the dock's latest state (bays, spool use, queue, last error) for the docks page."""
    if not isinstance(body, dict):
        raise _bad("a heartbeat is a JSON object")
    text = json.dumps(body, sort_keys=True)
    if len(text) > 16 * 1024:
        raise _bad("a heartbeat is limited to 16 KiB")
    dock.last_heartbeat_at = now
    dock.last_status = text


def record_session(session: Session, dock: Dock, body: object, now: datetime) -> DockSession:
    """Store a session report (idempotent per dock and session id) and raise its alerts."""
    if not isinstance(body, dict):
        raise _bad("a session report is a JSON object")
    session_id = _session_id(body.get("session_id"))
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise _bad(f"decision must be one of {', '.join(DECISIONS)}")
    alerts = body.get("alerts") or []
    if not isinstance(alerts, list) or not all(a in ALERTS for a in alerts):
        raise _bad("alerts must be words of the report vocabulary")
    entries = body.get("entries") or []
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise _bad(f"entries: a list of at most {MAX_ENTRIES}")
    device = body.get("device") if isinstance(body.get("device"), dict) else {}
    serial = device.get("serial") if isinstance(device.get("serial"), str) else None
    existing = session.scalars(
        select(DockSession).where(
            DockSession.dock_id == dock.id, DockSession.session_id == session_id
        )
    ).first()
    if existing is not None:
        return existing
    camera = find_camera(session, dock.district_id, serial) if serial else None
    offset = _offset(body.get("clock_offset_ms"))
    row = DockSession(
        district_id=dock.district_id,
        school_id=dock.school_id,
        dock_id=dock.id,
        camera_id=camera.id if camera else None,
        session_id=session_id,
        device_serial=serial[:130] if serial else None,
        decision=decision,
        alerts=sorted(set(alerts)),
        clock_offset_ms=offset,
        report=body,
        started_at=_time(body.get("started_at"), "started_at"),
        received_at=now,
    )
    session.add(row)
    session.flush()
    details = {
        "session_id": session_id,
        "decision": decision,
        "alerts": row.alerts,
        "serial": serial,
        "entries": len(entries),
    }
    kind = EventType.DEVICE_REFUSED if decision == "refuse" else EventType.DOCK_SESSION
    record_event(
        session,
        kind,
        now,
        dock.district_id,
        dock.pseudonym,
        device=dock.pseudonym,
        subject=f"dock:{dock.id}",
        **details,
    )
    if camera is not None and offset is not None:
        exceeds = abs(offset) > CLOCK_TOLERANCE.total_seconds() * 1000
        record_event(
            session,
            EventType.CLOCK_OFFSET_MEASURED,
            now,
            dock.district_id,
            dock.pseudonym,
            device=dock.pseudonym,
            subject=f"camera:{camera.id}",
            offset_ms=offset,
            exceeds_tolerance=exceeds,
            session_id=session_id,
        )
        if exceeds and "clock_skew" not in row.alerts:
            row.alerts = [*row.alerts, "clock_skew"]
    for kind_name in row.alerts:
        session.add(
            Alert(
                district_id=dock.district_id,
                school_id=dock.school_id,
                dock_id=dock.id,
                kind=kind_name,
                session_id=session_id,
                details={"serial": serial, "decision": decision},
                raised_at=now,
            )
        )
    return row


def record_activations(session: Session, dock: Dock, body: object, now: datetime) -> int:
    """Store a camera's activation events; returns how many were new.

    Idempotent on (camera, seq): a camera's log is posted again at every docking, and an
    event seen before is never replaced (a forged later line cannot rewrite it)."""
    if not isinstance(body, dict):
        raise _bad("activations are a JSON object")
    serial = body.get("camera_serial")
    if not isinstance(serial, str) or not SERIAL.fullmatch(serial):
        raise _bad("camera_serial is malformed")
    camera = find_camera(session, dock.district_id, serial)
    if camera is None or camera.school_id != dock.school_id:
        raise UploadRefused(403, "unregistered_camera", f"camera {serial} is not registered here")
    session_id = _session_id(body.get("session_id"))
    offset = _offset(body.get("clock_offset_ms")) or 0
    events = body.get("events")
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise _bad(f"events: a list of at most {MAX_EVENTS}")
    links = body.get("evidence") if isinstance(body.get("evidence"), dict) else {}
    known = set(
        session.scalars(select(ActivationEvent.seq).where(ActivationEvent.camera_id == camera.id))
    )
    added = 0
    for raw in events:
        if not isinstance(raw, dict):
            raise _bad("each event is an object")
        seq, name = raw.get("seq"), raw.get("event")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**62:
            raise _bad("event seq must be a non-negative whole number")
        if name not in EVENTS:
            raise _bad(f"unknown event {str(name)[:40]!r}")
        camera_time = _time(raw.get("t"), "event t")
        if seq in known:
            continue
        file_name = raw.get("file") if isinstance(raw.get("file"), str) else None
        if file_name is not None and not _RECORDING.match(file_name):
            file_name = None
        evidence_id = links.get(file_name) if file_name else None
        if evidence_id is not None and session.get(EvidenceItem, evidence_id) is None:
            evidence_id = None
        trigger, reason = raw.get("trigger"), raw.get("reason")
        session.add(
            ActivationEvent(
                district_id=dock.district_id,
                school_id=camera.school_id,
                camera_id=camera.id,
                wearer_id=camera.assigned_wearer_id,
                dock_id=dock.id,
                evidence_id=evidence_id,
                session_id=session_id,
                seq=seq,
                event=name,
                camera_time=str(raw.get("t"))[:40],
                corrected_time=camera_time - timedelta(milliseconds=offset)
                if camera_time
                else None,
                trigger=trigger if isinstance(trigger, str) and _WORD.match(trigger) else None,
                reason=reason[:200] if isinstance(reason, str) else None,
                file_name=file_name,
                received_at=now,
            )
        )
        known.add(seq)
        added += 1
    digest = hashlib.sha256(rfc8785.dumps(events)).hexdigest()
    record_event(
        session,
        EventType.ACTIVATIONS_RECEIVED,
        now,
        dock.district_id,
        dock.pseudonym,
        device=dock.pseudonym,
        subject=f"camera:{camera.id}",
        session_id=session_id,
        events=len(events),
        new=added,
        events_sha256=digest,
    )
    try:
        session.flush()
    except DbIntegrityError:
        raise UploadRefused(409, "conflict", "events were posted concurrently; retry") from None
    return added


def record_wipe(session: Session, dock: Dock, body: object, now: datetime) -> None:
    """A camera file left the camera after its verified receipt (rule 7): custody event."""
    if not isinstance(body, dict):
        raise _bad("a wipe report is a JSON object")
    evidence_id, sha = body.get("evidence_id"), body.get("sha256")
    item = session.get(EvidenceItem, evidence_id) if isinstance(evidence_id, str) else None
    if item is None or (item.dock_id != dock.id and item.school_id != dock.school_id):
        raise UploadRefused(404, "not_found", "no such evidence item")
    if sha != item.sha256:
        raise UploadRefused(409, "sha256_mismatch", "the wiped file's hash is not the item's")
    session_id = _session_id(body.get("session_id"))
    # One event per item and session however often the dock retries the report.
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bwc:wiped:{item.id}:{session_id}"))
    record_event(
        session,
        EventType.CAMERA_WIPED,
        now,
        item.district_id,
        dock.pseudonym,
        device=dock.pseudonym,
        subject=f"evidence:{item.id}",
        evidence_id=item.id,
        sha256=item.sha256,
        event_id=event_id,
        session_id=session_id,
    )
