"""The inbound mail spool, for admins: what became of each mail accepted over SMTP, and retrying failed mail."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, jsonify
from flask_login import current_user
from pydantic import Field

from app.api.attachments import stored_file
from app.api.auth import role_required
from app.api.fields import DbId, Query
from app.api.validation import documented, validate
from app.models import InboundMail
from app.serializers import iso
from app.services.errors import Conflict
from app.services.mail import get_spooled_mail, list_spooled_mail, retry_spooled_mail, spool_counts

bp = Blueprint("inbound_mail", __name__, url_prefix="/api/v1/inbound-mail")


class SpoolQuery(Query):
    status: Literal["queued", "processing", "stored", "rejected", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    before: DbId | None = Field(default=None, description="the next page: mail older than this id")


def inbound_mail_dict(row: InboundMail) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": iso(row.received_at),
        "mail_from": row.mail_from,
        "recipients": list(row.recipients),
        "size": row.size,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "outcome": row.outcome,
        "message_id": row.message_id,
        "processed_at": iso(row.processed_at),
    }


@bp.get("")
@role_required("admin")
@validate(query=SpoolQuery)
@documented(summary="Mail accepted over SMTP, newest first, and what became of it (filter failed or rejected)")
def spool(query: SpoolQuery) -> Any:
    """List spooled mail; ``next_before`` pages on."""
    rows = list_spooled_mail(query.status, limit=query.limit, before_id=query.before)
    next_before = rows[-1].id if len(rows) == query.limit else None
    return jsonify(items=[inbound_mail_dict(row) for row in rows], next_before=next_before)


@bp.get("/counts")
@role_required("admin")
@documented(summary="How many spooled mails are in each status (failed ones wait for a retry)")
def counts() -> Any:
    """Count spooled mail by status; live changes of the failed count come as inbound_mail.failed events."""
    return jsonify(spool_counts())


@bp.get("/<int:inbound_mail_id>")
@role_required("admin")
@documented(summary="One spooled mail")
def spooled(inbound_mail_id: int) -> Any:
    """Show one spooled mail and its outcome."""
    return jsonify(inbound_mail_dict(get_spooled_mail(inbound_mail_id)))


@bp.get("/<int:inbound_mail_id>/raw")
@role_required("admin")
@documented(summary="Download a spooled mail's raw source (message/rfc822), e.g. to see why it failed")
def spooled_raw(inbound_mail_id: int) -> Any:
    """Download the mail exactly as it arrived."""
    row = get_spooled_mail(inbound_mail_id)
    return stored_file(
        row.raw_sha256, mimetype="message/rfc822", download_name=f"inbound-{row.id}.eml", as_attachment=True
    )


@bp.post("/<int:inbound_mail_id>/retry")
@role_required("admin")
@documented(summary="Queue a failed mail for the worker again (after fixing what made it fail)")
def retry(inbound_mail_id: int) -> Any:
    """Queue one failed mail again; 409 unless it failed."""
    row = get_spooled_mail(inbound_mail_id)
    if not retry_spooled_mail([row.id], actor_id=current_user.id):
        raise Conflict(f"spooled mail {row.id} is {row.status}, not failed: nothing to retry", code="not_failed")
    return jsonify(inbound_mail_dict(get_spooled_mail(inbound_mail_id)))
