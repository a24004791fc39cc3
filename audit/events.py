"""Audit events: what happened, who did it (by pseudonym), when, and the details.

An event is recorded in the same database transaction as the change it describes, so
either both are stored or neither is. Details may hold personal data (a username, a
client address, a stated purpose) and therefore stay in the database; the custody
ledger carries only a salted SHA-256 commitment to them. The salt matters: details are
often guessable (a username and an office address), and an unsalted hash of guessable
data would disclose it to anyone holding the public log."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import rfc8785


class EventType(StrEnum):
    LOGIN_SUCCEEDED = "auth.login_succeeded"
    LOGIN_FAILED = "auth.login_failed"
    LOGIN_THROTTLED = "auth.login_throttled"
    ACCOUNT_LOCKED = "auth.account_locked"
    ACCOUNT_UNLOCKED = "auth.account_unlocked"
    MFA_ENROLLED = "auth.mfa_enrolled"
    MFA_VERIFIED = "auth.mfa_verified"
    MFA_FAILED = "auth.mfa_failed"
    MFA_RECOVERY_CODE_USED = "auth.mfa_recovery_code_used"
    MFA_RESET = "auth.mfa_reset"
    RECOVERY_CODES_ISSUED = "auth.recovery_codes_issued"
    LOGOUT = "auth.logout"
    SESSION_EXPIRED = "auth.session_expired"
    USER_CREATED = "admin.user_created"
    USER_DISABLED = "admin.user_disabled"
    USER_ENABLED = "admin.user_enabled"
    ROLE_GRANTED = "admin.role_granted"
    ROLE_REVOKED = "admin.role_revoked"
    SCHOOL_CREATED = "admin.school_created"
    DISTRICT_CREATED = "admin.district_created"
    CAMERA_REGISTERED = "admin.camera_registered"
    CAMERA_ASSIGNED = "admin.camera_assigned"
    CAMERA_RETIRED = "admin.camera_retired"
    CAMERA_RESTORED = "admin.camera_restored"
    DOCK_CREATED = "admin.dock_created"
    DOCK_ENROLLED = "admin.dock_enrolled"
    DOCK_REVOKED = "admin.dock_revoked"
    CATEGORY_CREATED = "admin.category_created"
    CATEGORY_CHANGED = "admin.category_changed"
    CATEGORY_RETIRED = "admin.category_retired"
    CATEGORY_RESTORED = "admin.category_restored"
    # Custody of evidence items (each carries the item's id and media SHA-256).
    EVIDENCE_RECEIVED = "evidence.received"
    EVIDENCE_VERIFIED = "evidence.verified"
    EVIDENCE_STREAMED = "evidence.streamed"
    EVIDENCE_DOWNLOADED = "evidence.downloaded"
    EVIDENCE_EXPORTED = "evidence.exported"
    FIXITY_PASSED = "evidence.fixity_passed"
    FIXITY_FAILED = "evidence.fixity_failed"
    EVIDENCE_REKEYED = "evidence.rekeyed"
    EVIDENCE_TAGGED = "evidence.tagged"
    EVIDENCE_UNTAGGED = "evidence.untagged"
    EVIDENCE_CATEGORISED = "evidence.categorised"
    EVIDENCE_BOOKMARKED = "evidence.bookmarked"
    EVIDENCE_LINKED = "evidence.linked_to_incident"
    EVIDENCE_UNLINKED = "evidence.unlinked_from_incident"
    INCIDENT_CREATED = "incident.created"
    INCIDENT_CHANGED = "incident.changed"
    INCIDENT_CLOSED = "incident.closed"
    INCIDENT_REOPENED = "incident.reopened"
    # Derivatives (playback proxies): media SHA-256 is the derivative's own.
    DERIVATIVE_CREATED = "evidence.derivative_created"
    DERIVATIVE_VERIFIED = "evidence.derivative_verified"
    DERIVATIVE_FAILED = "evidence.derivative_failed"
    DERIVATIVE_FIXITY_PASSED = "evidence.derivative_fixity_passed"
    DERIVATIVE_FIXITY_FAILED = "evidence.derivative_fixity_failed"
    DERIVATIVE_REKEYED = "evidence.derivative_rekeyed"
    # Ingest refusals name no item: none was created.
    INGEST_REJECTED = "ingest.rejected"
    UPLOAD_EXPIRED = "ingest.upload_expired"
    CAMERA_WIPED = "evidence.camera_wiped"
    DOCK_SESSION = "dock.session_recorded"
    DEVICE_REFUSED = "dock.device_refused"
    CLOCK_OFFSET_MEASURED = "camera.clock_offset_measured"
    ACTIVATIONS_RECEIVED = "camera.activations_received"
    KEY_ROTATION_STARTED = "keys.rotation_started"
    KEY_ROTATION_COMPLETED = "keys.rotation_completed"


def new_event_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class AuditEvent:
    """One accountable action. `actor`, `device` and `subject` are pseudonyms, never names.

    `id` makes recording exactly-once: the ledger returns the original index when an
    event with the same id is appended again."""

    type: EventType
    occurred_at: datetime
    district_id: int | None
    actor: str | None = None
    subject: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    evidence_id: str | None = None
    media_sha256: str | None = None
    id: str = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("audit events need an aware (UTC) time")


def new_salt() -> str:
    return secrets.token_hex(16)


def details_commitment(details: dict[str, Any], salt: str) -> str:
    """SHA-256 over the canonical (RFC 8785) JSON of the salted details."""
    canonical = rfc8785.dumps({"details": details, "salt": salt})
    return hashlib.sha256(canonical).hexdigest()
