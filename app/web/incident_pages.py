"""Incident pages, linking footage to incidents, and bulk actions on the evidence list.

Supervisors manage their schools' incidents, records officers the district's; wearers,
oversight and administrators see none (evidence/policy.py). Linking needs the right to
manage the incident and to view the item; anything outside a person's scope is 404."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    DateTimeLocalField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Length, Optional

from app import annotate, incidents
from app.evidence_search import in_scope
from app.local_time import from_wall_clock, to_wall_clock
from app.web.context import db, evidence_or_404, login_required, now, require
from evidence.adapters.sql.items import EvidenceItem, Incident, incident_evidence
from evidence.adapters.sql.org import School, Wearer
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.policy import Action, Kind, Principal, Resource, Scope, decide, scope_for

bp = Blueprint("incidents", __name__)

MAX_BULK = 200


def _principal() -> Principal:
    principal: Principal = g.principal
    return principal


def _incident_scope(action: Action) -> Scope:
    return scope_for(_principal(), action)


def _schools(scope: Scope) -> list[School]:
    query = select(School).where(School.district_id == scope.district_id)
    if not scope.district_wide:
        query = query.where(School.id.in_(sorted(scope.school_ids)))
    return list(db().scalars(query.order_by(School.name)))


def _incident_or_404(incident_id: str, action: Action) -> Incident:
    incident = db().get(Incident, incident_id) if len(incident_id) == 36 else None
    if incident is None:
        abort(404)
    require(action, Resource(Kind.INCIDENT, incident.district_id, incident.school_id))
    return incident


class IncidentForm(FlaskForm):
    school = SelectField("School", choices=[], validators=[InputRequired()])
    number = StringField(
        "Incident number", validators=[InputRequired(), Length(max=incidents.MAX_NUMBER)]
    )
    title = StringField("Title", validators=[InputRequired(), Length(max=incidents.MAX_TITLE)])
    starts_at = DateTimeLocalField("Started", validators=[InputRequired()], format="%Y-%m-%dT%H:%M")
    ends_at = DateTimeLocalField("Ended", validators=[Optional()], format="%Y-%m-%dT%H:%M")
    wearers = SelectMultipleField("Wearers involved", choices=[], validators=[Optional()])


@bp.get("/incidents")
@login_required
def listing() -> ResponseReturnValue:
    require(Action.VIEW_INCIDENT)
    scope = _incident_scope(Action.VIEW_INCIDENT)
    query = select(Incident).where(Incident.district_id == scope.district_id)
    if not scope.district_wide:
        query = query.where(Incident.school_id.in_(sorted(scope.school_ids)))
    rows = list(db().scalars(query.order_by(Incident.starts_at.desc()).limit(500)))
    schools = {s.id: s for s in _schools(scope)}
    return render_template(
        "incidents/list.html",
        incidents=rows,
        schools=schools,
        may_create=decide(_principal(), Action.MANAGE_INCIDENTS).allowed,
    )


@bp.route("/incidents/new", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    require(Action.MANAGE_INCIDENTS)
    scope = _incident_scope(Action.MANAGE_INCIDENTS)
    schools = _schools(scope)
    form = IncidentForm()
    _label_times(form)
    form.school.choices = [SelectChoice(str(s.id), s.name) for s in schools]
    wearers = (
        list(
            db().scalars(
                select(Wearer)
                .where(Wearer.school_id.in_([s.id for s in schools]))
                .order_by(Wearer.display_name)
            )
        )
        if schools
        else []
    )
    form.wearers.choices = [
        SelectChoice(str(w.id), f"{w.display_name} ({w.badge})") for w in wearers
    ]
    if form.validate_on_submit():
        school_id = int(form.school.data)
        require(Action.MANAGE_INCIDENTS, Resource(Kind.INCIDENT, scope.district_id, school_id))
        try:
            incident = incidents.create_incident(
                db(),
                g.user,
                school_id=school_id,
                number=form.number.data or "",
                title=form.title.data or "",
                starts_at=_utc(form.starts_at.data),
                ends_at=_utc(form.ends_at.data) if form.ends_at.data else None,
                wearer_ids=[int(w) for w in form.wearers.data or []],
                now=now(),
            )
        except (InvalidInput, Conflict) as refused:
            db().rollback()
            flash(f"{refused}.", "error")
        else:
            db().commit()
            flash(f"Incident {incident.number} created.", "success")
            return redirect(url_for("incidents.detail", incident_id=incident.id))
    status = 400 if form.errors else 200
    return render_template("incidents/new.html", form=form), status


def _zone() -> str:
    return str(current_app.extensions["bwc.settings"].time_zone)


def _utc(value: datetime | None) -> datetime:
    """A time typed in the form, read on the district's clock."""
    if value is None:
        raise InvalidInput("give a time")
    return from_wall_clock(value, _zone())


def _label_times(form: FlaskForm) -> None:
    zone = _zone()
    form.starts_at.label.text = f"Started ({zone} time)"
    form.ends_at.label.text = f"Ended ({zone} time)"


class IncidentChangeForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired(), Length(max=incidents.MAX_TITLE)])
    starts_at = DateTimeLocalField("Started", validators=[InputRequired()], format="%Y-%m-%dT%H:%M")
    ends_at = DateTimeLocalField("Ended", validators=[Optional()], format="%Y-%m-%dT%H:%M")
    wearers = SelectMultipleField("Wearers involved", choices=[], validators=[Optional()])


@bp.route("/incidents/<incident_id>/edit", methods=["GET", "POST"])
@login_required
def edit(incident_id: str) -> ResponseReturnValue:
    """Change the title, time window and wearers; the number and school stay."""
    incident = _incident_or_404(incident_id, Action.MANAGE_INCIDENTS)
    involved = incidents.involved_wearers(db(), incident)
    form = IncidentChangeForm(
        data=None
        if request.method == "POST"
        else {
            "title": incident.title,
            "starts_at": to_wall_clock(incident.starts_at, _zone()),
            "ends_at": to_wall_clock(incident.ends_at, _zone()) if incident.ends_at else None,
            "wearers": [str(w.id) for w in involved],
        }
    )
    _label_times(form)
    wearers = list(
        db().scalars(
            select(Wearer)
            .where(Wearer.school_id == incident.school_id)
            .order_by(Wearer.display_name)
        )
    )
    form.wearers.choices = [
        SelectChoice(str(w.id), f"{w.display_name} ({w.badge})") for w in wearers
    ]
    refused_now = False
    if form.validate_on_submit():
        try:
            changed = incidents.change_incident(
                db(),
                incident,
                g.user,
                title=form.title.data or "",
                starts_at=_utc(form.starts_at.data),
                ends_at=_utc(form.ends_at.data) if form.ends_at.data else None,
                wearer_ids=[int(w) for w in form.wearers.data or []],
                now=now(),
            )
        except InvalidInput as refused:
            db().rollback()
            flash(f"{refused}.", "error")
            refused_now = True
        else:
            db().commit()
            flash("Incident saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("incidents.detail", incident_id=incident.id))
    status = 400 if form.errors or refused_now else 200
    return render_template("incidents/edit.html", form=form, incident=incident), status


@bp.post("/incidents/<incident_id>/close")
@login_required
def close(incident_id: str) -> ResponseReturnValue:
    incident = _incident_or_404(incident_id, Action.MANAGE_INCIDENTS)
    try:
        incidents.close_incident(
            db(), incident, g.user, now(), reason=request.form.get("reason", "")
        )
    except InvalidInput as refused:
        db().rollback()
        flash(f"{refused}.", "error")
    else:
        db().commit()
        flash(f"Incident {incident.number} closed: no more footage can be linked.", "success")
    return redirect(url_for("incidents.detail", incident_id=incident.id))


@bp.post("/incidents/<incident_id>/reopen")
@login_required
def reopen(incident_id: str) -> ResponseReturnValue:
    incident = _incident_or_404(incident_id, Action.MANAGE_INCIDENTS)
    incidents.reopen_incident(db(), incident, g.user, now())
    db().commit()
    flash(f"Incident {incident.number} reopened.", "success")
    return redirect(url_for("incidents.detail", incident_id=incident.id))


@bp.get("/incidents/<incident_id>")
@login_required
def detail(incident_id: str) -> ResponseReturnValue:
    incident = _incident_or_404(incident_id, Action.VIEW_INCIDENT)
    evidence_scope = scope_for(_principal(), Action.VIEW_EVIDENCE)
    linked = (
        list(
            db().scalars(
                select(EvidenceItem)
                .join(incident_evidence, incident_evidence.c.evidence_id == EvidenceItem.id)
                .where(incident_evidence.c.incident_id == incident.id, in_scope(evidence_scope))
                .order_by(EvidenceItem.recorded_start)
            )
        )
        if not evidence_scope.empty
        else []
    )
    return render_template(
        "incidents/detail.html",
        incident=incident,
        school=db().get(School, incident.school_id),
        wearers=incidents.involved_wearers(db(), incident),
        linked=linked,
        may_manage=decide(
            _principal(),
            Action.MANAGE_INCIDENTS,
            Resource(Kind.INCIDENT, incident.district_id, incident.school_id),
        ).allowed,
        max_reason=incidents.MAX_TITLE,
    )


@bp.post("/evidence/<evidence_id>/incidents")
@login_required
def link(evidence_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id)
    incident = _incident_or_404(request.form.get("incident_id", ""), Action.MANAGE_INCIDENTS)
    try:
        incidents.link(db(), incident, item, g.user, now())
    except InvalidInput as refused:
        db().rollback()
        flash(f"{refused}.", "error")
    else:
        db().commit()
        flash(f"Linked to incident {incident.number}.", "success")
    return redirect(url_for("evidence.detail", evidence_id=item.id) + "#tags")


@bp.post("/evidence/<evidence_id>/incidents/<incident_id>/unlink")
@login_required
def unlink(evidence_id: str, incident_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id)
    incident = _incident_or_404(incident_id, Action.MANAGE_INCIDENTS)
    incidents.unlink(db(), incident, item, g.user, now())
    db().commit()
    flash(f"Unlinked from incident {incident.number}.", "success")
    return redirect(url_for("evidence.detail", evidence_id=item.id) + "#tags")


def linkable_incidents(item: EvidenceItem) -> list[Incident]:
    """Incidents of the item's school the signed-in person may link it to."""
    principal = _principal()
    if not decide(
        principal,
        Action.MANAGE_INCIDENTS,
        Resource(Kind.INCIDENT, item.district_id, item.school_id),
    ).allowed:
        return []
    return list(
        db().scalars(
            select(Incident)
            .where(
                Incident.district_id == item.district_id,
                Incident.school_id == item.school_id,
                Incident.closed_at.is_(None),
            )
            .order_by(Incident.starts_at.desc())
            .limit(200)
        )
    )


@bp.post("/evidence/bulk")
@login_required
def bulk() -> ResponseReturnValue:
    """Tag, categorise or link to an incident every selected item, all or nothing: an
    item the person may not change (or not see: 404) refuses the whole request."""
    ids = list(dict.fromkeys(request.form.getlist("ids")))
    action = request.form.get("action", "")
    back = request.form.get("back", "")
    target = (
        back if back.startswith("/evidence") and "//" not in back else url_for("evidence.listing")
    )
    if not ids:
        flash("Select the recordings to change first.", "error")
        return redirect(target)
    if len(ids) > MAX_BULK:
        abort(400, description=f"at most {MAX_BULK} recordings at a time")
    needed = {
        "tag": Action.ANNOTATE_EVIDENCE,
        "category": Action.CATEGORISE_EVIDENCE,
        "incident": Action.MANAGE_INCIDENTS,
    }.get(action)
    if needed is None:
        abort(400, description="choose what to do with the selected recordings")
    chosen = [evidence_or_404(i) for i in ids]
    if needed is not Action.MANAGE_INCIDENTS:
        for item in chosen:
            require(
                needed, Resource(Kind.EVIDENCE, item.district_id, item.school_id, item.wearer_id)
            )
    try:
        if action == "tag":
            for item in chosen:
                annotate.add_tag(db(), item, g.user, request.form.get("tag", ""), now())
        elif action == "category":
            raw = request.form.get("category_id", "").strip()
            if raw and not raw.isdigit():
                raise InvalidInput("choose one of the listed categories")
            for item in chosen:
                annotate.set_category(db(), item, g.user, int(raw) if raw else None, now())
        else:
            incident = _incident_or_404(
                request.form.get("incident_id", ""), Action.MANAGE_INCIDENTS
            )
            for item in chosen:
                if item.school_id != incident.school_id:
                    raise InvalidInput("an incident links only recordings of its own school")
                incidents.link(db(), incident, item, g.user, now())
    except (InvalidInput, NotFound) as refused:
        db().rollback()
        flash(f"Nothing was changed: {refused}.", "error")
        return redirect(target)
    db().commit()
    flash(f"{len(chosen)} recording{'' if len(chosen) == 1 else 's'} updated.", "success")
    return redirect(target)
