"""Replies and notes: store the outbound message as queued (the durable outbox), commit, then let the worker send."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Channel, Conversation, CustomerIdentity, Message, User, utcnow
from app.services.channels import first_channel
from app.services.errors import NotFound, ValidationFailed
from app.services.notify import conversation_changed, message_changed

# Which identity kind a channel delivers to.
RECIPIENT_KIND = {"email": "email", "form": "email", "sms": "phone", "voice": "phone", "chat": "chat"}
# Channels an agent can type a reply on (a call is not typed).
REPLY_CHANNELS = ("email", "sms", "chat", "api")
# Where a reply goes when the conversation came in on a channel that cannot carry one itself.
REPLY_VIA = {"form": "email", "voice": "sms"}


def recipient_for(conversation: Conversation, channel_kind: str) -> CustomerIdentity | None:
    """Return the customer's identity a reply on ``channel_kind`` goes to (the most recently used one)."""
    if channel_kind == "api":
        last_in = db.session.scalar(
            select(Message.identity_id)
            .where(
                Message.conversation_id == conversation.id, Message.direction == "in", Message.identity_id.is_not(None)
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        return db.session.get(CustomerIdentity, last_in) if last_in else None
    kind = RECIPIENT_KIND.get(channel_kind)
    if kind is None:
        return None
    candidates = [identity for identity in conversation.customer.identities if identity.kind == kind]
    if not candidates:
        return None
    last_used = db.session.scalar(
        select(Message.identity_id)
        .where(
            Message.customer_id == conversation.customer_id,
            Message.direction == "in",
            Message.identity_id.in_([identity.id for identity in candidates]),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    # Prefer what the customer last wrote from, then verified identities, then the newest.
    return max(candidates, key=lambda i: (i.id == last_used, i.verified, i.id))


def reply_channels(conversation: Conversation) -> list[str]:
    """Return the channels the agent can answer this conversation on (the customer has an identity there)."""
    return [kind for kind in REPLY_CHANNELS if recipient_for(conversation, kind) is not None]


# Channels that reach the customer only while they are connected (the chat widget). The channel's package
# registers a check "is the customer there right now?"; when they are gone, the default reply goes by email
# if we have an address and a mailbox, so an offline chat continues by email. An explicit channel choice still wins.
_LIVE_CHECKS: dict[str, Callable[[Conversation], bool]] = {}


def register_live_check(kind: str, check: Callable[[Conversation], bool]) -> None:
    """Register how to tell whether a conversation's customer is reachable on ``kind`` right now."""
    _LIVE_CHECKS[kind] = check


def default_reply_channel(conversation: Conversation) -> str:
    last = REPLY_VIA.get(conversation.last_channel, conversation.last_channel)
    check = _LIVE_CHECKS.get(last)
    if (
        check is not None
        and not check(conversation)
        and recipient_for(conversation, "email") is not None
        and _channel_row(conversation, "email") is not None
    ):
        return "email"
    return last if last in REPLY_CHANNELS else "email"


def _channel_row(conversation: Conversation, kind: str) -> Channel | None:
    if conversation.channel_id is not None:
        channel = db.session.get(Channel, conversation.channel_id)
        if channel is not None and channel.kind == kind and channel.enabled:
            return channel
    last_in = db.session.scalar(
        select(Channel)
        .join(Message, Message.channel_id == Channel.id)
        .where(Message.conversation_id == conversation.id, Channel.kind == kind, Channel.enabled.is_(True))
        .order_by(Message.id.desc())
        .limit(1)
    )
    return last_in or first_channel(kind)


def reply(
    conversation_id: int,
    author: User | None,
    body: str,
    *,
    channel: str | None = None,
    private: bool = False,
    html: str | None = None,
    automated: bool = False,
) -> Message:
    """Queue a reply to the customer (or store a private note) and commit it before anything is sent."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    body = body.strip()
    if not body:
        raise ValidationFailed("the message is empty", fields={"body": "must not be empty"})
    if len(body) > current_app.config["MAX_MESSAGE_CHARS"]:
        raise ValidationFailed("the message is too long", fields={"body": "too long"})
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        direction="out",
        author_id=author.id if author else None,
        text=body,
        html=html,
        automated=automated,
        created_at=now,
    )
    if private:
        message.kind = "note"
        message.channel = "note"
        message.delivery_status = "not_sent"
    else:
        kind = channel or default_reply_channel(conversation)
        if kind not in REPLY_CHANNELS:
            raise ValidationFailed(f"cannot reply on {kind}", fields={"channel": f"one of {', '.join(REPLY_CHANNELS)}"})
        recipient = recipient_for(conversation, kind)
        if recipient is None:
            raise ValidationFailed(
                f"the customer has no {RECIPIENT_KIND.get(kind, kind)} identity to reply to on {kind}",
                code="no_recipient",
                fields={"channel": f"no {kind} identity"},
            )
        if recipient.opted_out:
            raise ValidationFailed(
                f"{recipient.value} has opted out of messages on {kind} (they sent STOP)",
                code="opted_out",
                fields={"channel": "recipient opted out"},
            )
        channel_row = _channel_row(conversation, kind)
        if channel_row is None:
            raise ValidationFailed(
                f"no {kind} channel is configured",
                code="no_channel",
                fields={"channel": f"configure a {kind} channel first"},
            )
        message.kind = "message"
        message.channel = kind
        message.channel_id = channel_row.id
        message.identity_id = recipient.id
        message.delivery_status = "queued"
        message.next_attempt_at = now
        message.subject = conversation.subject
        if kind == "email":
            # Generated once, so retries of the same mail carry the same Message-ID.
            message.message_id_header = f"<{uuid.uuid4().hex}@{current_app.config['MAIL_DOMAIN']}>"
        if conversation.first_response_at is None and author is not None:
            conversation.first_response_at = now
        conversation.last_channel = kind
    conversation.last_activity_at = now
    db.session.add(message)
    db.session.flush()
    message_changed(message, conversation)
    conversation_changed(conversation)
    db.session.commit()
    return message
