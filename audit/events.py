"""Audit events: what happened, who did it (by pseudonym), when, and the details.

An event is recorded in the same database transaction as the change it describes, so
either both are stored or neither is. Details may hold personal data (a username, a
client address) and therefore stay in the database; the custody ledger will carry
only a SHA-256 commitment to them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True)
class AuditEvent:
    """One accountable action. `actor` and `subject` are pseudonyms, never names."""

    type: EventType
    occurred_at: datetime
    district_id: int | None
    actor: str | None = None
    subject: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("audit events need an aware (UTC) time")

    def details_commitment(self) -> str:
        """SHA-256 of the canonical details: what the ledger will publish instead of them."""
        canonical = json.dumps(self.details, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
