"""The chat widget over HTTP: the loader script, the iframe app, visitor sessions, history and attachments.

Everything here is public on purpose and authenticates otherwise: the iframe page may only be framed by the
channel's allowed origins (CSP ``frame-ancestors``); a session is only issued for an allowed embedding
origin; history and files need the visitor token (``Authorization: Bearer``), and show only what that
visitor may see (``app.services.widget``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from flask_login import current_user
from pydantic import Field

from app.api.attachments import attachment_response
from app.api.auth import public, role_required
from app.api.errors import ApiError
from app.api.validation import Schema, documented, validate
from app.extensions import db, limiter
from app.models import AuditLog, Channel
from app.services.errors import NotFound
from app.services.widget import (
    VerificationFailed,
    Visitor,
    WidgetSettings,
    channel_status,
    history,
    host_allowed,
    read_token,
    start_session,
    store_upload,
    visible_attachment,
    widget_channel,
)
from connectors.chat.payload import canonical_origin, user_hash

bp = Blueprint("widget", __name__)

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "static" / "widget"
NOT_BUILT = "The chat widget is not built yet: run `make run` (or `cd frontend && npm ci && npm run build`)."


def _dist() -> Path:
    return Path(current_app.config.get("WIDGET_DIST_DIR") or DEFAULT_DIST)


def _limit(key: str, default: str) -> Any:
    return lambda: str(current_app.config.get(key, default))


# --- static: loader and iframe app --------------------------------------------------------------------------


@bp.get("/widget.js")
@public  # the loader script a shop pastes into its pages
def loader() -> Any:
    """Serve the tiny loader script: it draws the launcher and opens the iframe on demand."""
    if not (_dist() / "widget.js").is_file():
        return Response(f"console.error({NOT_BUILT!r});", status=503, mimetype="text/javascript")
    response = send_from_directory(_dist(), "widget.js", mimetype="text/javascript", max_age=300)
    # Short cache: the loader's name never changes; it loads the content-hashed app.
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _frame_policy(channel: Channel | None) -> str:
    origins = " ".join(
        origin
        for origin in (canonical_origin(o) for o in (WidgetSettings.of(channel).allowed_origins if channel else ()))
        if origin
    )
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {origins or chr(39) + 'none' + chr(39)}"
    )


@bp.get("/widget/")
@public  # the iframe page; the browser refuses to frame it on sites not allowed by the channel
def frame() -> Any:
    """Serve the iframe app with a CSP that lets only the channel's allowed origins frame it."""
    channel = None
    if (raw := request.args.get("channel", "")).isdigit():
        try:
            channel = widget_channel(int(raw))
        except NotFound:
            channel = None
    if channel is None:
        raise ApiError(404, "not_found", "Unknown chat channel.")
    if not (_dist() / "index.html").is_file():
        return Response(NOT_BUILT, status=503, mimetype="text/plain")
    response = send_from_directory(_dist(), "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = _frame_policy(channel)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/widget/assets/<path:filename>")
@public  # static, content-hashed build output
def asset(filename: str) -> Any:
    """Serve a built asset of the iframe app; hashed names never change, so they are cached for a year."""
    response = send_from_directory(_dist() / "assets", filename, max_age=0)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- visitor API --------------------------------------------------------------------------------------------


class SessionBody(Schema):
    channel_id: int
    token: str | None = Field(default=None, max_length=2048)
    # The embedding page's origin, as the iframe learned it from the loader's postMessage.
    host: str | None = Field(default=None, max_length=512)
    user_id: str | None = Field(default=None, min_length=1, max_length=255)
    user_hash: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    fields: dict[str, str | None] | None = None


def _own_origins() -> set[str]:
    origins = {canonical_origin(request.host_url), canonical_origin(current_app.config.get("PUBLIC_URL"))}
    return {origin for origin in origins if origin}


def _embedding_origin(claimed: str | None) -> str | None:
    origin = canonical_origin(request.headers.get("Origin"))
    if origin is not None and origin not in _own_origins():
        return origin
    return canonical_origin(claimed)


def visitor_cookie_name(channel_id: int) -> str:
    return f"sb_visitor_{channel_id}"


def _visitor() -> tuple[Visitor, Channel]:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    visitor = read_token(token.strip()) if scheme.lower() == "bearer" else None
    if visitor is None:
        raise ApiError(401, "unauthorized", "Send the visitor token as 'Authorization: Bearer TOKEN'.")
    try:
        channel = widget_channel(visitor.channel_id)
    except NotFound:
        raise ApiError(401, "unauthorized", "This chat is no longer available.") from None
    return visitor, channel


@bp.post("/api/v1/widget/session")
@public  # authenticated by the embedding origin and the visitor token / shop HMAC
@limiter.limit(_limit("WIDGET_SESSION_RATE_LIMIT", "30 per minute"), methods=["POST"])
@validate(body=SessionBody)
@documented(summary="Start or restore a widget visitor session (optionally HMAC-verified); record pre-chat fields")
def session(body: SessionBody) -> Any:
    """Issue or restore a visitor token for an allowed embedding origin."""
    from app.realtime.widget import online_agent_ids

    try:
        channel = widget_channel(body.channel_id)
    except NotFound:
        raise ApiError(404, "not_found", "Unknown chat channel.") from None
    host = _embedding_origin(body.host)
    if host is None or not host_allowed(channel, host):
        raise ApiError(403, "origin_not_allowed", "This site may not use this chat.")
    cookie = visitor_cookie_name(channel.id)
    try:
        result = start_session(
            channel,
            token=body.token or request.cookies.get(cookie),
            user_id=body.user_id,
            user_hash=body.user_hash,
            name=body.name,
            email=body.email,
            fields=body.fields,
        )
    except VerificationFailed as exc:
        raise ApiError(403, exc.code, str(exc), exc.fields) from None
    status = channel_status(channel, online_agent_ids(), result.conversation)
    response = jsonify(result.to_dict() | {"status": status.to_dict()})
    # Browsers that block third-party storage (Chrome's third-party cookie phase-out denies localStorage to
    # the iframe) still keep a partitioned cookie (CHIPS): it lives in the iframe's origin, keyed to the shop's
    # site, so the shop's page can never read it and no other site's embed ever gets it.
    response.set_cookie(
        cookie,
        result.token,
        max_age=int(current_app.config.get("WIDGET_TOKEN_MAX_AGE_DAYS", 365)) * 86400,
        path="/api/v1/widget/",
        secure=True,
        httponly=True,
        samesite="None",
        partitioned=True,
    )
    return response


class HistoryQuery(Schema):
    before: int | None = None
    limit: int = Field(default=50, ge=1, le=100)


@bp.get("/api/v1/widget/messages")
@public  # authenticated by the visitor token
@validate(query=HistoryQuery)
@documented(summary="The visitor's own chat history (their current conversation, chat messages only)")
def messages(query: HistoryQuery) -> Any:
    """Return the visitor's messages, oldest first; ``before`` pages further back."""
    visitor, _ = _visitor()
    conversation, items, more = history(visitor, before=query.before, limit=query.limit)
    return jsonify(conversation_id=conversation.id if conversation else None, items=items, has_more=more)


@bp.post("/api/v1/widget/attachments")
@public  # authenticated by the visitor token
@limiter.limit(_limit("WIDGET_UPLOAD_RATE_LIMIT", "20 per minute"), methods=["POST"])
@documented(summary="Upload a file (multipart field 'file') to send with the next widget message")
def upload() -> Any:
    """Check a file against the channel's type and size limits and return a token to send it with."""
    visitor, channel = _visitor()
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "bad_request", "Send the file as multipart field 'file'.")
    limit = WidgetSettings.of(channel).max_attachment_bytes
    data = file.stream.read(limit + 1)
    return jsonify(store_upload(channel, visitor, data, file.filename, file.mimetype)), 201


@bp.get("/api/v1/widget/attachments/<int:attachment_id>")
@public  # authenticated by the visitor token; only files of the visitor's own messages
def download(attachment_id: int) -> Any:
    """Send a file of a message this visitor may see."""
    visitor, _ = _visitor()
    return attachment_response(visible_attachment(visitor, attachment_id))


# --- admin --------------------------------------------------------------------------------------------------


def _chat_channel_for_admin(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != "chat":
        raise NotFound(f"chat channel {channel_id} not found")
    return channel


@bp.get("/api/v1/widget/channels/<int:channel_id>/snippet")
@role_required("admin")
@documented(summary="The script tag to paste into a shop's pages, and how to sign a logged-in user")
def snippet(channel_id: int) -> Any:
    """Return the copyable embed snippet of a chat channel."""
    channel = _chat_channel_for_admin(channel_id)
    settings = WidgetSettings.of(channel)
    src = f"{current_app.config['PUBLIC_URL']}/widget.js"
    tag = f'<script src="{src}" data-channel="{channel.id}" async></script>'
    verified = (
        f'<script src="{src}" data-channel="{channel.id}" data-user-id="USER_ID" '
        f'data-user-hash="HMAC_SHA256_HEX_OF_USER_ID" async></script>'
    )
    return jsonify(
        html=tag,
        verified_html=verified,
        identity_verification=settings.identity_secret is not None,
        hmac="hex(HMAC-SHA256(key=identity_secret, message=user id)), computed on the shop's server",
        allowed_origins=list(settings.allowed_origins),
    )


@bp.post("/api/v1/widget/channels/<int:channel_id>/secret")
@role_required("admin")
@documented(summary="Generate (or rotate) the channel's identity-verification secret; shown in this response")
def rotate_secret(channel_id: int) -> Any:
    """Create a new HMAC secret for verifying logged-in shop users; the old one stops working."""
    channel = _chat_channel_for_admin(channel_id)
    secret = secrets.token_hex(32)
    channel.settings = {**(channel.settings or {}), "identity_secret": secret}
    db.session.add(
        AuditLog(actor_id=current_user.id, action="channel.secret_rotated", target_type="channel", target_id=channel.id)
    )
    db.session.commit()
    example = user_hash(secret, "42")
    return jsonify(identity_secret=secret, example={"user_id": "42", "user_hash": example}), 201
