"""The ledger read API for auditors and witnesses (DESIGN.md §4), and cosignature intake.

Leaves hold no personal data, so reads need no login unless BWC_LEDGER_READ_TOKEN is
set. Errors are JSON; proofs are computed from stored subtrees."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.ledger import LedgerService
from app.settings import ConfigError, Settings
from app.web.context import db
from audit.adapters import checkpoints_sql, ledger_sql

ledger_api = Blueprint("ledger_api", __name__, url_prefix="/api/v1/ledger")
MAX_COSIGNED_NOTE = 16 * 1024


def _service() -> LedgerService:
    service: LedgerService = current_app.extensions["bwc.ledger"]
    return service


@ledger_api.before_request
def _require_read_token() -> None:
    settings: Settings = current_app.extensions["bwc.settings"]
    token = settings.ledger_read_token
    if token and request.method == "GET":
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(401)


def _int_arg(name: str) -> int:
    raw = request.args.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        abort(400, description=f"{name} must be a non-negative whole number")
    return int(raw)


def _log() -> ledger_sql.LedgerLog:
    try:
        return ledger_sql.log_by_origin(db(), request.args.get("origin"))
    except ledger_sql.LedgerError as exc:
        abort(404, description=str(exc))


@contextmanager
def _bad_request_on_ledger_error() -> Iterator[None]:
    """An impossible range or size is the caller's mistake: a JSON 400 saying why."""
    try:
        yield
    except ledger_sql.LedgerError as exc:
        abort(400, description=str(exc))


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain", headers={"Cache-Control": "no-store"})


@ledger_api.get("/checkpoint")
def checkpoint() -> ResponseReturnValue:
    log = _log()
    latest = ledger_sql.latest_checkpoint(db(), log.id)
    if latest is None:
        abort(404, description="no checkpoint has been signed yet")
    return _text(checkpoints_sql.note_with_cosignatures(db(), latest))


@ledger_api.get("/key")
def key() -> ResponseReturnValue:
    log = _log()
    service = _service()
    try:
        lines = [service.signer.verifier_key(log.origin)]
    except ConfigError:
        abort(503, description="the ledger signing key is missing: run `bwc init`")
    # The log's key first; then the witnesses whose cosignatures count.
    lines += list(service.settings.ledger_witnesses)
    return _text("\n".join(lines) + "\n")


@ledger_api.get("/entries")
def entries() -> ResponseReturnValue:
    log = _log()
    start, end = _int_arg("start"), _int_arg("end")
    with _bad_request_on_ledger_error():
        rows = ledger_sql.entries(db(), log.id, start, end)
    return jsonify(
        entries=[{"index": i, "leaf": base64.b64encode(leaf).decode()} for i, leaf in rows]
    )


@ledger_api.get("/proof/inclusion")
def inclusion() -> ResponseReturnValue:
    log = _log()
    index, size = _int_arg("index"), _int_arg("tree_size")
    with _bad_request_on_ledger_error():
        hashes = ledger_sql.inclusion_proof(db(), log.id, index, size)
    return jsonify(leaf_index=index, tree_size=size, hashes=[h.hex() for h in hashes])


@ledger_api.get("/proof/consistency")
def consistency() -> ResponseReturnValue:
    log = _log()
    first, second = _int_arg("first"), _int_arg("second")
    with _bad_request_on_ledger_error():
        hashes = ledger_sql.consistency_proof(db(), log.id, first, second)
    return jsonify(first=first, second=second, hashes=[h.hex() for h in hashes])


@ledger_api.post("/cosignatures")
def cosignatures() -> ResponseReturnValue:
    """A witness posts our checkpoint with its cosignature/v1 line(s) appended."""
    if request.content_length is None or request.content_length > MAX_COSIGNED_NOTE:
        abort(413)
    text = request.get_data(as_text=True)
    service = _service()
    if not service.witnesses:
        abort(404, description="this service has no witnesses configured")
    try:
        stored = checkpoints_sql.accept_cosignatures(db(), text, service.witnesses)
        db().commit()
    except checkpoints_sql.CosignatureRejected as exc:
        db().rollback()
        abort(400, description=str(exc))
    return jsonify(accepted=stored)
