"""Server-side sessions: the cookie carries a random token, the data lives in the database.

So that signing out, an administrator's disable or an MFA reset takes effect on the very
next request, the session row is the source of truth; deleting it ends the session.
Sessions end after an idle period and after an absolute lifetime, whichever comes first,
and get a new token whenever someone signs in (no session fixation)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete
from werkzeug.datastructures import CallbackDict

from app.accounts.models import WebSession

TOUCH_EVERY = timedelta(seconds=30)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    def __init__(
        self,
        data: dict[str, Any] | None = None,
        token: str | None = None,
        created_at: datetime | None = None,
    ) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.token = token
        self.created_at = created_at
        self.modified = False
        self.rotate_from: str | None = None
        self.ended: str | None = None  # why the stored session ended, if it did
        self.ended_user_id: int | None = None

    def rotate(self) -> None:
        """Give this session a new token; the old row is deleted when the response is saved."""
        if self.token and self.rotate_from is None:
            self.rotate_from = self.token
        self.token = None
        self.created_at = None
        self.modified = True


class ServerSessionInterface(SessionInterface):
    def __init__(self, idle: timedelta, lifetime: timedelta) -> None:
        self.idle = idle
        self.lifetime = lifetime

    def _db(self, app: Flask) -> Any:
        return app.extensions["bwc.db"]

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 128:
            return ServerSession()
        now = datetime.now(UTC)
        with self._db(app).transaction() as db:
            row = db.get(WebSession, _digest(token))
            if row is None:
                return ServerSession()
            reason = None
            if now - row.last_seen_at > self.idle:
                reason = "idle_timeout"
            elif now >= row.expires_at:
                reason = "lifetime_exceeded"
            if reason is not None:
                db.delete(row)
                expired = ServerSession()
                expired.ended = reason
                expired.ended_user_id = row.user_id
                return expired
            if now - row.last_seen_at > TOUCH_EVERY:
                row.last_seen_at = now
            return ServerSession(dict(row.data), token=token, created_at=row.created_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            raise TypeError("ServerSessionInterface saves only ServerSession objects")
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        now = datetime.now(UTC)
        with self._db(app).transaction() as db:
            if session.rotate_from:
                db.execute(
                    delete(WebSession).where(WebSession.id_sha256 == _digest(session.rotate_from))
                )
            if not session:
                if session.token:
                    db.execute(
                        delete(WebSession).where(WebSession.id_sha256 == _digest(session.token))
                    )
                if session.token or session.rotate_from or session.ended:
                    response.delete_cookie(name, domain=domain, path=path)
                return
            if not session.modified and session.token:
                return
            if session.token is None:
                session.token = secrets.token_urlsafe(32)
                session.created_at = now
                db.add(
                    WebSession(
                        id_sha256=_digest(session.token),
                        user_id=session.get("user_id"),
                        data=dict(session),
                        created_at=now,
                        last_seen_at=now,
                        expires_at=now + self.lifetime,
                    )
                )
            else:
                row = db.get(WebSession, _digest(session.token))
                if row is None:  # ended meanwhile (signed out elsewhere, disabled)
                    response.delete_cookie(name, domain=domain, path=path)
                    return
                row.data = dict(session)
                row.user_id = session.get("user_id")
                row.last_seen_at = now
        response.set_cookie(
            name,
            session.token,
            httponly=True,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app) or "Lax",
            path=path,
            domain=domain,
        )


def prune_expired(app: Flask, idle: timedelta, now: datetime) -> int:
    """Delete sessions past their lifetime or idle limit; returns how many."""
    with app.extensions["bwc.db"].transaction() as db:
        result = db.execute(
            delete(WebSession).where(
                (WebSession.expires_at <= now) | (WebSession.last_seen_at < now - idle)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
