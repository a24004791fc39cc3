"""Administration of the organisation: district, schools, users, roles, wearers.

Each change appends its audit event through the same session, so the caller commits
both together. `actor` is the pseudonym of whoever made the change (`cli` for the
command line)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts import throttle, totp
from app.accounts.models import RecoveryCode, WebSession
from app.accounts.passwords import WeakPassword, hash_password
from audit.adapters import ledger_sql
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType
from evidence.adapters.sql.org import District, RoleGrant, School, User, Wearer
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.policy import Principal
from evidence.roles import SCHOOL_BOUND_ROLES, Grant, Role

CLI_ACTOR = "cli"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_BADGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_pseudonym(prefix: str) -> str:
    """A random, meaningless id for the ledger: the person stays in the database only."""
    return f"{prefix}-{secrets.token_hex(12)}"


def _record(
    session: Session,
    kind: EventType,
    now: datetime,
    district_id: int | None,
    actor: str,
    subject: str | None,
    **details: object,
) -> None:
    SqlEventRecorder(session).record(
        AuditEvent(
            type=kind,
            occurred_at=now,
            district_id=district_id,
            actor=actor,
            subject=subject,
            details=dict(details),
        )
    )


def create_district(
    session: Session,
    code: str,
    name: str,
    *,
    actor: str,
    now: datetime,
    ledger_origin_prefix: str = ledger_sql.DEFAULT_ORIGIN_PREFIX,
) -> District:
    """Create a district with its custody log (and the service's log on first use)."""
    if not _CODE.match(code):
        raise InvalidInput("district code: letters, digits, - and _ only (up to 32)")
    if session.scalars(select(District).where(District.code == code)).first():
        raise Conflict(f"district {code} already exists")
    district = District(code=code, name=_clean_name(name, "district name"), created_at=now)
    session.add(district)
    session.flush()
    ledger_sql.ensure_log(
        session, None, ledger_sql.origin_for(ledger_origin_prefix, ledger_sql.SERVICE_LOG), now
    )
    ledger_sql.ensure_log(
        session, district.id, ledger_sql.origin_for(ledger_origin_prefix, code), now
    )
    _record(
        session,
        EventType.DISTRICT_CREATED,
        now,
        district.id,
        actor,
        f"district:{district.code}",
        name=district.name,
    )
    return district


def only_district(session: Session) -> District:
    """The district of a single-tenant install (the embedded default)."""
    districts = list(session.scalars(select(District).order_by(District.id).limit(2)))
    if not districts:
        raise NotFound("no district yet: run `bwc init`")
    if len(districts) > 1:
        raise InvalidInput("several districts exist: name one")
    return districts[0]


def create_school(
    session: Session, district: District, code: str, name: str, *, actor: str, now: datetime
) -> School:
    if not _CODE.match(code):
        raise InvalidInput("school code: letters, digits, - and _ only (up to 32)")
    if find_school(session, district.id, code) is not None:
        raise Conflict(f"school {code} already exists")
    school = School(
        district_id=district.id, code=code, name=_clean_name(name, "school name"), created_at=now
    )
    session.add(school)
    session.flush()
    _record(
        session,
        EventType.SCHOOL_CREATED,
        now,
        district.id,
        actor,
        f"school:{school.id}",
        code=code,
        name=school.name,
    )
    return school


def find_school(session: Session, district_id: int, code: str) -> School | None:
    return session.scalars(
        select(School).where(School.district_id == district_id, School.code == code)
    ).one_or_none()


def schools_of(session: Session, district_id: int) -> list[School]:
    return list(
        session.scalars(
            select(School).where(School.district_id == district_id).order_by(School.code)
        )
    )


def _clean_name(value: str, what: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > 200:
        raise InvalidInput(f"{what} must be 1 to 200 characters")
    return value


def create_user(
    session: Session,
    district: District,
    *,
    username: str,
    display_name: str,
    password: str,
    grants: Iterable[Grant],
    actor: str,
    now: datetime,
    totp_secret: str | None = None,
    badge: str | None = None,
) -> User:
    """Create an account with its role grants.

    A wearer grant links the account to a wearer record (badge), created if missing.
    With totp_secret the account is enrolled already (command line, demo data);
    otherwise the person enrols at first sign-in."""
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise InvalidInput("username: 2-63 of a-z 0-9 . _ -, starting with a letter or digit")
    grants = list(grants)
    if not grants:
        raise InvalidInput("a user needs at least one role")
    if session.scalars(select(User).where(User.username == username)).first():
        raise Conflict(f"user {username} already exists")
    if totp_secret is not None and not totp.is_valid_secret(totp_secret):
        raise InvalidInput("TOTP secret must be base32, at least 16 characters")
    try:
        password_hash = hash_password(password)
    except WeakPassword as exc:
        raise InvalidInput(str(exc)) from None
    user = User(
        district_id=district.id,
        username=username,
        display_name=_clean_name(display_name or username, "display name"),
        pseudonym=new_pseudonym("u"),
        password_hash=password_hash,
        totp_secret=totp_secret,
        totp_enrolled_at=now if totp_secret else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    _record(
        session,
        EventType.USER_CREATED,
        now,
        district.id,
        actor,
        f"user:{user.pseudonym}",
        username=username,
    )
    if totp_secret:
        _record(
            session,
            EventType.MFA_ENROLLED,
            now,
            district.id,
            actor,
            f"user:{user.pseudonym}",
            method="provisioned",
        )
    for grant in grants:
        grant_role(session, user, grant, actor=actor, now=now, badge=badge)
    return user


def grant_role(
    session: Session,
    user: User,
    grant: Grant,
    *,
    actor: str,
    now: datetime,
    badge: str | None = None,
) -> None:
    if grant.role in SCHOOL_BOUND_ROLES and grant.school_id is None:
        raise InvalidInput(f"the {grant.role} role needs a school")
    if grant.school_id is not None:
        school = session.get(School, grant.school_id)
        if school is None or school.district_id != user.district_id:
            raise NotFound("no such school")
    if grant in user.role_grants():
        raise Conflict(f"{user.username} already has that role")
    session.add(
        RoleGrant(user=user, role=grant.role.value, school_id=grant.school_id, granted_at=now)
    )
    if grant.role is Role.WEARER and grant.school_id is not None:
        _link_wearer(session, user, grant.school_id, badge or user.username.upper(), now)
    session.flush()
    _record(
        session,
        EventType.ROLE_GRANTED,
        now,
        user.district_id,
        actor,
        f"user:{user.pseudonym}",
        role=grant.role.value,
        school_id=grant.school_id,
    )


def _link_wearer(session: Session, user: User, school_id: int, badge: str, now: datetime) -> None:
    if session.scalars(select(Wearer).where(Wearer.user_id == user.id)).first():
        return
    if not _BADGE.match(badge):
        raise InvalidInput("badge: letters, digits, . _ - only (up to 64)")
    wearer = session.scalars(
        select(Wearer).where(Wearer.district_id == user.district_id, Wearer.badge == badge)
    ).one_or_none()
    if wearer is None:
        session.add(
            Wearer(
                district_id=user.district_id,
                school_id=school_id,
                badge=badge,
                display_name=user.display_name,
                user_id=user.id,
                created_at=now,
            )
        )
    elif wearer.user_id is None:
        wearer.user_id = user.id
    else:
        raise Conflict(f"badge {badge} belongs to another account")


def revoke_role(session: Session, user: User, grant: Grant, *, actor: str, now: datetime) -> None:
    for row in list(user.grants):
        if Role(row.role) is grant.role and row.school_id == grant.school_id:
            user.grants.remove(row)
            session.flush()
            _record(
                session,
                EventType.ROLE_REVOKED,
                now,
                user.district_id,
                actor,
                f"user:{user.pseudonym}",
                role=grant.role.value,
                school_id=grant.school_id,
            )
            return
    raise NotFound(f"{user.username} does not have that role")


def end_sessions(session: Session, user: User) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def disable_user(session: Session, user: User, *, actor: str, now: datetime) -> None:
    """Disable an account; its open sessions end at once (their rows are deleted)."""
    if user.disabled_at is not None:
        raise Conflict(f"{user.username} is already disabled")
    user.disabled_at = now
    end_sessions(session, user)
    _record(
        session, EventType.USER_DISABLED, now, user.district_id, actor, f"user:{user.pseudonym}"
    )


def enable_user(session: Session, user: User, *, actor: str, now: datetime) -> None:
    if user.disabled_at is None:
        raise Conflict(f"{user.username} is not disabled")
    user.disabled_at = None
    _record(session, EventType.USER_ENABLED, now, user.district_id, actor, f"user:{user.pseudonym}")


def unlock(session: Session, user: User, *, actor: str, now: datetime) -> bool:
    """Clear the account's failed sign-ins; True if it was locked."""
    was_locked = throttle.clear(session, throttle.account_key(user.username))
    _record(
        session,
        EventType.ACCOUNT_UNLOCKED,
        now,
        user.district_id,
        actor,
        f"user:{user.pseudonym}",
        scope="account",
        was_locked=was_locked,
    )
    return was_locked


def unlock_address(
    session: Session, district_id: int, address: str, *, actor: str, now: datetime
) -> bool:
    was_locked = throttle.clear(session, throttle.address_key(address))
    _record(
        session,
        EventType.ACCOUNT_UNLOCKED,
        now,
        district_id,
        actor,
        None,
        scope="address",
        address=address,
        was_locked=was_locked,
    )
    return was_locked


def reset_mfa(session: Session, user: User, *, actor: str, now: datetime) -> None:
    """Forget the user's authenticator and recovery codes; they enrol again at sign-in."""
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(session, user)
    _record(session, EventType.MFA_RESET, now, user.district_id, actor, f"user:{user.pseudonym}")


def principal_for(session: Session, user: User) -> Principal:
    wearer_ids = frozenset(session.scalars(select(Wearer.id).where(Wearer.user_id == user.id)))
    return Principal(
        user_id=user.id,
        district_id=user.district_id,
        grants=user.role_grants(),
        wearer_ids=wearer_ids,
    )


def users_of(session: Session, district_id: int) -> list[User]:
    return list(
        session.scalars(select(User).where(User.district_id == district_id).order_by(User.username))
    )
