"""Administration of cameras and docks: register and assign cameras, add docks (a one-time
enrolment token shown once), see each dock's live state from its heartbeats, revoke.

Administrators act within their grant: a school administrator sees and changes only
their school's devices; another school's camera or dock answers 404."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from app import device_admin, devices
from app.accounts import admin as accounts
from app.web.context import db, login_required, now, require
from evidence.adapters.sql.org import Camera, Dock, School, Wearer
from evidence.errors import EvidenceError
from evidence.policy import Action, Kind, Principal, Resource, Scope, scope_for

bp = Blueprint("devices", __name__, url_prefix="/admin")


class CameraForm(FlaskForm):
    school = SelectField("School", choices=[], validators=[InputRequired()])
    serial = StringField("Serial number", validators=[InputRequired(), Length(max=64)])
    profile = SelectField(
        "Device profile",
        choices=[SelectChoice(p, p) for p in devices.KNOWN_PROFILES],
        validators=[InputRequired()],
    )
    wearer = SelectField(
        "Assigned to",
        choices=[],
        validators=[Optional()],
        description="A wearer of the camera's school, or the school's pool.",
    )


class DockForm(FlaskForm):
    school = SelectField("School", choices=[], validators=[InputRequired()])
    name = StringField("Dock name", validators=[InputRequired(), Length(max=100)])


def _scope() -> Scope:
    principal: Principal = g.principal
    return scope_for(principal, Action.MANAGE_DEVICES)


def _schools(scope: Scope) -> list[School]:
    return [s for s in accounts.schools_of(db(), scope.district_id) if scope.includes(s.id)]


def _device(model: Any, device_id: int) -> Any:
    row = db().get(model, device_id)
    if row is None:
        abort(404)
    require(Action.MANAGE_DEVICES, Resource(Kind.DEVICE, row.district_id, row.school_id))
    return row


@bp.route("/cameras", methods=["GET", "POST"])
@login_required
def cameras() -> ResponseReturnValue:
    require(Action.MANAGE_DEVICES)
    scope = _scope()
    schools = _schools(scope)
    wearers = list(
        db().scalars(
            select(Wearer)
            .where(Wearer.school_id.in_([s.id for s in schools]))
            .order_by(Wearer.display_name)
        )
    )
    form = CameraForm()
    form.school.choices = [SelectChoice(str(s.id), s.name) for s in schools]
    form.wearer.choices = [SelectChoice("", "Pool (no wearer)")] + [
        SelectChoice(w.badge, f"{w.display_name} ({w.badge})") for w in wearers
    ]
    if form.validate_on_submit():
        school = db().get(School, int(form.school.data))
        if school is None:
            abort(404)
        require(Action.MANAGE_DEVICES, Resource(Kind.DEVICE, school.district_id, school.id))
        try:
            camera = devices.register_camera(
                db(),
                accounts.only_district(db()),
                school,
                (form.serial.data or "").strip(),
                profile=form.profile.data,
                actor=g.user.pseudonym,
                now=now(),
                wearer_badge=form.wearer.data or None,
            )
            wearer = (
                db().get(Wearer, camera.assigned_wearer_id) if camera.assigned_wearer_id else None
            )
            if wearer is not None and wearer.school_id != school.id:
                raise EvidenceError("that wearer belongs to another school")
        except EvidenceError as refused:
            db().rollback()
            flash(f"{refused}.", "error")
        else:
            db().commit()
            flash(f"Camera {camera.serial} registered.", "success")
            return redirect(url_for("devices.cameras"))
    rows = list(
        db().scalars(
            select(Camera)
            .where(Camera.school_id.in_([s.id for s in schools]))
            .order_by(Camera.serial)
        )
    )
    return (
        render_template(
            "admin/cameras.html",
            cameras=rows,
            form=form,
            schools={s.id: s for s in schools},
            wearers={w.id: w for w in wearers},
            wearers_by_school=_by_school(wearers),
        ),
        400 if form.errors else 200,
    )


def _by_school(wearers: list[Wearer]) -> dict[int, list[Wearer]]:
    out: dict[int, list[Wearer]] = {}
    for wearer in wearers:
        out.setdefault(wearer.school_id, []).append(wearer)
    return out


@bp.post("/cameras/<int:camera_id>/assign")
@login_required
def assign(camera_id: int) -> ResponseReturnValue:
    camera = _device(Camera, camera_id)
    raw = request.form.get("wearer_id", "").strip()
    if raw and not raw.isdigit():
        abort(400, description="choose a wearer from the list")
    try:
        device_admin.assign_camera(db(), camera, int(raw) if raw else None, g.user, now())
    except EvidenceError as refused:
        db().rollback()
        flash(f"{refused}.", "error")
    else:
        db().commit()
        flash(f"Camera {camera.serial} assignment saved.", "success")
    return redirect(url_for("devices.cameras"))


@bp.post("/cameras/<int:camera_id>/retire")
@login_required
def retire(camera_id: int) -> ResponseReturnValue:
    camera = _device(Camera, camera_id)
    device_admin.retire_camera(db(), camera, g.user, now())
    db().commit()
    flash(f"Camera {camera.serial} retired: docks refuse it from now on.", "success")
    return redirect(url_for("devices.cameras"))


@bp.post("/cameras/<int:camera_id>/restore")
@login_required
def restore(camera_id: int) -> ResponseReturnValue:
    camera = _device(Camera, camera_id)
    device_admin.restore_camera(db(), camera, g.user, now())
    db().commit()
    flash(f"Camera {camera.serial} back in service.", "success")
    return redirect(url_for("devices.cameras"))


@bp.route("/docks", methods=["GET", "POST"])
@login_required
def docks() -> ResponseReturnValue:
    require(Action.MANAGE_DEVICES)
    scope = _scope()
    schools = _schools(scope)
    form = DockForm()
    form.school.choices = [SelectChoice(str(s.id), s.name) for s in schools]
    token = None
    if form.validate_on_submit():
        school = db().get(School, int(form.school.data))
        if school is None:
            abort(404)
        require(Action.MANAGE_DEVICES, Resource(Kind.DEVICE, school.district_id, school.id))
        try:
            dock, token = devices.create_dock(
                db(),
                accounts.only_district(db()),
                school,
                (form.name.data or "").strip(),
                actor=g.user.pseudonym,
                now=now(),
            )
        except EvidenceError as refused:
            db().rollback()
            flash(f"{refused}.", "error")
        else:
            db().commit()
            flash(f"Dock {dock.name} added. Enrol it with the token below.", "success")
    rows = list(
        db().scalars(
            select(Dock).where(Dock.school_id.in_([s.id for s in schools])).order_by(Dock.name)
        )
    )
    moment = now()
    return (
        render_template(
            "admin/docks.html",
            docks=[(d, device_admin.dock_state(d, moment), _status(d)) for d in rows],
            form=form,
            token=token,
            schools={s.id: s for s in schools},
        ),
        400 if form.errors else 200,
    )


def _status(dock: Dock) -> dict[str, Any]:
    """The dock's last heartbeat body, for display (it is the dock's own JSON)."""
    if not dock.last_status:
        return {}
    try:
        body = json.loads(dock.last_status)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@bp.post("/docks/<int:dock_id>/revoke")
@login_required
def revoke(dock_id: int) -> ResponseReturnValue:
    dock = _device(Dock, dock_id)
    devices.revoke_dock(db(), dock, actor=g.user.pseudonym, now=now())
    db().commit()
    flash(f"Dock {dock.name} revoked: its credential no longer works.", "success")
    return redirect(url_for("devices.docks"))
