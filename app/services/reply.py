"""Replies and notes: store the outbound message as queued (the durable outbox), commit, then let the worker send."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Sequence

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Channel, Conversation, CustomerIdentity, Message, User, utcnow
from app.services import attachments as files
from app.services.channels import first_channel
from app.services.errors import NotFound, ValidationFailed
from app.services.notify import conversation_changed, message_changed
from connectors.base import Attachment as FileUpload

# Which identity kind a channel delivers to.
RECIPIENT_KIND = {"email": "email", "form": "email", "sms": "phone", "voice": "phone", "chat": "chat"}
# Channels an agent can type a reply on (a call is not typed).
REPLY_CHANNELS = ("email", "sms", "chat", "api")
# Where a reply goes when the conversation came in on a channel that cannot carry one itself.
REPLY_VIA = {"form": "email", "voice": "sms"}
# Channels whose replies can carry files (an SMS cannot: its connector refuses them at send time too).
ATTACHMENT_CHANNELS = ("email", "chat", "api")
_CHANNEL_NAMES = {"sms": "SMS"}

_CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class AttachmentsTooLarge(ValidationFailed):
    """A file, or all files together, exceed the configured size limit (the API answers 413)."""

    code = "too_large"


def _allowed_types() -> tuple[str, ...]:
    value = current_app.config["REPLY_ATTACHMENT_TYPES"]
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip().lower() for item in items if item.strip())


def _content_type(value: str | None) -> str:
    """The bare, lower-case ``type/subtype`` of a content type; anything malformed is octet-stream."""
    bare = (value or "").split(";", 1)[0].strip().lower()
    return bare if _CONTENT_TYPE_RE.match(bare) else "application/octet-stream"


def check_attachments(uploads: Sequence[FileUpload]) -> list[FileUpload]:
    """Check files against the count, size and type limits; return them with clean names and types.

    Raises AttachmentsTooLarge (a size limit) or ValidationFailed (count, empty file, type, name).
    """
    config = current_app.config
    max_files = int(config["REPLY_ATTACHMENTS_MAX_FILES"])
    max_bytes = int(config["REPLY_ATTACHMENT_MAX_BYTES"])
    max_total = int(config["REPLY_ATTACHMENTS_MAX_TOTAL_BYTES"])
    if len(uploads) > max_files:
        raise ValidationFailed(
            f"at most {max_files} files can be attached to one message",
            code="too_many_files",
            fields={"files": f"at most {max_files} files"},
        )
    allowed = _allowed_types()
    checked: list[FileUpload] = []
    for upload in uploads:
        name = _CONTROL_RE.sub("", upload.filename or "").strip()
        if not name or len(name) > 255:
            raise ValidationFailed("every file needs a name of at most 255 characters", fields={"files": "bad name"})
        if not upload.data:
            raise ValidationFailed(f"{name} is empty", code="empty_file", fields={"files": f"{name} is empty"})
        if len(upload.data) > max_bytes:
            raise AttachmentsTooLarge(
                f"{name} is larger than {max_bytes} bytes", fields={"files": f"{name}: at most {max_bytes} bytes"}
            )
        content_type = _content_type(upload.content_type)
        if not any(fnmatch.fnmatchcase(content_type, pattern) for pattern in allowed):
            raise ValidationFailed(
                f"{name}: files of type {content_type} cannot be attached",
                code="unsupported_type",
                fields={"files": f"{name}: type {content_type} is not allowed"},
            )
        checked.append(FileUpload(filename=name, content_type=content_type, data=upload.data))
    total = sum(len(upload.data) for upload in checked)
    if total > max_total:
        raise AttachmentsTooLarge(
            f"the files add up to {total} bytes; at most {max_total} bytes can go with one message",
            fields={"files": f"at most {max_total} bytes in total"},
        )
    return checked


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
    attachments: Sequence[FileUpload] = (),
    commit: bool = True,
) -> Message:
    """Queue a reply to the customer (or store a private note) and commit it before anything is sent.

    ``commit=False`` leaves the transaction open for a caller that commits it with more (ingest's automatic
    reply goes out only if the message it answers is stored).

    ``attachments`` are checked (count, size, type, and whether the channel can carry files) before anything
    is stored; then their bytes go to the file store and their rows are committed with the message.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    uploads = check_attachments(attachments)
    body = body.strip()
    if not body and not uploads:
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
        if uploads and kind not in ATTACHMENT_CHANNELS:
            raise ValidationFailed(
                f"attachments cannot be sent by {_CHANNEL_NAMES.get(kind, kind)}; send them by email instead",
                code="attachments_not_supported",
                fields={"files": f"not on {kind}", "channel": "choose email to send files"},
            )
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
    # Everything is checked: only now do the files reach the store (content-addressed, written durably
    # before the rows that point at them are committed).
    message.attachments.extend(files.stored_attachment(upload) for upload in uploads)
    db.session.add(message)
    db.session.flush()
    message_changed(message, conversation)
    conversation_changed(conversation)
    if commit:
        db.session.commit()
    return message
