"""Files for agents: attachments of any message, an email's raw source, the bounce report of a sent mail, and
the inline images the sanitised HTML of an email points at."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, send_file
from sqlalchemy import select

from app.api.auth import role_required
from app.api.errors import not_found
from app.api.validation import documented
from app.extensions import db
from app.models import Attachment, Message
from app.services import attachments as files

bp = Blueprint("attachments", __name__, url_prefix="/api/v1")

# Raster images are shown in the page; anything else (SVG, HTML, PDF …) is downloaded, never rendered here.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Whatever a stored file contains, the browser must not run it or guess another type for it.
_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


def stored_file(sha256: str, *, mimetype: str, download_name: str, as_attachment: bool) -> Response:
    try:
        path = files.path_for(sha256)
    except ValueError:
        raise not_found("file") from None
    if not path.is_file():
        raise not_found("file")
    response = send_file(path, mimetype=mimetype, as_attachment=as_attachment, download_name=download_name)
    response.headers.update(_FILE_HEADERS)
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


def attachment_response(attachment: Attachment) -> Response:
    """Send a stored attachment safely: raster images inline, anything else as a sandboxed download."""
    inline = attachment.content_type.lower() in INLINE_TYPES
    return stored_file(
        attachment.sha256,
        mimetype=attachment.content_type if inline else "application/octet-stream",
        download_name=attachment.filename,
        as_attachment=not inline,
    )


@bp.get("/attachments/<int:attachment_id>")
@role_required("agent")
@documented(summary="Download an attachment of a message")
def attachment(attachment_id: int) -> Any:
    """Download a file attached to a message (images are shown inline)."""
    found = db.session.get(Attachment, attachment_id)
    if found is None:
        raise not_found("attachment")
    return attachment_response(found)


@bp.get("/messages/<int:message_id>/raw")
@role_required("agent")
@documented(summary="Download the raw source of an email (message/rfc822)")
def raw_source(message_id: int) -> Any:
    """Download the raw source of an email as it arrived."""
    message = db.session.get(Message, message_id)
    if message is None or not message.raw_path:
        raise not_found("raw source")
    return stored_file(
        message.raw_path, mimetype="message/rfc822", download_name=f"message-{message.id}.eml", as_attachment=True
    )


@bp.get("/messages/<int:message_id>/bounce")
@role_required("agent")
@documented(summary="Download the delivery report that bounced an email we sent")
def bounce_report(message_id: int) -> Any:
    """Download the delivery report (bounce) received for an email we sent."""
    message = db.session.get(Message, message_id)
    report = (message.meta or {}).get("bounce") if message is not None else None
    if not report or not report.get("raw_sha256"):
        raise not_found("bounce report")
    return stored_file(
        report["raw_sha256"],
        mimetype="message/rfc822",
        download_name=f"message-{message_id}-bounce.eml",
        as_attachment=True,
    )


@bp.get("/email/inline/<string:sha256>")
@role_required("agent")
@documented(summary="An inline image of an email (what its cid: references point to)")
def inline_image(sha256: str) -> Any:
    """Serve an image an email embeds (cid:), addressed by its SHA-256 as the sanitised HTML refers to it."""
    found = db.session.scalar(select(Attachment).where(Attachment.sha256 == sha256).limit(1))
    if found is None:
        raise not_found("inline image")
    return attachment_response(found)
