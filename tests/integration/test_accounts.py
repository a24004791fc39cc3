"""User administration and sign-in on both databases, with their audit events."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import admin as accounts
from app.accounts import signin, throttle
from app.accounts.models import RecoveryCode, WebSession
from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.org import District, School, User, Wearer
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.roles import Grant, Role

from .conftest import NOW

PASSWORD = "a long enough password"
POLICY = signin.Policy(
    account=throttle.Limits(3, timedelta(minutes=15)),
    address=throttle.Limits(5, timedelta(minutes=15)),
)


def events(session: Session, kind: str | None = None) -> list[AuditEventRow]:
    query = select(AuditEventRow).order_by(AuditEventRow.occurred_at)
    if kind:
        query = query.where(AuditEventRow.type == kind)
    return list(session.scalars(query))


def make_user(
    session: Session,
    district: District,
    school: School | None,
    role: Role,
    name: str = "sam",
    secret: str | None = None,
) -> User:
    user = accounts.create_user(
        session,
        district,
        username=name,
        display_name=name.title(),
        password=PASSWORD,
        grants=[Grant(role, school.id if school else None)],
        actor="cli",
        now=NOW,
        totp_secret=secret,
    )
    session.commit()
    return user


def test_creating_a_user_records_creation_and_grants_in_one_transaction(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    user = make_user(session, district, north, Role.WEARER)
    assert user.pseudonym.startswith("u-") and "sam" not in user.pseudonym
    types = [e.type for e in events(session) if e.subject == f"user:{user.pseudonym}"]
    assert types == ["admin.user_created", "admin.role_granted"]
    wearer = session.scalars(select(Wearer).where(Wearer.user_id == user.id)).one()
    assert wearer.badge == "SAM" and wearer.school_id == north.id
    principal = accounts.principal_for(session, user)
    assert principal.wearer_ids == {wearer.id}
    assert principal.grants == {Grant(Role.WEARER, north.id)}


def test_failed_change_leaves_neither_change_nor_event(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    before = len(events(session))
    with pytest.raises(InvalidInput):
        accounts.create_user(
            session,
            district,
            username="x!",
            display_name="X",
            password=PASSWORD,
            grants=[Grant(Role.WEARER, north.id)],
            actor="cli",
            now=NOW,
        )
    session.rollback()
    accounts.create_user(
        session,
        district,
        username="rolled",
        display_name="R",
        password=PASSWORD,
        grants=[Grant(Role.RECORDS)],
        actor="cli",
        now=NOW,
    )
    session.rollback()
    assert len(events(session)) == before
    assert signin.find_user(session, "rolled") is None


def test_duplicate_username_and_bad_grants_are_refused(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    make_user(session, district, north, Role.SUPERVISOR)
    with pytest.raises(Conflict):
        make_user(session, district, north, Role.SUPERVISOR)
    session.rollback()
    with pytest.raises(InvalidInput, match="needs a school"):
        make_user(session, district, None, Role.SUPERVISOR, name="nosch")
    session.rollback()
    with pytest.raises(NotFound):
        accounts.create_user(
            session,
            district,
            username="ghost",
            display_name="G",
            password=PASSWORD,
            grants=[Grant(Role.WEARER, 99999)],
            actor="cli",
            now=NOW,
        )


def test_role_grant_and_revoke_are_recorded(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, south = schools
    user = make_user(session, district, north, Role.SUPERVISOR)
    accounts.grant_role(session, user, Grant(Role.SUPERVISOR, south.id), actor="cli", now=NOW)
    accounts.revoke_role(session, user, Grant(Role.SUPERVISOR, north.id), actor="cli", now=NOW)
    session.commit()
    assert user.role_grants() == {Grant(Role.SUPERVISOR, south.id)}
    revoked = events(session, "admin.role_revoked")
    assert revoked[-1].actor == "cli" and revoked[-1].details["school_id"] == north.id


def test_disabling_a_user_ends_their_sessions(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    user = make_user(session, district, north, Role.SUPERVISOR)
    session.add(
        WebSession(
            id_sha256="0" * 64,
            user_id=user.id,
            data={"user_id": user.id},
            created_at=NOW,
            last_seen_at=NOW,
            expires_at=NOW + timedelta(hours=1),
        )
    )
    session.commit()
    accounts.disable_user(session, user, actor="cli", now=NOW)
    session.commit()
    assert session.scalar(select(func.count()).select_from(WebSession)) == 0
    assert not user.active
    assert events(session, "admin.user_disabled")[-1].subject == f"user:{user.pseudonym}"
    with pytest.raises(Conflict):
        accounts.disable_user(session, user, actor="cli", now=NOW)


def test_wrong_password_is_counted_and_recorded_without_the_password(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    make_user(session, district, north, Role.SUPERVISOR)
    attempt = signin.check_password(
        session, POLICY, username="sam", password="wrong guess!", address="10.0.0.1", now=NOW
    )
    session.commit()
    assert attempt.outcome is signin.Outcome.INVALID
    failed = events(session, "auth.login_failed")[-1]
    assert failed.details["reason"] == "bad_password"
    assert "wrong guess!" not in str(failed.details)


def test_lockout_after_threshold_then_admin_unlock(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    user = make_user(session, district, north, Role.SUPERVISOR)
    for _ in range(POLICY.account.threshold):
        signin.check_password(
            session, POLICY, username="sam", password="nope nope nope", address="10.0.0.2", now=NOW
        )
    session.commit()
    assert len(events(session, "auth.account_locked")) == 1
    # Even the right password is refused while locked.
    locked = signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="10.0.0.3", now=NOW
    )
    assert locked.outcome is signin.Outcome.LOCKED
    assert accounts.unlock(session, user, actor="cli", now=NOW) is True
    session.commit()
    ok = signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="10.0.0.3", now=NOW
    )
    assert ok.ok and ok.user is not None and ok.user.id == user.id


def test_lock_expires_on_its_own(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    make_user(session, district, north, Role.SUPERVISOR)
    for _ in range(POLICY.account.threshold):
        signin.check_password(
            session, POLICY, username="sam", password="nope nope nope", address="10.0.0.2", now=NOW
        )
    later = NOW + POLICY.account.lock_for + timedelta(seconds=1)
    assert signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="10.0.0.9", now=later
    ).ok


def test_unknown_usernames_lock_exactly_like_known_ones(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    make_user(session, district, north, Role.SUPERVISOR)
    outcomes = {}
    for name in ("sam", "nobody-here"):
        results = [
            signin.check_password(
                session,
                POLICY,
                username=name,
                password="bad password 1",
                address=f"10.1.0.{i}",
                now=NOW,
            ).outcome
            for i in range(POLICY.account.threshold + 1)
        ]
        outcomes[name] = results
    assert outcomes["sam"] == outcomes["nobody-here"]
    assert outcomes["sam"][-1] is signin.Outcome.LOCKED


def test_address_throttle_spans_usernames(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    make_user(session, district, north, Role.SUPERVISOR)
    for i in range(POLICY.address.threshold):
        signin.check_password(
            session,
            POLICY,
            username=f"spray{i}",
            password="bad password 1",
            address="192.0.2.7",
            now=NOW,
        )
    blocked = signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="192.0.2.7", now=NOW
    )
    assert blocked.outcome is signin.Outcome.LOCKED
    elsewhere = signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="192.0.2.8", now=NOW
    )
    assert elsewhere.ok
    accounts.unlock_address(session, district.id, "192.0.2.7", actor="cli", now=NOW)
    assert signin.check_password(
        session, POLICY, username="sam", password=PASSWORD, address="192.0.2.7", now=NOW
    ).ok


def test_second_factor_totp_recovery_code_and_events(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    secret = pyotp.random_base32()
    user = make_user(session, district, north, Role.SUPERVISOR, secret=secret)
    codes = signin.issue_recovery_codes(session, user, NOW)
    session.commit()
    good = signin.check_second_factor(
        session, POLICY, user=user, code=pyotp.TOTP(secret).at(NOW), address="10.0.0.1", now=NOW
    )
    assert good.ok
    replay = signin.check_second_factor(
        session, POLICY, user=user, code=pyotp.TOTP(secret).at(NOW), address="10.0.0.1", now=NOW
    )
    assert replay.outcome is signin.Outcome.INVALID
    assert signin.check_second_factor(
        session, POLICY, user=user, code=codes[0], address="10.0.0.1", now=NOW
    ).ok
    assert not signin.check_second_factor(
        session, POLICY, user=user, code=codes[0], address="10.0.0.1", now=NOW
    ).ok
    session.commit()
    assert signin.remaining_recovery_codes(session, user) == 9
    kinds = [e.type for e in events(session) if e.subject == f"user:{user.pseudonym}"]
    assert kinds.count("auth.login_succeeded") == 2
    assert "auth.mfa_recovery_code_used" in kinds and "auth.mfa_failed" in kinds
    assert session.scalar(select(func.count()).select_from(RecoveryCode)) == 10


def test_enrolment_requires_a_code_from_the_new_secret(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    user = make_user(session, district, north, Role.SUPERVISOR)
    assert not user.mfa_enrolled
    secret = pyotp.random_base32()
    wrong = signin.enrol_totp(
        session,
        POLICY,
        user=user,
        secret=secret,
        code=pyotp.TOTP(pyotp.random_base32()).at(NOW),
        address=None,
        now=NOW,
    )
    assert not wrong.ok and not user.mfa_enrolled
    right = signin.enrol_totp(
        session,
        POLICY,
        user=user,
        secret=secret,
        code=pyotp.TOTP(secret).at(NOW),
        address=None,
        now=NOW,
    )
    session.commit()
    assert right.ok and user.mfa_enrolled and user.totp_secret == secret
    assert events(session, "auth.mfa_enrolled")


def test_mfa_reset_forgets_secret_codes_and_sessions(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    user = make_user(session, district, north, Role.SUPERVISOR, secret=pyotp.random_base32())
    signin.issue_recovery_codes(session, user, NOW)
    session.commit()
    accounts.reset_mfa(session, user, actor="cli", now=NOW)
    session.commit()
    assert user.totp_secret is None and not user.mfa_enrolled
    assert signin.remaining_recovery_codes(session, user) == 0
    assert events(session, "auth.mfa_reset")
