"""The docks' API: enrolment, and what a dock reports beside the footage (DESIGN.md §5).

The answer also carries what the dock pins for the rest of its life: the service's
ingest public key (to wrap data keys to) and the custody log's verifier key (to check
receipts with). The token is spent by the first exchange, successful or not expired."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app.api.dock_auth import dock_error, dock_required
from app.declaration import UploadRefused
from app.devices import enrol_dock
from app.docking import (
    record_activations,
    record_heartbeat,
    record_session,
    record_wipe,
    registered_cameras,
)
from app.ledger import LedgerService
from app.vault import INGEST_ALGORITHM, Vault
from app.web.context import db, now
from audit.adapters import ledger_sql
from evidence.errors import NotFound

docks_api = Blueprint("docks_api", __name__, url_prefix="/api/v1/docks")
MAX_TOKEN = 200


@docks_api.post("/enrol")
def enrol() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
        response = jsonify(error={"status": 400, "detail": 'send {"token": "<enrolment token>"}'})
        return response, 400
    try:
        dock, credential = enrol_dock(db(), token, now=now())
    except NotFound as exc:
        db().rollback()
        return jsonify(error={"status": 404, "detail": str(exc)}), 404
    vault = cast(Vault, current_app.extensions["bwc.vault"])
    version, public = vault.ingest_public_key(db())
    ledger = cast(LedgerService, current_app.extensions["bwc.ledger"])
    log = ledger_sql.log_of(db(), dock.district_id)
    answer = {
        "dock": dock.name,
        "credential": credential,
        "ingest_key": {"version": version, "public_key": public, "algorithm": INGEST_ALGORITHM},
        "log": {"origin": log.origin, "verifier_key": ledger.signer.verifier_key(log.origin)},
    }
    db().commit()
    return jsonify(answer), 201


MAX_REPORT = 4 * 1024 * 1024


def _json_body() -> object:
    """The request's JSON, bounded; None when missing or not JSON."""
    if request.content_length is None or request.content_length > MAX_REPORT:
        return None
    request.max_content_length = MAX_REPORT
    return request.get_json(silent=True)


def _refused(refused: UploadRefused) -> ResponseReturnValue:
    db().rollback()
    return dock_error(refused.status, refused.reason, str(refused))


@docks_api.get("/cameras")
@dock_required
def cameras() -> ResponseReturnValue:
    """Cameras this dock may offload (identity rule 1: registered to its school)."""
    return jsonify(cameras=registered_cameras(db(), g.dock))


@docks_api.post("/heartbeat")
@dock_required
def heartbeat() -> ResponseReturnValue:
    try:
        record_heartbeat(g.dock, _json_body(), now())
    except UploadRefused as refused:
        return _refused(refused)
    db().commit()
    return Response(status=204)


@docks_api.post("/sessions")
@dock_required
def sessions() -> ResponseReturnValue:
    try:
        row = record_session(db(), g.dock, _json_body(), now())
    except UploadRefused as refused:
        return _refused(refused)
    db().commit()
    return jsonify(session_id=row.session_id, alerts=row.alerts), 201


@docks_api.post("/activations")
@dock_required
def activations() -> ResponseReturnValue:
    try:
        added = record_activations(db(), g.dock, _json_body(), now())
    except UploadRefused as refused:
        return _refused(refused)
    db().commit()
    return jsonify(added=added), 201


@docks_api.post("/wipes")
@dock_required
def wipes() -> ResponseReturnValue:
    try:
        record_wipe(db(), g.dock, _json_body(), now())
    except UploadRefused as refused:
        return _refused(refused)
    db().commit()
    return Response(status=204)
