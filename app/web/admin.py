"""Administration pages: users and their roles, lockouts, schools."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from app.accounts import admin as accounts
from app.accounts import throttle
from app.accounts.models import LoginThrottle
from app.web.auth import ConfirmForm
from app.web.context import db, login_required, now, require
from evidence.adapters.sql.org import User
from evidence.errors import EvidenceError, NotFound
from evidence.policy import Action, Kind, Principal, Resource, decide, scope_for
from evidence.roles import Grant, Role

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLE_CHOICES = [SelectChoice(r.value, r.value.capitalize()) for r in Role]


class GrantForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[InputRequired()])
    school = SelectField(
        "School",
        choices=[],
        validators=[Optional()],
        description="Wearer and supervisor roles need a school; "
        "leave empty for district-wide records, oversight "
        "or admin roles.",
    )
    badge = StringField("Badge or staff id (wearers)", validators=[Optional(), Length(max=64)])


class NewUserForm(GrantForm):
    username = StringField("Username", validators=[InputRequired(), Length(min=2, max=63)])
    display_name = StringField("Full name", validators=[InputRequired(), Length(max=200)])
    password = PasswordField(
        "Initial password",
        validators=[InputRequired(), Length(min=12, max=1024)],
        description="At least 12 characters. The person sets up "
        "their authenticator app at first sign-in.",
        render_kw={"autocomplete": "new-password"},
    )


class SchoolForm(FlaskForm):
    code = StringField("Code", validators=[InputRequired(), Length(max=32)])
    name = StringField("Name", validators=[InputRequired(), Length(max=200)])


def _principal() -> Principal:
    principal: Principal = g.principal
    return principal


def _account_resource(user: User) -> Resource:
    """A user account belongs to a school when all its grants are in that school."""
    schools = {gr.school_id for gr in user.grants}
    school_id = schools.pop() if len(schools) == 1 else None
    return Resource(Kind.ACCOUNT, user.district_id, school_id)


def _school_choices() -> list[SelectChoice]:
    scope = scope_for(_principal(), Action.MANAGE_USERS)
    choices = [SelectChoice("", "— whole district —")] if scope.district_wide else []
    for school in accounts.schools_of(db(), _principal().district_id):
        if scope.includes(school.id):
            choices.append(SelectChoice(str(school.id), f"{school.name} ({school.code})"))
    return choices


def _grant_from(form: GrantForm) -> Grant:
    school_id = int(form.school.data) if form.school.data else None
    grant = Grant(Role(form.role.data), school_id)
    # The new grant itself must lie within the administrator's own scope.
    require(Action.MANAGE_USERS, Resource(Kind.ACCOUNT, _principal().district_id, school_id))
    return grant


def _load_user(user_id: int, action: Action = Action.MANAGE_USERS) -> User:
    user = db().get(User, user_id)
    if user is None:
        abort(404)
    require(action, _account_resource(user))
    return user


@bp.get("/users")
@login_required
def users() -> ResponseReturnValue:
    require(Action.MANAGE_USERS)
    principal = _principal()
    visible = [
        u
        for u in accounts.users_of(db(), principal.district_id)
        if decide(principal, Action.MANAGE_USERS, _account_resource(u)).allowed
    ]
    locked = {row.key for row in throttle.locked_keys(db(), now())}
    schools = {s.id: s for s in accounts.schools_of(db(), principal.district_id)}
    return render_template(
        "admin/users.html",
        users=visible,
        schools=schools,
        locked={u.id for u in visible if throttle.account_key(u.username) in locked},
    )


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
def new_user() -> ResponseReturnValue:
    require(Action.MANAGE_USERS)
    form = NewUserForm()
    form.school.choices = _school_choices()
    if form.validate_on_submit():
        try:
            grant = _grant_from(form)
            district = accounts.only_district(db())
            user = accounts.create_user(
                db(),
                district,
                username=form.username.data or "",
                display_name=form.display_name.data or "",
                password=form.password.data or "",
                grants=[grant],
                actor=g.user.pseudonym,
                now=now(),
                badge=form.badge.data or None,
            )
            db().commit()
        except EvidenceError as exc:
            db().rollback()
            flash(str(exc), "error")
        else:
            flash(f"Created {user.username}. They set up MFA at first sign-in.", "success")
            return redirect(url_for("admin.user", user_id=user.id))
    return render_template("admin/new_user.html", form=form)


@bp.get("/users/<int:user_id>")
@login_required
def user(user_id: int) -> ResponseReturnValue:
    target = _load_user(user_id)
    form = GrantForm()
    form.school.choices = _school_choices()
    schools = {s.id: s for s in accounts.schools_of(db(), target.district_id)}
    locked = throttle.locked_until(db(), throttle.account_key(target.username), now())
    return render_template(
        "admin/user.html",
        target=target,
        form=form,
        schools=schools,
        locked_until=locked,
        confirm=ConfirmForm(),
    )


def _act(user_id: int, action: str) -> ResponseReturnValue:
    target = _load_user(user_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    actor = g.user.pseudonym
    try:
        if action == "disable":
            if target.id == g.user.id:
                raise EvidenceError("you cannot disable your own account")
            accounts.disable_user(db(), target, actor=actor, now=now())
            message = f"Disabled {target.username}; their sessions have ended."
        elif action == "enable":
            accounts.enable_user(db(), target, actor=actor, now=now())
            message = f"Enabled {target.username}."
        elif action == "unlock":
            was = accounts.unlock(db(), target, actor=actor, now=now())
            message = (
                f"Unlocked {target.username}."
                if was
                else (f"{target.username} was not locked; failed attempts cleared.")
            )
        elif action == "reset-mfa":
            accounts.reset_mfa(db(), target, actor=actor, now=now())
            message = f"Reset MFA for {target.username}; they enrol again at next sign-in."
        else:
            abort(404)
        db().commit()
    except EvidenceError as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        flash(message, "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.post("/users/<int:user_id>/<any(disable, enable, unlock, 'reset-mfa'):action>")
@login_required
def user_action(user_id: int, action: str) -> ResponseReturnValue:
    return _act(user_id, action)


@bp.post("/users/<int:user_id>/grants")
@login_required
def add_grant(user_id: int) -> ResponseReturnValue:
    target = _load_user(user_id)
    form = GrantForm()
    form.school.choices = _school_choices()
    if not form.validate_on_submit():
        flash("Choose a role (and a school for wearer and supervisor roles).", "error")
        return redirect(url_for("admin.user", user_id=target.id))
    try:
        accounts.grant_role(
            db(),
            target,
            _grant_from(form),
            actor=g.user.pseudonym,
            now=now(),
            badge=form.badge.data or None,
        )
        db().commit()
    except EvidenceError as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        flash("Role granted.", "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.post("/users/<int:user_id>/grants/revoke")
@login_required
def revoke_grant(user_id: int) -> ResponseReturnValue:
    target = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        role = Role(request.form.get("role", ""))
        school_raw = request.form.get("school", "")
        school_id = int(school_raw) if school_raw else None
    except ValueError:
        abort(400)
    require(Action.MANAGE_USERS, Resource(Kind.ACCOUNT, target.district_id, school_id))
    try:
        accounts.revoke_role(
            db(), target, Grant(role, school_id), actor=g.user.pseudonym, now=now()
        )
        db().commit()
    except NotFound:
        abort(404)
    flash("Role revoked.", "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.get("/lockouts")
@login_required
def lockouts() -> ResponseReturnValue:
    require(Action.MANAGE_USERS, Resource(Kind.ACCOUNT, _principal().district_id, None))
    addresses = [row for row in throttle.locked_keys(db(), now()) if row.key.startswith("address:")]
    return render_template("admin/lockouts.html", rows=addresses, confirm=ConfirmForm())


@bp.post("/lockouts/unlock")
@login_required
def unlock_address() -> ResponseReturnValue:
    require(Action.MANAGE_USERS, Resource(Kind.ACCOUNT, _principal().district_id, None))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    address = request.form.get("address", "")[:180]
    row = db().get(LoginThrottle, throttle.address_key(address))
    if row is None:
        abort(404)
    accounts.unlock_address(
        db(), _principal().district_id, address, actor=g.user.pseudonym, now=now()
    )
    db().commit()
    flash(f"Unblocked {address}.", "success")
    return redirect(url_for("admin.lockouts"))


@bp.route("/schools", methods=["GET", "POST"])
@login_required
def schools() -> ResponseReturnValue:
    require(Action.MANAGE_SCHOOLS)
    district_resource = Resource(Kind.SCHOOL, _principal().district_id, None)
    can_add = decide(_principal(), Action.MANAGE_SCHOOLS, district_resource).allowed
    form = SchoolForm()
    if form.validate_on_submit():
        require(Action.MANAGE_SCHOOLS, district_resource)
        try:
            school = accounts.create_school(
                db(),
                accounts.only_district(db()),
                form.code.data or "",
                form.name.data or "",
                actor=g.user.pseudonym,
                now=now(),
            )
            db().commit()
        except EvidenceError as exc:
            db().rollback()
            flash(str(exc), "error")
        else:
            flash(f"Added {school.name}.", "success")
            return redirect(url_for("admin.schools"))
    scope = scope_for(_principal(), Action.MANAGE_SCHOOLS)
    rows = [s for s in accounts.schools_of(db(), _principal().district_id) if scope.includes(s.id)]
    return render_template("admin/schools.html", schools=rows, form=form, can_add=can_add)
