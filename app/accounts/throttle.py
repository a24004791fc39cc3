"""Counting failed sign-ins per account and per client address, and locking them out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.models import LoginThrottle


@dataclass(frozen=True)
class Limits:
    threshold: int
    lock_for: timedelta


def account_key(username: str) -> str:
    return "account:" + username.strip().lower()[:180]


def address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:180]


def locked_until(session: Session, key: str, now: datetime) -> datetime | None:
    row = session.get(LoginThrottle, key)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


def record_failure(session: Session, key: str, limits: Limits, now: datetime) -> bool:
    """Count one failure for key; True when this failure just locked it.

    Failures older than the lock period no longer count, so an occasional typo
    never accumulates into a lockout."""
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now, locked_until=None)
        session.add(row)
    if now - row.window_started_at > limits.lock_for:
        row.failures = 0
        row.window_started_at = now
    row.failures += 1
    if row.failures >= limits.threshold and (row.locked_until is None or row.locked_until <= now):
        row.locked_until = now + limits.lock_for
        return True
    return False


def clear(session: Session, key: str) -> bool:
    """Forget failures for key (successful sign-in, admin unlock); True if it was locked."""
    row = session.get(LoginThrottle, key)
    was_locked = row is not None and row.locked_until is not None
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
    return was_locked


def locked_keys(session: Session, now: datetime) -> list[LoginThrottle]:
    return list(
        session.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.locked_until > now)
            .order_by(LoginThrottle.key)
        )
    )
