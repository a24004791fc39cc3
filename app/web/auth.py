"""Sign-in (password, then TOTP or a recovery code), TOTP enrolment, sign-out, own account."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from app.accounts import signin, throttle, totp
from app.settings import Settings
from app.web.context import client_address, db, login_required, now
from app.web.sessions import ServerSession
from evidence.adapters.sql.org import User

bp = Blueprint("auth", __name__)

PENDING_FOR = timedelta(minutes=5)  # time allowed between password and second factor
GENERIC_FAILURE = "That username and password did not match. Check them and try again."
LOCKED_MESSAGE = (
    "Too many failed sign-in attempts. Wait {minutes} minutes and try again, "
    "or ask an administrator to unlock your account."
)


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[InputRequired(), Length(max=64)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class CodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[InputRequired(), Length(max=32)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True},
    )


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token (sign out, regenerate codes)."""


def _settings() -> Settings:
    settings: Settings = current_app.extensions["bwc.settings"]
    return settings


def _policy() -> signin.Policy:
    s = _settings()
    lock_for = timedelta(minutes=s.lockout_minutes)
    return signin.Policy(
        account=throttle.Limits(s.lockout_threshold, lock_for),
        address=throttle.Limits(s.address_threshold, lock_for),
    )


def _server_session() -> ServerSession:
    if not isinstance(session, ServerSession):
        raise TypeError("the app must use server-side sessions")
    return session


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would make phishing links look genuine."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _pending_user() -> User | None:
    user_id = session.get("pending_user_id")
    started = session.get("pending_since")
    if user_id is None or started is None:
        return None
    if now() - datetime.fromisoformat(started) > PENDING_FOR:
        session.clear()
        return None
    user = db().get(User, user_id)
    if user is None or not user.active:
        session.clear()
        return None
    return user


def _complete_sign_in(user: User) -> None:
    next_url = session.get("next")
    s = _server_session()
    s.clear()
    s.rotate()  # a new session id at every privilege change: no fixation
    s["user_id"] = user.id
    s["signed_in_at"] = now().isoformat()
    if next_url:
        s["after_sign_in"] = next_url


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if g.get("user") is not None:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        attempt = signin.check_password(
            db(),
            _policy(),
            username=form.username.data or "",
            password=form.password.data or "",
            address=client_address(),
            now=now(),
        )
        db().commit()
        if attempt.ok and attempt.user is not None:
            next_url = _safe_next(request.args.get("next"))
            s = _server_session()
            s.clear()
            s.rotate()
            s["pending_user_id"] = attempt.user.id
            s["pending_since"] = now().isoformat()
            if next_url:
                s["next"] = next_url
            if attempt.user.mfa_enrolled:
                return redirect(url_for("auth.second_factor"))
            return redirect(url_for("auth.enrol"))
        if attempt.outcome is signin.Outcome.LOCKED:
            flash(LOCKED_MESSAGE.format(minutes=_settings().lockout_minutes), "error")
            status = 429
        else:
            flash(GENERIC_FAILURE, "error")
            status = 200
    return render_template("auth/login.html", form=form), status


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor() -> ResponseReturnValue:
    user = _pending_user()
    if user is None:
        flash("Please sign in again.", "info")
        return redirect(url_for("auth.login"))
    if not user.mfa_enrolled:
        return redirect(url_for("auth.enrol"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        attempt = signin.check_second_factor(
            db(),
            _policy(),
            user=user,
            code=form.code.data or "",
            address=client_address(),
            now=now(),
        )
        remaining = signin.remaining_recovery_codes(db(), user) if attempt.ok else None
        db().commit()
        if attempt.ok:
            _complete_sign_in(user)
            if remaining is not None and remaining <= 3:
                flash(
                    f"You have {remaining} recovery codes left. "
                    "Make new ones from your account page.",
                    "warning",
                )
            return redirect(_safe_next(session.pop("after_sign_in", None)) or url_for("home.index"))
        if attempt.outcome is signin.Outcome.LOCKED:
            session.clear()
            flash(LOCKED_MESSAGE.format(minutes=_settings().lockout_minutes), "error")
            return redirect(url_for("auth.login"))
        flash(
            "That code was not accepted. Enter the current 6-digit code from your "
            "authenticator app, or one of your recovery codes.",
            "error",
        )
        status = 200
    return render_template("auth/code.html", form=form), status


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> ResponseReturnValue:
    user = _pending_user()
    if user is None:
        flash("Please sign in again.", "info")
        return redirect(url_for("auth.login"))
    if user.mfa_enrolled:
        return redirect(url_for("auth.second_factor"))
    secret = session.get("enrol_secret")
    if not secret:
        secret = totp.new_secret()
        session["enrol_secret"] = secret
    form = CodeForm()
    if form.validate_on_submit():
        attempt = signin.enrol_totp(
            db(),
            _policy(),
            user=user,
            secret=secret,
            code=form.code.data or "",
            address=client_address(),
            now=now(),
        )
        codes = signin.issue_recovery_codes(db(), user, now()) if attempt.ok else []
        db().commit()
        if attempt.ok:
            _complete_sign_in(user)
            session["fresh_recovery_codes"] = codes
            return redirect(url_for("auth.recovery_codes"))
        if attempt.outcome is signin.Outcome.LOCKED:
            session.clear()
            flash(LOCKED_MESSAGE.format(minutes=_settings().lockout_minutes), "error")
            return redirect(url_for("auth.login"))
        flash(
            "That code did not match. Check your device's clock and enter the current code.",
            "error",
        )
    uri = totp.provisioning_uri(secret, user.username)
    return render_template("auth/enrol.html", form=form, secret=secret, qr_svg=totp.qr_svg(uri))


@bp.get("/account/recovery-codes")
@login_required
def recovery_codes() -> ResponseReturnValue:
    codes = session.pop("fresh_recovery_codes", None)
    if not codes:
        return redirect(url_for("auth.account"))
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    user: User = g.user
    form = CodeForm()
    if form.validate_on_submit():
        # New recovery codes need a current TOTP code: a walked-away-from session
        # must not be enough to mint a permanent way in.
        attempt = signin.check_second_factor(
            db(),
            _policy(),
            user=user,
            code=form.code.data or "",
            address=client_address(),
            now=now(),
        )
        if attempt.ok:
            codes = signin.issue_recovery_codes(db(), user, now())
            db().commit()
            session["fresh_recovery_codes"] = codes
            return redirect(url_for("auth.recovery_codes"))
        db().commit()
        flash("That code was not accepted; your recovery codes are unchanged.", "error")
    remaining = signin.remaining_recovery_codes(db(), user)
    return render_template("auth/account.html", form=form, remaining=remaining)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.login"))
    user = g.get("user")
    if user is not None:
        signin.record_logout(db(), user, now(), reason="logout")
        db().commit()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))
