"""Serve the built agent console (a single-page app) at ``/`` and ``/app/*``; it logs in through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, send_from_directory

from app.api.auth import public

bp = Blueprint("console", __name__)

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist" / "console"

# The console runs no inline script and loads nothing from elsewhere. Email HTML needs inline styles,
# and "show images" loads remote images, so images and styles are the only relaxed sources.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; media-src 'self' blob: https:; connect-src 'self'; "
    "font-src 'self' data:; frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Switchboard</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto">
<h1>The console is not built yet</h1>
<p>Run <code>make run</code>, or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload.</p>
<p>The REST API is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p></body></html>"""


def _dist() -> Path:
    return Path(current_app.config.get("CONSOLE_DIST_DIR") or DEFAULT_DIST)


def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/")
@bp.get("/app")
@bp.get("/app/")
@bp.get("/app/<path:_path>")
@public  # the page itself is static; every piece of data behind it needs a login through the API
def index(_path: str = "") -> Any:
    """Serve the console's index page for every client-side route (history-mode fallback)."""
    index_file = _dist() / "index.html"
    if not index_file.is_file():
        return _harden(Response(NOT_BUILT, status=503, mimetype="text/html"))
    response = send_from_directory(_dist(), "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return _harden(response)


@bp.get("/console/<path:filename>")
@public  # static, content-hashed build output
def asset(filename: str) -> Any:
    """Serve a built asset; hashed file names never change, so they are cached for a year."""
    response = send_from_directory(_dist(), filename, max_age=0)
    if filename.startswith("assets/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return _harden(response)
