"""Health check for load balancers and monitors."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from app.api.auth import public
from app.api.validation import documented
from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
@documented(summary="Process up and database reachable (200), or database down (503)")
def healthz() -> Any:
    """Report whether the process is up and the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any driver error means "not healthy", which is the answer, not a crash
        return jsonify(status="error", database="unreachable", detail=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")


@bp.get("/api/v1/ping")
@public
@documented(summary="A no-op that answers without touching the database (latency and load-balancer probes)")
def ping() -> Any:
    """Answer at once: the process is up and serving HTTP."""
    return jsonify(ok=True)
