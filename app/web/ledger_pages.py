"""The auditor's ledger page: size, checkpoint, verifier key, witnesses, self-audit."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from app.ledger import LedgerService
from app.web.auth import ConfirmForm
from app.web.context import db, login_required, require
from audit.adapters import ledger_sql
from evidence.policy import Action, Principal

bp = Blueprint("ledger", __name__)


def _service() -> LedgerService:
    service: LedgerService = current_app.extensions["bwc.ledger"]
    return service


def alarm_for(principal: Principal | None) -> str | None:
    """The self-audit alarm of the signed-in person's district log, if raised."""
    if principal is None:
        return None
    try:
        log = ledger_sql.log_of(db(), principal.district_id)
    except ledger_sql.LedgerError:
        return None
    audit = ledger_sql.latest_audit(db(), log.id)
    return audit.message if audit is not None and not audit.ok else None


@bp.get("/ledger")
@login_required
def overview() -> ResponseReturnValue:
    require(Action.VERIFY_LEDGER)
    principal: Principal = g.principal
    log = ledger_sql.log_of(db(), principal.district_id)
    service = _service()
    return render_template(
        "ledger.html",
        status=service.status(log.id),
        witnesses=[w.name for w in service.witnesses],
        quorum=service.settings.ledger_witness_quorum,
        confirm=ConfirmForm(),
    )


@bp.post("/ledger/audit")
@login_required
def run_audit() -> ResponseReturnValue:
    require(Action.VERIFY_LEDGER)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("ledger.overview"))
    principal: Principal = g.principal
    log = ledger_sql.log_of(db(), principal.district_id)
    result = _service().audit(log.id)
    if result.ok:
        flash(f"Self-audit passed: {result.message}.", "success")
    else:
        flash(f"Self-audit FAILED: {result.message}", "error")
    return redirect(url_for("ledger.overview"))
