"""SMS specifics that are not plain ingest: opt-out keywords, delivery receipts, MMS media arriving later.

Inbound MMS media are fetched by the worker, never inside the webhook: an MMS message is stored with its
media list in ``meta["media"]`` and ``next_attempt_at`` set, which puts it on the same index the outbox uses
(``delivery_status='received'`` rows are never claimed by the outbox, which only takes queued/sending).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from typing import Any

from sqlalchemy import select

from app.events import CUSTOMER_UPDATED, MESSAGE_UPDATED, Event, publish
from app.extensions import db
from app.models import Attachment, AuditLog, CustomerIdentity, Message, utcnow
from app.serializers import customer_dict, message_dict
from app.services import attachments as files
from app.services.customers import surviving_customer
from connectors.base import Identity

log = logging.getLogger(__name__)

# A delivery status only moves forward; Twilio's callbacks may arrive out of order.
DELIVERY_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
MEDIA_MAX_ATTEMPTS = 6
MEDIA_BACKOFF = dt.timedelta(seconds=10)
MEDIA_LEASE = dt.timedelta(minutes=5)


def _locked(query: Any) -> Any:
    """Lock the row on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers)."""
    return query.with_for_update() if db.dialect == "postgresql" else query


def apply_opt_keyword(
    identity: Identity, keyword: str, *, channel_address: str | None = None
) -> CustomerIdentity | None:
    """Record STOP/START from a phone number on its identity; HELP changes nothing. Commit, tell consoles."""
    if keyword not in ("stop", "start"):
        return None
    record = db.session.scalar(
        _locked(
            select(CustomerIdentity).where(
                CustomerIdentity.kind == identity.kind, CustomerIdentity.value == identity.value
            )
        )
    )
    if record is None:
        return None
    opted_out = keyword == "stop"
    if record.opted_out != opted_out:
        record.opted_out = opted_out
        db.session.add(
            AuditLog(
                action="identity.opted_out" if opted_out else "identity.opted_in",
                target_type="customer",
                target_id=record.customer_id,
                data={"kind": record.kind, "value": record.value, "channel_address": channel_address},
            )
        )
        customer = surviving_customer(record.customer)
        publish(db.session, Event(CUSTOMER_UPDATED, {"customer": customer_dict(customer)}))
    db.session.commit()
    return record


def _event(message: Message) -> Event:
    return Event(MESSAGE_UPDATED, {"message": message_dict(message)}, conversation_id=message.conversation_id)


# Messages the outbox just marked sent in this process, for a late look at an early delivery receipt.
_recently_sent: deque[int] = deque(maxlen=10_000)


def note_sent(message_id: int) -> None:
    _recently_sent.append(message_id)


def record_delivery_status(
    message_sid: str,
    delivery_status: str | None,
    *,
    provider_status: str,
    error_code: str | None = None,
    error: str | None = None,
    message_id: int | None = None,
) -> Message | None:
    """Apply a delivery receipt to the outbound SMS it belongs to; return it, or None when unknown.

    ``message_id`` comes from our own status-callback URL, so a receipt that overtakes the outbox recording
    the provider id still finds its message. While the outbox is mid-send the receipt is only noted in
    ``meta`` (the outbox is about to write "sent"); ``reconcile_early_receipts`` applies it afterwards.
    """
    message = None
    if message_id is not None:
        message = db.session.scalar(
            _locked(
                select(Message).where(Message.id == message_id, Message.channel == "sms", Message.direction == "out")
            )
        )
        if message is not None and message.provider_id not in (None, message_sid):
            message = None  # the id in the URL does not match the sid Twilio reports
    if message is None:
        message = db.session.scalar(
            _locked(select(Message).where(Message.channel == "sms", Message.provider_id == message_sid))
        )
    if message is None or message.direction != "out":
        db.session.rollback()
        return None
    meta = dict(message.meta or {})
    meta["provider_status"] = provider_status
    if error_code:
        meta["provider_error_code"] = error_code
    if delivery_status is None:
        message.meta = meta
        db.session.commit()
        return message
    if message.delivery_status in ("queued", "sending"):
        # The outbox has not recorded the send yet; it will overwrite delivery_status with "sent".
        early = meta.get("early_receipt") or {}
        if DELIVERY_RANK[delivery_status] >= DELIVERY_RANK.get(early.get("status", "queued"), 0):
            meta["early_receipt"] = {"status": delivery_status, "error": error, "sid": message_sid}
        message.meta = meta
        db.session.commit()
        return message
    changed = _advance(message, delivery_status, error)
    message.meta = meta
    if changed:
        publish(db.session, _event(message))
    db.session.commit()
    return message


def _advance(message: Message, status: str, error: str | None) -> bool:
    if DELIVERY_RANK.get(status, -1) <= DELIVERY_RANK.get(message.delivery_status, -1):
        return False
    message.delivery_status = status
    if status in ("undelivered", "failed"):
        message.error = error or f"Twilio reported the message {status}"
    elif status == "delivered":
        message.error = None
    return True


def reconcile_early_receipts() -> int:
    """Apply delivery receipts that arrived while the outbox was still sending; return how many changed."""
    changed = 0
    while _recently_sent:
        message_id = _recently_sent.popleft()
        message = db.session.scalar(_locked(select(Message).where(Message.id == message_id)))
        if message is None or message.delivery_status in ("queued", "sending"):
            db.session.rollback()
            continue
        meta = dict(message.meta or {})
        early = meta.pop("early_receipt", None)
        if not early:
            db.session.rollback()
            continue
        if message.provider_id is None:
            message.provider_id = early.get("sid")
        message.meta = meta
        if _advance(message, early["status"], early.get("error")):
            publish(db.session, _event(message))
            changed += 1
        db.session.commit()
    return changed


def schedule_media_fetch(message_id: int) -> None:
    """Queue an inbound MMS's media for the worker (idempotent: a retried webhook changes nothing)."""
    message = db.session.scalar(_locked(select(Message).where(Message.id == message_id)))
    if message is None:
        return
    media = (message.meta or {}).get("media") or []
    if any("status" not in item for item in media) and message.next_attempt_at is None and not message.attachments:
        message.next_attempt_at = utcnow()
        db.session.commit()
    else:
        db.session.rollback()


def claim_pending_media(limit: int = 10) -> list[int]:
    """Claim inbound SMS whose media are due for a download; a claim is a lease that runs out on a crash."""
    now = utcnow()
    query = (
        select(Message)
        .where(Message.delivery_status == "received", Message.next_attempt_at <= now, Message.channel == "sms")
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = db.session.scalars(query).all()
    for message in rows:
        message.next_attempt_at = now + MEDIA_LEASE
    db.session.commit()
    return [message.id for message in rows]


def pending_media(message_id: int) -> list[tuple[int, dict[str, Any]]]:
    """Return (index, item) for each media item of the message still to fetch."""
    message = db.session.get(Message, message_id)
    items = ((message.meta or {}).get("media") or []) if message is not None else []
    # End the read transaction before the caller downloads: on SQLite it holds the write lock.
    db.session.commit()
    return [(index, dict(item)) for index, item in enumerate(items) if "status" not in item]


def finish_media(message_id: int, results: dict[int, tuple[str, Any]]) -> Message | None:
    """Record download results: ``{index: ("stored", (filename, content_type, data)) | ("failed"|"retry", error)}``.

    Stored files become attachments; permanent failures stay visible on the item; retryable ones are tried
    again with backoff until MEDIA_MAX_ATTEMPTS. Commit and tell consoles.
    """
    message = db.session.scalar(_locked(select(Message).where(Message.id == message_id)))
    if message is None:
        return None
    media = [dict(item) for item in (message.meta or {}).get("media") or []]
    retry = False
    message.attempts += 1
    for index, (outcome, value) in results.items():
        if index >= len(media) or "status" in media[index]:
            continue
        item = media[index]
        if outcome == "stored":
            filename, content_type, data = value
            attachment = Attachment(
                filename=filename, content_type=content_type, size=len(data), sha256=files.store_bytes(data)
            )
            message.attachments.append(attachment)
            db.session.flush()
            item.update(status="stored", attachment_id=attachment.id, size=len(data))
        elif outcome == "retry" and message.attempts < MEDIA_MAX_ATTEMPTS:
            item["last_error"] = str(value)
            retry = True
        else:
            item.update(status="failed", error=str(value))
    message.meta = {**(message.meta or {}), "media": media}
    message.next_attempt_at = utcnow() + MEDIA_BACKOFF * message.attempts if retry else None
    publish(db.session, _event(message))
    db.session.commit()
    return message
