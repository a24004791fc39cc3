"""Evidence pages: the searchable list and an item's page with its player.

Both are scoped by the policy: the list selects only what the signed-in person may view,
and an item outside that answers 404 (by link, by typed URL, by another page's id).
Playback starts only after the person states why they are looking, once per item and
signed-in session; the stream endpoint records that purpose in the custody ledger."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from app import annotate, proxies
from app.api.content import MAX_PURPOSE_NOTE, PURPOSES
from app.evidence_search import KNOWN_FLAGS, SORTS, Filters, Page, parse_filters, search
from app.jobs import submit_after_commit
from app.web import incident_pages
from app.web.context import db, evidence_or_404, login_required, now, require
from audit.adapters import ledger_sql
from audit.adapters.ledger_tables import LedgerCheckpoint, LedgerLeaf
from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.docking import ActivationEvent
from evidence.adapters.sql.items import (
    EVIDENCE_STATUSES,
    Bookmark,
    Category,
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
)
from evidence.adapters.sql.org import Camera, Dock, School, User, Wearer
from evidence.errors import InvalidInput, NotFound
from evidence.policy import Action, Kind, Principal, Resource, Scope, decide, scope_for

bp = Blueprint("evidence", __name__)

#: Activation events shown around a recording: this long before its start, after its end.
ACTIVATION_WINDOW = timedelta(minutes=10)
#: Longer lists of wearers or cameras are asked for by badge or serial instead.
MAX_CHOICES = 150
#: Purposes remembered per signed-in session (the newest items win).
REMEMBERED_PURPOSES = 200


def _scope() -> Scope:
    principal: Principal = g.principal
    return scope_for(principal, Action.VIEW_EVIDENCE)


def _choices(scope: Scope) -> dict[str, Any]:
    """What the filter form offers: only schools, people and devices in scope."""
    schools_q = select(School).where(School.district_id == scope.district_id)
    if not scope.district_wide:
        schools_q = schools_q.where(School.id.in_(sorted(scope.school_ids)))
    schools = (
        list(db().scalars(schools_q.order_by(School.name)))
        if scope.school_ids or scope.district_wide
        else []
    )
    school_ids = [s.id for s in schools]

    def in_schools(model: Any, order: Any) -> list[Any] | None:
        """The model's rows of the schools in scope; None when there are too many to
        offer as a list (a district's thousand wearers): the form asks for text then."""
        if not school_ids:
            return []
        where = model.school_id.in_(school_ids)
        many = db().scalar(select(func.count()).select_from(model).where(where)) or 0
        if many > MAX_CHOICES:
            return None
        return list(db().scalars(select(model).where(where).order_by(order)))

    wearers = in_schools(Wearer, Wearer.display_name)
    categories = list(
        db().scalars(
            select(Category)
            .where(Category.district_id == scope.district_id)
            .order_by(Category.name)
        )
    )
    return {
        "schools": schools,
        "wearers": wearers,
        "cameras": in_schools(Camera, Camera.serial),
        "docks": in_schools(Dock, Dock.name),
        "categories": categories,
        "statuses": [*EVIDENCE_STATUSES, "tampered"],
        "flags": KNOWN_FLAGS,
        "sorts": {key: label for key, (label, _, _) in SORTS.items()},
    }


def _labels(items: list[EvidenceItem]) -> dict[str, dict[Any, Any]]:
    """Names for the ids on one page of items, in a few queries."""

    def named(model: Any, ids: set[Any]) -> dict[Any, Any]:
        ids.discard(None)
        if not ids:
            return {}
        return {row.id: row for row in db().scalars(select(model).where(model.id.in_(ids)))}

    tags: dict[str, list[str]] = {}
    if items:
        rows = db().execute(
            select(evidence_tags.c.evidence_id, Tag.name)
            .join(Tag, Tag.id == evidence_tags.c.tag_id)
            .where(evidence_tags.c.evidence_id.in_([i.id for i in items]))
            .order_by(Tag.name)
        )
        for evidence_id, name in rows:
            tags.setdefault(evidence_id, []).append(name)
    return {
        "schools": named(School, {i.school_id for i in items}),
        "wearers": named(Wearer, {i.wearer_id for i in items}),
        "cameras": named(Camera, {i.camera_id for i in items}),
        "categories": named(Category, {i.category_id for i in items}),
        "tags": tags,
    }


@bp.get("/evidence")
@login_required
def listing() -> ResponseReturnValue:
    require(Action.VIEW_EVIDENCE)
    scope = _scope()
    args = {k: v for k, v in request.args.items()}
    error = None
    try:
        _resolve_typed(scope, args)
        filters = parse_filters(args, current_app.extensions["bwc.settings"].time_zone)
        page = search(db(), scope, filters, args.get("after") or None)
    except InvalidInput as bad:
        error = str(bad)
        filters, page = Filters(), Page([], None, Filters())
    incident = None
    if filters.incident_id:
        incident = db().get(Incident, filters.incident_id)
        if (
            incident is not None
            and not decide(
                g.principal,
                Action.VIEW_INCIDENT,
                Resource(Kind.INCIDENT, incident.district_id, incident.school_id),
            ).allowed
        ):
            incident = None
    status = 400 if error else 200
    return (
        render_template(
            "evidence/list.html",
            page=page,
            filters=filters,
            args=filters.as_args(),
            choices=_choices(scope),
            typed=_typed(filters),
            labels=_labels(page.items),
            incident=incident,
            error=error,
            bulk_incidents=_bulk_incidents(scope),
        ),
        status,
    )


def _resolve_typed(scope: Scope, args: dict[str, str]) -> None:
    """A wearer badge or camera serial typed into the filters (offered as text when the
    lists are long) becomes its id; one outside the scope is not found, like any other."""
    for key, model, column, what in (
        ("wearer", Wearer, Wearer.badge, "wearer with badge"),
        ("camera", Camera, Camera.serial, "camera with serial"),
    ):
        text = args.pop(key, "").strip()
        if not text:
            continue
        query = select(model.id).where(model.district_id == scope.district_id, column == text)
        if not scope.district_wide:
            query = query.where(model.school_id.in_(sorted(scope.school_ids)))
        found = db().scalar(query)
        if found is None:
            raise InvalidInput(f"no {what} {text[:64]} among the schools you work with")
        args[f"{key}_id"] = str(found)


def _typed(filters: Filters) -> dict[str, str]:
    """What to show in the text filters: the badge and serial of the chosen ids."""
    shown = {}
    if filters.wearer_id:
        wearer = db().get(Wearer, filters.wearer_id)
        shown["wearer"] = wearer.badge if wearer else ""
    if filters.camera_id:
        camera = db().get(Camera, filters.camera_id)
        shown["camera"] = camera.serial if camera else ""
    return shown


def _bulk_incidents(scope: Scope) -> list[Incident]:
    """Incidents the list's bulk form may link to (those the person manages)."""
    manage = scope_for(g.principal, Action.MANAGE_INCIDENTS)
    if manage.empty:
        return []
    query = select(Incident).where(
        Incident.district_id == manage.district_id, Incident.closed_at.is_(None)
    )
    if not manage.district_wide:
        query = query.where(Incident.school_id.in_(sorted(manage.school_ids)))
    return list(db().scalars(query.order_by(Incident.starts_at.desc()).limit(100)))


def _stated_purpose(item: EvidenceItem) -> tuple[str, str] | None:
    """The purpose stated for this item in this session, from the form or remembered."""
    remembered: dict[str, list[str]] = dict(session.get("purposes", {}))
    purpose = request.args.get("purpose", "")
    if purpose:
        if purpose not in PURPOSES:
            abort(400, description="choose one of the listed purposes")
        note = " ".join(request.args.get("note", "").split())
        if len(note) > MAX_PURPOSE_NOTE:
            abort(400, description=f"the note is limited to {MAX_PURPOSE_NOTE} characters")
        remembered.pop(item.id, None)
        remembered[item.id] = [purpose, note]
        session["purposes"] = dict(list(remembered.items())[-REMEMBERED_PURPOSES:])
        return purpose, note
    if item.id in remembered:
        stored = remembered[item.id]
        return stored[0], stored[1]
    return None


def _custody(item: EvidenceItem) -> list[dict[str, Any]]:
    """The item's custody events from the ledger, oldest first, with the details that
    stay in the database (purpose, note) and people's names instead of pseudonyms."""
    rows = list(
        db().execute(
            select(LedgerLeaf, AuditEventRow)
            .outerjoin(
                AuditEventRow,
                (AuditEventRow.ledger_log_id == LedgerLeaf.log_id)
                & (AuditEventRow.ledger_index == LedgerLeaf.idx),
            )
            .where(LedgerLeaf.evidence_id == item.id)
            .order_by(LedgerLeaf.log_id, LedgerLeaf.idx)
        )
    )
    actors = {row.actor for _, row in rows if row is not None and row.actor}
    names: dict[str, str] = {}
    if actors:
        for user in db().scalars(
            select(User).where(User.district_id == item.district_id, User.pseudonym.in_(actors))
        ):
            names[user.pseudonym] = user.display_name
        for dock in db().scalars(
            select(Dock).where(Dock.district_id == item.district_id, Dock.pseudonym.in_(actors))
        ):
            names[dock.pseudonym] = f"dock {dock.name}"
    signed: dict[int, int] = {}
    events = []
    for leaf_row, event in rows:
        try:
            leaf = json.loads(leaf_row.leaf)
        except ValueError:
            leaf = {}
        details = dict(event.details) if event is not None else {}
        actor = str(leaf.get("actor", ""))
        if leaf_row.log_id not in signed:
            signed[leaf_row.log_id] = _checkpoint_size(leaf_row.log_id)
        purpose = details.get("purpose")
        events.append(
            {
                "index": leaf_row.idx,
                "seq": leaf_row.seq,
                "type": str(leaf.get("type", "?")),
                "time": str(leaf.get("time", "")),
                "actor": names.get(actor, actor),
                "purpose": PURPOSES.get(str(purpose), purpose) if purpose else None,
                "note": details.get("note") or None,
                "provable": leaf_row.idx < signed[leaf_row.log_id],
            }
        )
    return events


def _checkpoint_size(log_id: int) -> int:
    return int(
        db().scalar(
            select(func.max(LedgerCheckpoint.size)).where(LedgerCheckpoint.log_id == log_id)
        )
        or 0
    )


@bp.get("/evidence/<evidence_id>/custody/<int:index>/proof")
@login_required
def custody_proof(evidence_id: str, index: int) -> ResponseReturnValue:
    """One custody event's proof, to keep or hand on: its leaf, its inclusion proof and
    the signed checkpoint it is proved against (`bwc-verify` checks all three offline)."""
    item = evidence_or_404(evidence_id)
    log = ledger_sql.log_of(db(), item.district_id)
    leaf = db().get(LedgerLeaf, (log.id, index))
    if leaf is None or leaf.evidence_id != item.id:
        abort(404)
    checkpoint = (
        db()
        .scalars(
            select(LedgerCheckpoint)
            .where(LedgerCheckpoint.log_id == log.id, LedgerCheckpoint.size > index)
            .order_by(LedgerCheckpoint.size.desc())
            .limit(1)
        )
        .first()
    )
    if checkpoint is None:
        abort(409, description="this event is not in a signed checkpoint yet; try in a minute")
    hashes = ledger_sql.inclusion_proof(db(), log.id, index, checkpoint.size)
    body = {
        "leaf": base64.b64encode(leaf.leaf).decode(),
        "inclusion_proof": {
            "leaf_index": index,
            "tree_size": checkpoint.size,
            "hashes": [h.hex() for h in hashes],
        },
        "checkpoint": checkpoint.note,
    }
    response = jsonify(body)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="custody-{item.id}-{index}.json"'
    )
    return response


def _activations(item: EvidenceItem) -> list[ActivationEvent]:
    start = item.recorded_start
    if start is None:
        return list(
            db().scalars(
                select(ActivationEvent)
                .where(ActivationEvent.evidence_id == item.id)
                .order_by(ActivationEvent.seq)
            )
        )
    end = item.recorded_end or start
    return list(
        db().scalars(
            select(ActivationEvent)
            .where(
                ActivationEvent.camera_id == item.camera_id,
                ActivationEvent.corrected_time >= start - ACTIVATION_WINDOW,
                ActivationEvent.corrected_time <= end + ACTIVATION_WINDOW,
            )
            .order_by(ActivationEvent.corrected_time, ActivationEvent.seq)
            .limit(200)
        )
    )


@bp.get("/evidence/<evidence_id>")
@login_required
def detail(evidence_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id)
    principal: Principal = g.principal
    stated = _stated_purpose(item)
    wearer = db().get(Wearer, item.wearer_id) if item.wearer_id else None
    owner = wearer is not None and wearer.user_id == g.user.id
    tags = annotate.item_tags(db(), item)
    incidents = [
        incident
        for incident in db().scalars(
            select(Incident)
            .join(incident_evidence, incident_evidence.c.incident_id == Incident.id)
            .where(incident_evidence.c.evidence_id == item.id)
            .order_by(Incident.starts_at)
        )
        if decide(
            principal,
            Action.VIEW_INCIDENT,
            Resource(Kind.INCIDENT, incident.district_id, incident.school_id),
        ).allowed
    ]
    bookmarks = list(
        db().execute(
            select(Bookmark, User.display_name)
            .join(User, User.id == Bookmark.user_id)
            .where(Bookmark.evidence_id == item.id)
            .order_by(Bookmark.at_ms)
        )
    )
    playable = (
        item.status == "verified" and item.object_id is not None and item.integrity != "tampered"
    )
    resource = Resource(Kind.EVIDENCE, item.district_id, item.school_id, item.wearer_id)
    return render_template(
        "evidence/detail.html",
        item=item,
        stated=stated,
        purposes=PURPOSES,
        max_note=MAX_PURPOSE_NOTE,
        watermark=None if owner else f"{g.user.display_name} · {now():%Y-%m-%d %H:%M} UTC",
        school=db().get(School, item.school_id),
        camera=db().get(Camera, item.camera_id),
        dock=db().get(Dock, item.dock_id) if item.dock_id else None,
        wearer=wearer,
        category=db().get(Category, item.category_id) if item.category_id else None,
        tags=tags,
        incidents=incidents,
        bookmarks=bookmarks,
        custody=_custody(item),
        activations=_activations(item),
        playable=playable,
        playback=proxies.playback_state(db(), item),
        may_download=decide(principal, Action.DOWNLOAD_EVIDENCE, resource).allowed,
        may_annotate=decide(principal, Action.ANNOTATE_EVIDENCE, resource).allowed,
        may_categorise=decide(principal, Action.CATEGORISE_EVIDENCE, resource).allowed,
        categories=list(
            db().scalars(
                select(Category)
                .where(Category.district_id == item.district_id)
                .order_by(Category.name)
            )
        ),
        max_tag=annotate.MAX_TAG,
        linkable=incident_pages.linkable_incidents(item),
        max_bookmark_note=annotate.MAX_BOOKMARK_NOTE,
    )


# --- annotating: tags, category, bookmarks (POST, CSRF-checked, then back to the item) ---


def _back(item: EvidenceItem, anchor: str) -> ResponseReturnValue:
    return redirect(url_for("evidence.detail", evidence_id=item.id) + f"#{anchor}")


def _apply(
    item: EvidenceItem, anchor: str, change: Callable[[], object], done: str
) -> ResponseReturnValue:
    try:
        change()
    except (InvalidInput, NotFound) as refused:
        db().rollback()
        flash(f"{refused}.", "error")
        return _back(item, anchor)
    db().commit()
    flash(done, "success")
    return _back(item, anchor)


@bp.post("/evidence/<evidence_id>/tags")
@login_required
def add_tag(evidence_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id, Action.ANNOTATE_EVIDENCE)
    name = request.form.get("tag", "")
    return _apply(
        item, "tags", lambda: annotate.add_tag(db(), item, g.user, name, now()), "Tag added."
    )


@bp.post("/evidence/<evidence_id>/tags/<int:tag_id>/remove")
@login_required
def remove_tag(evidence_id: str, tag_id: int) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id, Action.ANNOTATE_EVIDENCE)
    return _apply(
        item,
        "tags",
        lambda: annotate.remove_tag(db(), item, g.user, tag_id, now()),
        "Tag removed.",
    )


@bp.post("/evidence/<evidence_id>/category")
@login_required
def set_category(evidence_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id, Action.CATEGORISE_EVIDENCE)
    raw = request.form.get("category_id", "").strip()
    if raw and not raw.isdigit():
        abort(400, description="choose one of the listed categories")
    chosen = int(raw) if raw else None
    return _apply(
        item,
        "tags",
        lambda: annotate.set_category(db(), item, g.user, chosen, now()),
        "Category saved.",
    )


@bp.post("/evidence/<evidence_id>/bookmarks")
@login_required
def add_bookmark(evidence_id: str) -> ResponseReturnValue:
    item = evidence_or_404(evidence_id, Action.ANNOTATE_EVIDENCE)
    at, note = request.form.get("at", ""), request.form.get("note", "")
    return _apply(
        item,
        "bookmarks-heading",
        lambda: annotate.add_bookmark(db(), item, g.user, at, note, now()),
        "Bookmark added.",
    )


@bp.post("/evidence/<evidence_id>/playback-copy")
@login_required
def request_playback_copy(evidence_id: str) -> ResponseReturnValue:
    """Ask (again) for a browser-playable copy: after a failed attempt, or for an item
    docked before copies were made. Anyone who may view the item may ask."""
    item = evidence_or_404(evidence_id)
    job = proxies.request_proxy(db(), item, now(), g.user.id)
    db().commit()
    if job is None:
        flash("A playable copy already exists or is being made.", "success")
    else:
        submit_after_commit(current_app.extensions.get("bwc.jobs"), [job.id])
        flash("A playable copy is being made; reload this page in a minute.", "success")
    return _back(item, "player-heading")
