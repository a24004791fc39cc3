"""Signing in through the web app: passwords, MFA, lockout, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.accounts.models import WebSession
from audit.adapters.sql import AuditEventRow

from .conftest import PASSWORD, World, csrf_token, sign_in, submit_password


def audit_types(app: Flask) -> list[str]:
    with app.extensions["bwc.db"].transaction() as session:
        return list(session.scalars(select(AuditEventRow.type).order_by(AuditEventRow.occurred_at)))


def test_login_page_renders_with_security_headers(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in page.headers
    assert "<script>" not in page.get_data(as_text=True)


def test_hsts_is_sent_over_tls(client: FlaskClient) -> None:
    page = client.get("/login", base_url="https://evidence.example")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: FlaskClient, world: World, app: Flask
) -> None:
    wrong = submit_password(client, "supervisor", "not the password")
    unknown = submit_password(client, "no-such-person", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    for response in (wrong, unknown):
        assert "did not match" in response.get_data(as_text=True)
    assert audit_types(app).count("auth.login_failed") == 2


def test_password_alone_does_not_sign_in(client: FlaskClient, world: World) -> None:
    response = submit_password(client, "supervisor")
    assert response.headers["Location"] == "/login/code"
    assert client.get("/home").status_code == 302
    assert client.get("/admin/users").status_code == 302


def test_full_sign_in_lands_on_the_role_home_and_rotates_the_session(
    client: FlaskClient, world: World, app: Flask
) -> None:
    client.get("/login")
    before = client.get_cookie("bwc_session")
    assert before is not None
    sign_in(client, world.people["supervisor"])
    after = client.get_cookie("bwc_session")
    assert after is not None and after.value != before.value
    home = client.get("/", follow_redirects=True)
    assert home.status_code == 200
    assert 'id="home-supervisor"' in home.get_data(as_text=True)
    assert "auth.login_succeeded" in audit_types(app)


def test_totp_code_cannot_be_replayed_in_a_second_session(app: Flask, world: World) -> None:
    person = world.people["records"]
    first, second = app.test_client(), app.test_client()
    code = pyotp.TOTP(person.secret).now()
    for c in (first, second):
        submit_password(c, "records")
    results = []
    for c in (first, second):
        token = csrf_token(c, "/login/code")
        results.append(c.post("/login/code", data={"csrf_token": token, "code": code}))
    assert results[0].status_code == 302
    assert results[1].status_code == 200
    assert "not accepted" in results[1].get_data(as_text=True)


def test_lockout_after_repeated_failures_and_admin_unlock(app: Flask, world: World) -> None:
    victim = app.test_client()
    for _ in range(world.settings.lockout_threshold):
        submit_password(victim, "supervisor", "wrong password")
    locked = submit_password(victim, "supervisor")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.get_data(as_text=True)

    admin = app.test_client()
    sign_in(admin, world.people["admin"])
    uid = world.people["supervisor"].user_id
    page = admin.get(f"/admin/users/{uid}")
    assert "locked until" in page.get_data(as_text=True)
    token = csrf_token(admin, f"/admin/users/{uid}")
    unlocked = admin.post(f"/admin/users/{uid}/unlock", data={"csrf_token": token})
    assert unlocked.status_code == 302

    again = submit_password(victim, "supervisor")
    assert again.status_code == 302 and again.headers["Location"] == "/login/code"
    assert "auth.account_unlocked" in audit_types(app)


def test_first_sign_in_requires_totp_enrolment(client: FlaskClient, world: World) -> None:
    response = submit_password(client, "newcomer")
    assert response.headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol")
    text = page.get_data(as_text=True)
    assert "<svg" in text
    secret = text.split('id="totp-secret">')[1].split("<")[0]
    assert client.get("/home").status_code == 302  # not signed in yet
    token = csrf_token(client, "/login/enrol")
    done = client.post("/login/enrol", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert done.headers["Location"] == "/account/recovery-codes"
    codes_page = client.get("/account/recovery-codes").get_data(as_text=True)
    assert codes_page.count("<li><code>") == 10
    # Shown once only.
    assert client.get("/account/recovery-codes").status_code == 302
    assert client.get("/home").status_code == 200


def test_missing_csrf_token_is_refused_with_400(client: FlaskClient, world: World) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "supervisor", "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_logout_ends_the_session_on_the_server(
    client: FlaskClient, world: World, app: Flask
) -> None:
    sign_in(client, world.people["supervisor"])
    cookie = client.get_cookie("bwc_session")
    assert cookie is not None
    token = csrf_token(client, "/home")
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/home").status_code == 302
    # Replaying the old cookie does not bring the session back.
    replay = app.test_client()
    replay.set_cookie("bwc_session", cookie.value)
    assert replay.get("/home").status_code == 302
    assert "auth.logout" in audit_types(app)


def test_disabled_users_live_session_is_rejected_on_its_next_request(
    app: Flask, world: World
) -> None:
    user_client = app.test_client()
    sign_in(user_client, world.people["supervisor"])
    assert user_client.get("/home").status_code == 200
    admin = app.test_client()
    sign_in(admin, world.people["admin"])
    uid = world.people["supervisor"].user_id
    token = csrf_token(admin, f"/admin/users/{uid}")
    assert admin.post(f"/admin/users/{uid}/disable", data={"csrf_token": token}).status_code == 302
    response = user_client.get("/home")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert submit_password(user_client, "supervisor").status_code == 200  # disabled


def test_idle_session_expires(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.people["supervisor"])
    assert client.get("/home").status_code == 200
    long_ago = datetime.now(UTC) - timedelta(minutes=world.settings.session_idle_minutes + 1)
    with app.extensions["bwc.db"].transaction() as session:
        session.execute(update(WebSession).values(last_seen_at=long_ago))
    expired = client.get("/home")
    assert expired.status_code == 302
    assert "session ended" in client.get("/login").get_data(as_text=True)
    assert "auth.session_expired" in audit_types(app)


def test_absolute_lifetime_ends_an_active_session(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.people["supervisor"])
    with app.extensions["bwc.db"].transaction() as session:
        session.execute(
            update(WebSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.get("/home").status_code == 302


def test_open_redirects_are_ignored_after_sign_in(client: FlaskClient, world: World) -> None:
    person = world.people["supervisor"]
    token = csrf_token(client, "/login")
    client.post(
        "/login?next=//evil.example/",
        data={"csrf_token": token, "username": person.username, "password": PASSWORD},
    )
    token = csrf_token(client, "/login/code")
    done = client.post(
        "/login/code", data={"csrf_token": token, "code": pyotp.TOTP(person.secret).now()}
    )
    assert "evil.example" not in done.headers["Location"]
