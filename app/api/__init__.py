"""The JSON API under /api/v1 (docks, auditors, integrators)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app.web.context import db

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.get("/health")
def health() -> ResponseReturnValue:
    """Liveness and database reachability, for load balancers; reveals nothing else."""
    db().execute(text("SELECT 1"))
    return jsonify(status="ok")
