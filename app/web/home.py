"""Landing pages: each role's home, listing what that role can do."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from app.accounts.admin import schools_of
from app.web.context import db, login_required
from evidence.adapters.sql.items import EvidenceItem, Incident
from evidence.adapters.sql.org import Camera, Dock, User
from evidence.policy import Action, Principal, scope_for
from evidence.roles import Role

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    if g.get("user") is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("home.home"))


def _evidence_count(principal: Principal) -> int:
    scope = scope_for(principal, Action.VIEW_EVIDENCE)
    if scope.empty:
        return 0
    query = (
        select(func.count())
        .select_from(EvidenceItem)
        .where(EvidenceItem.district_id == principal.district_id)
    )
    if not scope.district_wide:
        query = query.where(
            EvidenceItem.school_id.in_(scope.school_ids)
            | EvidenceItem.wearer_id.in_(scope.wearer_ids)
        )
    return db().scalar(query) or 0


def _count(model: type, principal: Principal) -> int:
    return (
        db().scalar(
            select(func.count())
            .select_from(model)
            .where(
                model.district_id == principal.district_id  # type: ignore[attr-defined]
            )
        )
        or 0
    )


@bp.get("/home")
@login_required
def home() -> ResponseReturnValue:
    principal: Principal = g.principal
    roles = principal.roles
    schools = {s.id: s for s in schools_of(db(), principal.district_id)}
    facts: dict[str, int] = {}
    if roles & {Role.WEARER, Role.SUPERVISOR, Role.RECORDS}:
        facts["evidence"] = _evidence_count(principal)
    if roles & {Role.SUPERVISOR, Role.RECORDS}:
        facts["incidents"] = _count(Incident, principal)
    if Role.ADMIN in roles:
        facts["users"] = _count(User, principal)
        facts["cameras"] = _count(Camera, principal)
        facts["docks"] = _count(Dock, principal)
        facts["schools"] = len(schools)
    ordered = [r for r in Role if r in roles]
    return render_template(
        "home.html",
        roles=ordered,
        facts=facts,
        schools=schools,
        grants=sorted(principal.grants, key=lambda gr: gr.role.value),
    )
