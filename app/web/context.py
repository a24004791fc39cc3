"""Per-request context: the database session, who is signed in, and authorisation checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from sqlalchemy.orm import Session

from app.accounts import signin
from app.accounts.admin import principal_for
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.org import User
from evidence.policy import ACTION_KIND, Action, Decision, Kind, Principal, Resource, decide

F = TypeVar("F", bound=Callable[..., Any])


def now() -> datetime:
    return datetime.now(UTC)


def db() -> Session:
    """The request's database session (opened on first use, closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["bwc.db"].sessions()
    return cast(Session, g.db)


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def rollback_db() -> None:
    """Undo the request's unfinished work (error paths); the session stays usable."""
    session = g.get("db")
    if session is not None:
        session.rollback()


def client_address() -> str | None:
    return request.remote_addr


def load_signed_in_user() -> None:
    """Resolve the session's user on every request, so a disable takes effect at once."""
    g.user = None
    g.principal = None
    ended = getattr(session, "ended", None)
    ended_user_id = getattr(session, "ended_user_id", None)
    if ended and ended_user_id is not None:
        user = db().get(User, ended_user_id)
        if user is not None:
            signin.record_logout(db(), user, now(), reason=ended)
            db().commit()
        if not request.path.startswith("/api/"):
            flash(
                "Your session ended after a period of inactivity or at its time limit. "
                "Please sign in again.",
                "info",
            )
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = db().get(User, user_id)
    if user is None or not user.active or not user.mfa_enrolled:
        session.clear()
        return
    g.user = user
    g.principal = principal_for(db(), user)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        abort(401)
    return cast(Principal, principal)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if request.path.startswith("/api/"):
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def require(action: Action, resource: Resource | None = None) -> None:
    """Abort with 404 or 403 unless the signed-in principal may do action (to resource)."""
    decision = decide(current_principal(), action, resource)
    if decision is Decision.NOT_FOUND:
        abort(404)
    if decision is Decision.FORBIDDEN:
        abort(403)


def evidence_or_404(evidence_id: str, action: Action = Action.VIEW_EVIDENCE) -> EvidenceItem:
    """The evidence item, if the signed-in person may do action to it; 404 (or 403 when
    they may see it but not do this) otherwise, also for ids that are not ids."""
    item = db().get(EvidenceItem, evidence_id) if len(evidence_id) == 36 else None
    if item is None:
        abort(404)
    require(action, Resource(Kind.EVIDENCE, item.district_id, item.school_id, item.wearer_id))
    return item


def permits(action: Action, district_wide: bool = False) -> bool:
    """May the signed-in person use this function at all (district_wide: on the district
    itself, which a school's grant does not reach)? For showing links, not for access."""
    principal = g.get("principal")
    if principal is None:
        return False
    if district_wide:
        kind = ACTION_KIND[action] or Kind.DISTRICT
        return decide(principal, action, Resource(kind, principal.district_id, None)).allowed
    return decide(principal, action).allowed
