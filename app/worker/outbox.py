"""The outbox: claim queued outbound messages, send them through their channel's connector, record the result.

On PostgreSQL many workers claim rows side by side with ``FOR UPDATE SKIP LOCKED``; on SQLite the write lock
makes every claim exclusive. A claimed row gets a lease: if the process dies mid-send, the row becomes due
again when the lease runs out, so a restart resumes the work.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from flask import Flask
from sqlalchemy import and_, or_, select

from app.extensions import db
from app.models import Attachment, Channel, Conversation, CustomerIdentity, Message, utcnow
from app.services import attachments as files
from app.services.notify import delivery_changed
from app.services.reply_tokens import make_reply_token
from connectors.base import Attachment as OutboundAttachment
from connectors.base import (
    Identity,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    ThreadHints,
    get_connector,
)

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)


def claim_batch(limit: int = 20) -> list[int]:
    """Mark up to ``limit`` due messages as sending and return their ids."""
    now = utcnow()
    due = or_(
        and_(Message.delivery_status == "queued", Message.next_attempt_at <= now),
        # A lease that ran out: the sender died mid-send.
        and_(Message.delivery_status == "sending", Message.next_attempt_at <= now),
    )
    query = select(Message).where(due).order_by(Message.next_attempt_at, Message.id).limit(limit)
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = db.session.scalars(query).all()
    for message in rows:
        message.delivery_status = "sending"
        message.attempts += 1
        message.next_attempt_at = now + LEASE
    db.session.commit()
    return [message.id for message in rows]


def _load_attachment(attachment: Attachment) -> OutboundAttachment:
    """Read a stored attachment's bytes; a file gone from the store fails the send with a clear reason."""
    try:
        data = files.read_bytes(attachment.sha256)
    except (FileNotFoundError, ValueError):
        raise PermanentSendError(f"the attached file {attachment.filename!r} is missing from the file store") from None
    except OSError as exc:
        raise RetryableSendError(f"cannot read the attached file {attachment.filename!r}: {exc}") from None
    return OutboundAttachment(
        filename=attachment.filename,
        content_type=attachment.content_type,
        data=data,
        content_id=attachment.content_id,
        inline=attachment.inline,
    )


def build_outbound(message: Message) -> OutboundMessage:
    """Turn a stored outbound message into what the connector needs, its attached files' bytes included."""
    conversation = db.session.get_one(Conversation, message.conversation_id)
    channel = db.session.get_one(Channel, message.channel_id)
    identity = db.session.get_one(CustomerIdentity, message.identity_id)
    references: list[str] = list(
        db.session.scalars(
            select(Message.message_id_header)
            .where(
                Message.conversation_id == conversation.id,
                Message.message_id_header.is_not(None),
                Message.id < message.id,
            )
            .order_by(Message.id)
        )
    )
    last_inbound = db.session.scalar(
        select(Message.message_id_header)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "in",
            Message.message_id_header.is_not(None),
            Message.id < message.id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return OutboundMessage(
        message_id=message.id,
        channel=channel.kind,
        channel_address=channel.address or "",
        recipient=Identity(identity.kind, identity.value),
        recipient_name=conversation.customer.name,
        text=message.text,
        html=message.html,
        subject=message.subject or conversation.subject,
        attachments=[_load_attachment(attachment) for attachment in message.attachments],
        thread=ThreadHints(
            message_id=message.message_id_header,
            in_reply_to=last_inbound or (references[-1] if references else None),
            references=references[-20:],
            reply_token=make_reply_token(conversation.id),
            conversation_number=conversation.number,
        ),
        automated=message.automated,
        settings=dict(channel.settings or {}),
    )


def backoff(attempts: int, base: float, cap: float) -> dt.timedelta:
    """Exponential backoff with full jitter: base * 2^(n-1), capped, randomised so retries do not stampede."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return dt.timedelta(seconds=random.uniform(delay / 2, delay))


def deliver(app: Flask, message_id: int) -> str:
    """Send one claimed message and record sent / queued-for-retry / failed; return the new status."""
    config: dict[str, Any] = app.config
    message = db.session.get_one(Message, message_id)
    if message.direction != "out" or message.kind == "note":
        # The loop guard: a private note or anything that came in from a channel is never sent anywhere.
        log.error(
            "message %s is not an outbound message (%s/%s); not sending it", message.id, message.direction, message.kind
        )
        message.delivery_status = "not_sent"
        message.next_attempt_at = None
        db.session.commit()
        return message.delivery_status
    if message.attempts > config["OUTBOX_MAX_ATTEMPTS"]:
        # Claimed again after its lease ran out on the last allowed attempt: that sender died mid-send.
        _record_failure(
            message, f"gave up after {message.attempts - 1} attempts (the last one never finished)", False, config
        )
        return _finish(message)
    try:
        outbound = build_outbound(message)
        # End the read transaction before talking to the provider: on SQLite every transaction holds the
        # write lock, and a slow relay must not stall ingest for the length of a network call.
        db.session.commit()
        provider_id = get_connector(outbound.channel, config).send(outbound)
    except SendError as exc:
        retry = exc.retryable and message.attempts < config["OUTBOX_MAX_ATTEMPTS"]
        _record_failure(message, str(exc), retry, config)
    except Exception as exc:  # a connector bug must not kill the worker; retry it like a transient error
        log.exception("sending message %s failed unexpectedly", message_id)
        _record_failure(
            message, f"{type(exc).__name__}: {exc}", message.attempts < config["OUTBOX_MAX_ATTEMPTS"], config
        )
    else:
        message.delivery_status = "sent"
        message.provider_id = provider_id or message.provider_id
        message.sent_at = utcnow()
        message.next_attempt_at = None
        message.error = None
    return _finish(message)


def _finish(message: Message) -> str:
    """Commit the outcome and tell the consoles (and the customer's widget) about it."""
    delivery_changed(message)
    db.session.commit()
    return message.delivery_status


def _record_failure(message: Message, reason: str, retry: bool, config: dict[str, Any]) -> None:
    message.error = reason[:2000]
    if retry:
        message.delivery_status = "queued"
        message.next_attempt_at = utcnow() + backoff(
            message.attempts, config["OUTBOX_BACKOFF_BASE_SECONDS"], config["OUTBOX_BACKOFF_MAX_SECONDS"]
        )
        log.warning("message %s: retry %d later: %s", message.id, message.attempts, reason)
    else:
        message.delivery_status = "failed"
        message.next_attempt_at = None
        log.warning("message %s failed: %s", message.id, reason)


def process_due(app: Flask, limit: int = 20) -> int:
    """Claim and deliver one batch; return how many messages were handled."""
    ids = claim_batch(limit)
    for message_id in ids:
        try:
            deliver(app, message_id)
        except Exception:
            log.exception("recording the outcome of message %s failed; its lease will expire and retry", message_id)
            db.session.rollback()
    return len(ids)
