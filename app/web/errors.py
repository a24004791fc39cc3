"""One error handler for the whole app: JSON under /api/, a page elsewhere; never a trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.web.context import rollback_db

logger = logging.getLogger(__name__)

_ADVICE = {
    400: "The request could not be understood. Go back, check what you entered and try again.",
    401: "Please sign in to continue.",
    403: "Your role does not allow this. Ask an administrator if you need it for your work.",
    404: "There is nothing here, or you do not have access to it.",
    405: "That action is not available here.",
    413: "What you sent is too large.",
    429: "Too many requests. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}


def _respond(code: int, title: str, advice: str) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return jsonify(error={"status": code, "title": title, "detail": advice}), code
    return render_template("error.html", code=code, title=title, advice=advice), code


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    rollback_db()
    code = exc.code or 500
    advice = _ADVICE.get(code, exc.description or "")
    if exc.description != type(exc).description:
        advice = exc.description or advice  # a specific reason we gave with abort()
    return _respond(code, exc.name, advice)


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    rollback_db()
    return _respond(
        400,
        "Form expired",
        "This form has expired or did not come from this site. "
        "Reload the page and submit it again.",
    )


def _unexpected(exc: Exception) -> ResponseReturnValue:
    rollback_db()
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return _respond(500, "Internal Server Error", _ADVICE[500])


def install(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
