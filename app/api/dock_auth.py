"""Dock authentication for the API, and the JSON error shape dock clients read.

Docks send `Authorization: Bearer <credential>`; only its SHA-256 is stored. An
unknown or revoked credential gets 401 and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, g, jsonify, request

from app.devices import dock_for_credential
from app.web.context import db

TUS_VERSION = "1.0.0"
F = TypeVar("F", bound=Callable[..., Any])


def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def dock_error(status: int, reason: str, message: str) -> Response:
    response = jsonify(error={"status": status, "reason": reason, "detail": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bwc-dock"'
    return tus_headers(response)


def dock_required(view: F) -> F:
    """Authenticate the dock; unknown or revoked credentials get 401 and nothing else."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        dock = None
        if header.startswith("Bearer "):
            dock = dock_for_credential(db(), header.removeprefix("Bearer ").strip())
        if dock is None:
            return dock_error(401, "unauthenticated", "a valid dock credential is required")
        g.dock = dock
        return view(*args, **kwargs)

    return cast(F, wrapped)
