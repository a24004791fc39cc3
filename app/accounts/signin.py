"""Signing in: password, then TOTP or a recovery code, with throttling and audit events.

Every outcome appends an audit event through the caller's session, so the event commits
with the counter changes it explains. Messages shown to the person never say whether a
username exists: unknown usernames are throttled and timed exactly like known ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import throttle, totp
from app.accounts.models import RecoveryCode
from app.accounts.passwords import verify_password
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType
from evidence.adapters.sql.org import User


class Outcome(Enum):
    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"


@dataclass(frozen=True)
class Policy:
    account: throttle.Limits
    address: throttle.Limits


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: User | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


_RECOVERY_SHAPE = re.compile(r"^[A-Za-z0-9]{4}(-?[A-Za-z0-9]{4}){3}$")


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).one_or_none()


def _record(
    session: Session, kind: EventType, now: datetime, user: User | None, **details: object
) -> None:
    SqlEventRecorder(session).record(
        AuditEvent(
            type=kind,
            occurred_at=now,
            district_id=user.district_id if user else None,
            actor=user.pseudonym if user else None,
            subject=f"user:{user.pseudonym}" if user else None,
            details=dict(details),
        )
    )


def _locked(session: Session, username: str, address: str | None, now: datetime) -> bool:
    return bool(
        throttle.locked_until(session, throttle.account_key(username), now)
        or throttle.locked_until(session, throttle.address_key(address), now)
    )


def _fail(
    session: Session,
    policy: Policy,
    username: str,
    user: User | None,
    address: str | None,
    now: datetime,
    kind: EventType,
    reason: str,
) -> Attempt:
    _record(session, kind, now, user, username=username[:64], address=address, reason=reason)
    if throttle.record_failure(session, throttle.account_key(username), policy.account, now):
        _record(
            session,
            EventType.ACCOUNT_LOCKED,
            now,
            user,
            username=username[:64],
            scope="account",
            address=address,
        )
    if throttle.record_failure(session, throttle.address_key(address), policy.address, now):
        _record(session, EventType.ACCOUNT_LOCKED, now, None, scope="address", address=address)
    return Attempt(Outcome.INVALID)


def check_password(
    session: Session,
    policy: Policy,
    *,
    username: str,
    password: str,
    address: str | None,
    now: datetime,
) -> Attempt:
    """First factor. OK means "ask for the second factor", not "signed in"."""
    user = find_user(session, username)
    if _locked(session, username, address, now):
        _record(
            session, EventType.LOGIN_THROTTLED, now, user, username=username[:64], address=address
        )
        return Attempt(Outcome.LOCKED)
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        return _fail(
            session, policy, username, None, address, now, EventType.LOGIN_FAILED, "unknown_user"
        )
    if not password_ok:
        return _fail(
            session, policy, username, user, address, now, EventType.LOGIN_FAILED, "bad_password"
        )
    if not user.active:
        return _fail(
            session, policy, username, user, address, now, EventType.LOGIN_FAILED, "disabled"
        )
    # The account counter is cleared only after the second factor: clearing it here
    # would let someone holding the password guess TOTP codes forever.
    return Attempt(Outcome.OK, user)


def check_second_factor(
    session: Session, policy: Policy, *, user: User, code: str, address: str | None, now: datetime
) -> Attempt:
    """Second factor: a TOTP code, or one of the user's unused recovery codes."""
    if _locked(session, user.username, address, now):
        _record(session, EventType.LOGIN_THROTTLED, now, user, address=address, stage="mfa")
        return Attempt(Outcome.LOCKED)
    if not user.active or user.totp_secret is None:
        return _fail(
            session,
            policy,
            user.username,
            user,
            address,
            now,
            EventType.MFA_FAILED,
            "not_enrolled_or_disabled",
        )
    step = totp.accept_code(user.totp_secret, code, last_step=user.totp_last_step, now=now)
    if step is not None:
        user.totp_last_step = step
        _record(session, EventType.MFA_VERIFIED, now, user, method="totp", address=address)
        return _signed_in(session, user, address, now)
    if _RECOVERY_SHAPE.match(code.strip()):
        row = session.scalars(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_sha256 == totp.recovery_code_digest(code),
                RecoveryCode.used_at.is_(None),
            )
        ).one_or_none()
        if row is not None:
            row.used_at = now
            _record(session, EventType.MFA_RECOVERY_CODE_USED, now, user, address=address)
            return _signed_in(session, user, address, now)
    return _fail(
        session, policy, user.username, user, address, now, EventType.MFA_FAILED, "bad_code"
    )


def enrol_totp(
    session: Session,
    policy: Policy,
    *,
    user: User,
    secret: str,
    code: str,
    address: str | None,
    now: datetime,
) -> Attempt:
    """Finish TOTP enrolment: the user proves their authenticator holds secret."""
    if _locked(session, user.username, address, now):
        return Attempt(Outcome.LOCKED)
    step = totp.accept_code(secret, code, last_step=None, now=now)
    if step is None:
        return _fail(
            session,
            policy,
            user.username,
            user,
            address,
            now,
            EventType.MFA_FAILED,
            "bad_enrolment_code",
        )
    user.totp_secret = secret
    user.totp_enrolled_at = now
    user.totp_last_step = step
    _record(session, EventType.MFA_ENROLLED, now, user, address=address)
    return _signed_in(session, user, address, now)


def _signed_in(session: Session, user: User, address: str | None, now: datetime) -> Attempt:
    throttle.clear(session, throttle.account_key(user.username))
    _record(session, EventType.LOGIN_SUCCEEDED, now, user, address=address)
    return Attempt(Outcome.OK, user)


def issue_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    """Replace the user's recovery codes; the plain codes are returned once, never stored."""
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(old)
    codes = totp.new_recovery_codes()
    for code in codes:
        session.add(
            RecoveryCode(
                user_id=user.id, code_sha256=totp.recovery_code_digest(code), created_at=now
            )
        )
    _record(session, EventType.RECOVERY_CODES_ISSUED, now, user, count=len(codes))
    return codes


def remaining_recovery_codes(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def record_logout(session: Session, user: User, now: datetime, *, reason: str) -> None:
    kind = EventType.LOGOUT if reason == "logout" else EventType.SESSION_EXPIRED
    _record(session, kind, now, user, reason=reason)
