"""Dock enrolment: a one-time token becomes the dock's credential (DESIGN.md §5).

The answer also carries what the dock pins for the rest of its life: the service's
ingest public key (to wrap data keys to) and the custody log's verifier key (to check
receipts with). The token is spent by the first exchange, successful or not expired."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.devices import enrol_dock
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
