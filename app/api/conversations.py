"""Conversations: the unified inbox, one conversation, its messages, and replies."""

from __future__ import annotations

import datetime as dt
import functools
import mimetypes
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from pydantic import Field
from werkzeug.exceptions import RequestEntityTooLarge

from app.api.auth import role_required
from app.api.errors import ApiError
from app.api.fields import DbId, Input, Query, UtcDateTime
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from app.api.validation import documented, validate
from app.models import Conversation
from app.serializers import conversation_row, customer_dict, message_dict
from app.services.conversations import (
    ConversationFilters,
    get_conversation,
    list_conversations,
    list_details,
    list_messages,
    update_conversation,
)
from app.services.reply import (
    ATTACHMENT_CHANNELS,
    AttachmentsTooLarge,
    default_reply_channel,
    reply,
    reply_channels,
)
from connectors.base import Attachment as FileUpload
from connectors.chat.payload import safe_filename, sniff_content_type

bp = Blueprint("conversations", __name__, url_prefix="/api/v1/conversations")

F = TypeVar("F", bound=Callable[..., Any])
FILES_FIELD = "files"
# Room for the text fields and the multipart framing around the files.
_FORM_OVERHEAD_BYTES = 1024 * 1024

StatusField = Literal["open", "pending", "snoozed", "resolved"]


class ConversationQuery(Query):
    status: Literal["open", "pending", "snoozed", "resolved", "all"] | None = None
    assignee: str | None = Field(default=None, pattern=r"^(me|none|\d{1,18})$", description="me, none or a user id")
    team: str | None = Field(default=None, pattern=r"^(none|\d{1,18})$", description="none or a team id")
    topic: str | None = Field(default=None, pattern=r"^(none|\d{1,18})$", description="none or a topic id")
    channel: str | None = Field(default=None, max_length=32, description="a channel kind: email, sms, voice, …")
    customer: DbId | None = Field(default=None, description="a customer id (a merged id means its survivor)")
    q: str | None = Field(default=None, max_length=200, description="subject, customer, identity or message text")
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class PageQuery(Query):
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class MessagesQuery(PageQuery):
    order: Literal["asc", "desc"] = Field(
        default="asc", description="asc: oldest first, the cursor goes forward; desc: newest first, it goes back"
    )


class ConversationPatch(Input):
    status: StatusField | None = None
    assignee_id: DbId | None = Field(default=None, description="an active user; null unassigns")
    team_id: DbId | None = Field(default=None, description="a team; null clears")
    snoozed_until: UtcDateTime | None = Field(default=None, description="required for snoozed; in the future")


class NewMessage(Input):
    body: str = Field(default="", description="the text; may be empty only when files are attached")
    channel: str | None = Field(default=None, max_length=32, description="email, sms, chat or api; default: last")
    private: bool = Field(default=False, description="a private note: never sent, never shown to the customer")


def _filters(query: ConversationQuery) -> ConversationFilters:
    filters = ConversationFilters(
        status=None if query.status in (None, "all") else query.status,
        channel=query.channel,
        customer_id=query.customer,
        q=query.q or None,
    )
    if query.assignee == "me":
        filters.assignee_id = current_user.id
    elif query.assignee == "none":
        filters.unassigned = True
    elif query.assignee is not None:
        filters.assignee_id = int(query.assignee)
    if query.team == "none":
        filters.no_team = True
    elif query.team is not None:
        filters.team_id = int(query.team)
    if query.topic == "none":
        filters.no_topic = True
    elif query.topic is not None:
        filters.topic_id = int(query.topic)
    return filters


def rows(conversations: list[Conversation]) -> list[dict[str, Any]]:
    """Serialise inbox rows with their topics, preview and channels (a fixed number of queries per page)."""
    details = list_details([conversation.id for conversation in conversations])
    return [conversation_row(conversation, **details[conversation.id]) for conversation in conversations]


def detail_dict(conversation: Conversation) -> dict[str, Any]:
    """The conversation view: the row, the customer with every identity, and where a reply can go."""
    data = rows([conversation])[0]
    data["customer"] = customer_dict(conversation.customer)
    channels = reply_channels(conversation)
    default = default_reply_channel(conversation)
    data["reply_channels"] = channels
    data["default_reply_channel"] = default if default in channels else (channels[0] if channels else None)
    data["reply_attachments"] = attachment_limits()
    return data


def attachment_limits() -> dict[str, Any]:
    """What the console checks before it uploads files with a reply (the server checks again)."""
    config = current_app.config
    return {
        "channels": list(ATTACHMENT_CHANNELS),
        "max_files": config["REPLY_ATTACHMENTS_MAX_FILES"],
        "max_file_bytes": config["REPLY_ATTACHMENT_MAX_BYTES"],
        "max_total_bytes": config["REPLY_ATTACHMENTS_MAX_TOTAL_BYTES"],
    }


def _multipart_limit(view: F) -> F:
    """Let a multipart reply be as large as its files may be, and answer an oversize upload with a JSON 413.

    Runs after the role check, so nobody can make the server read a large upload without logging in.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype == "multipart/form-data":
            config = current_app.config
            request.max_content_length = int(config["REPLY_ATTACHMENTS_MAX_TOTAL_BYTES"]) + _FORM_OVERHEAD_BYTES
            try:
                request.files  # noqa: B018 - parse the form now, inside the larger limit
            except RequestEntityTooLarge:
                raise ApiError(
                    413,
                    "too_large",
                    f"The upload is too large: at most {config['REPLY_ATTACHMENTS_MAX_TOTAL_BYTES']} bytes of files "
                    "per message.",
                    {FILES_FIELD: "too large"},
                ) from None
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def uploaded_files() -> list[FileUpload]:
    """Read the multipart ``files`` of this request (name cleaned, type from the bytes where they show it)."""
    unknown = sorted(set(request.files) - {FILES_FIELD})
    if unknown:
        raise ApiError(
            422,
            "validation_failed",
            f"Send files in the multipart field '{FILES_FIELD}'.",
            dict.fromkeys(unknown, f"unknown file field; use {FILES_FIELD}"),
        )
    limit = int(current_app.config["REPLY_ATTACHMENT_MAX_BYTES"])
    uploads = []
    for file in request.files.getlist(FILES_FIELD):
        data = file.stream.read(limit + 1)  # one byte over is enough to say it is too large
        if not file.filename and not data:
            continue  # an empty file input in a plain HTML form
        name = safe_filename(file.filename)
        uploads.append(FileUpload(filename=name, content_type=_content_type(data, name, file.mimetype), data=data))
    return uploads


def _content_type(data: bytes, filename: str, claimed: str | None) -> str:
    """The type the bytes show (a PNG is a PNG, a fake PDF is not one), else the browser's, else the name's."""
    claimed = (claimed or "").split(";", 1)[0].strip().lower()
    if not claimed or claimed == "application/octet-stream":
        claimed = mimetypes.guess_type(filename)[0] or claimed
    sniffed = sniff_content_type(data, claimed)
    if sniffed == "application/octet-stream" and claimed.startswith("text/"):
        return claimed  # text in a legacy charset is still text (the widget's check wants UTF-8)
    return sniffed


@bp.get("")
@role_required("agent")
@validate(query=ConversationQuery)
@documented(summary="The unified inbox: conversations, newest activity first, filtered, keyset-paginated")
def index(query: ConversationQuery) -> Any:
    """List conversations matching every given filter."""
    after = decode_cursor(query.cursor, dt.datetime, int)
    conversations, next_key = list_conversations(_filters(query), after, query.limit)  # type: ignore[arg-type]
    return jsonify(page(rows(conversations), next_key))


@bp.get("/<int:conversation_id>")
@role_required("agent")
@documented(summary="One conversation with its customer, topics and reply channels")
def detail(conversation_id: int) -> Any:
    """Show one conversation."""
    return jsonify(detail_dict(get_conversation(conversation_id)))


@bp.patch("/<int:conversation_id>")
@role_required("agent")
@validate(body=ConversationPatch)
@documented(summary="Change status, assignee, team or snooze (all given fields, or none)")
def update(conversation_id: int, body: ConversationPatch) -> Any:
    """Change a conversation's status, assignee, team or snooze time."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    conversation = update_conversation(conversation_id, current_user.id, changes)
    return jsonify(detail_dict(conversation))


@bp.get("/<int:conversation_id>/messages")
@role_required("agent")
@validate(query=MessagesQuery)
@documented(summary="The conversation's messages, calls and notes, oldest first (order=desc: newest first)")
def messages(conversation_id: int, query: MessagesQuery) -> Any:
    """List a conversation's messages, oldest first unless order=desc."""
    after = decode_cursor(query.cursor, dt.datetime, int)
    items, calls, next_key = list_messages(
        conversation_id,
        after,  # type: ignore[arg-type]
        query.limit,
        newest_first=query.order == "desc",
    )
    return jsonify(page([message_dict(message, call=calls.get(message.id)) for message in items], next_key))


@bp.post("/<int:conversation_id>/messages")
@role_required("agent")
@_multipart_limit
@validate(body=NewMessage)
@documented(
    summary="Reply on a channel (queued for delivery) or add a private note; 201 with the message. "
    "Send JSON, or multipart/form-data with the fields body, channel, private and one or more 'files' "
    "(attachments: email, chat and api replies and notes, not SMS; count and size limits in the "
    "conversation's reply_attachments; 413 when too large, 422 otherwise)",
    files=FILES_FIELD,
)
def create_message(conversation_id: int, body: NewMessage) -> Any:
    """Reply to the customer or add a private note, optionally with files (multipart/form-data)."""
    attachments = uploaded_files() if request.mimetype == "multipart/form-data" else []
    try:
        message = reply(
            conversation_id,
            current_user,
            body.body,
            channel=body.channel,
            private=body.private,
            attachments=attachments,
        )
    except AttachmentsTooLarge as exc:
        raise ApiError(413, exc.code, str(exc), exc.fields) from None
    return jsonify(message_dict(message)), 201
