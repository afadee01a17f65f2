"""Channels: admin configuration, and the api channel's token-authenticated inbound endpoint."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from pydantic import Field
from sqlalchemy import select

from app.api.auth import public, role_required
from app.api.errors import ApiError
from app.api.validation import Schema, documented, validate
from app.extensions import db
from app.models import Channel
from app.serializers import SECRET_SETTINGS, channel_dict, conversation_dict, customer_summary, message_dict
from app.services.channels import channel_for_token, check_settings, create_channel
from app.services.errors import NotFound
from app.services.ingest import ingest
from connectors.base import Identity, InboundMessage, InvalidIdentity, ThreadHints
from connectors.html import sanitize_html

bp = Blueprint("channels", __name__, url_prefix="/api/v1/channels")

ChannelKindField = Literal["email", "sms", "voice", "chat", "form", "api"]


class ChannelCreate(Schema):
    kind: ChannelKindField
    name: str = Field(min_length=1, max_length=255)
    address: str | None = Field(default=None, max_length=320)
    settings: dict[str, Any] = Field(default_factory=dict)
    business_hours: dict[str, Any] | None = None
    team_id: int | None = None


class ChannelUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    settings: dict[str, Any] | None = None
    business_hours: dict[str, Any] | None = None
    team_id: int | None = None
    enabled: bool | None = None


@bp.get("")
@role_required("agent")
@documented(summary="List channels (agents need them to pick a reply channel)")
def list_channels() -> Any:
    """List every channel."""
    channels = db.session.scalars(select(Channel).order_by(Channel.id)).all()
    return jsonify(items=[channel_dict(channel) for channel in channels])


@bp.post("")
@role_required("admin")
@validate(body=ChannelCreate)
def create(body: ChannelCreate) -> Any:
    """Create a channel; an api channel's token is in this response and never shown again."""
    channel, token = create_channel(
        body.kind,
        body.name,
        address=body.address,
        settings=body.settings,
        business_hours=body.business_hours,
        team_id=body.team_id,
        actor_id=current_user.id,
        default_region=current_app.config["DEFAULT_PHONE_REGION"],
    )
    return jsonify(channel_dict(channel, token=token)), 201


@bp.get("/<int:channel_id>")
@role_required("agent")
def detail(channel_id: int) -> Any:
    """Show one channel."""
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    return jsonify(channel_dict(channel))


@bp.patch("/<int:channel_id>")
@role_required("admin")
@validate(body=ChannelUpdate)
def update(channel_id: int, body: ChannelUpdate) -> Any:
    """Change a channel's name, settings, business hours, team or enabled flag."""
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    if body.settings is not None:
        check_settings(channel.kind, body.settings)
    previous_settings = dict(channel.settings or {})
    for field in body.model_fields_set:
        setattr(channel, field, getattr(body, field))
    if body.settings is not None:
        # Secrets are never sent to clients, so a settings update that omits them keeps them.
        kept = {key: previous_settings[key] for key in SECRET_SETTINGS if key in previous_settings}
        channel.settings = {**kept, **body.settings}
    db.session.commit()
    return jsonify(channel_dict(channel))


class InboundIdentity(Schema):
    kind: Literal["email", "phone", "chat", "external"]
    value: str = Field(min_length=1, max_length=320)


class InboundThread(Schema):
    reply_token: str | None = Field(default=None, max_length=200)
    conversation_number: int | None = None
    in_reply_to: str | None = Field(default=None, max_length=998)


class InboundBody(Schema):
    identity: InboundIdentity
    name: str | None = Field(default=None, max_length=255)
    text: str = Field(min_length=1)
    html: str | None = None
    subject: str | None = Field(default=None, max_length=998)
    provider_id: str | None = Field(default=None, max_length=255)
    thread: InboundThread | None = None
    verified: bool = True


def _bearer_channel(channel_id: int) -> Channel:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "Send the channel token as 'Authorization: Bearer TOKEN'.")
    channel = channel_for_token(channel_id, token.strip())
    if channel is None:
        raise ApiError(403, "forbidden", "Unknown channel or wrong token.")
    return channel


@bp.post("/<int:channel_id>/inbound")
@public  # authenticated by the channel's bearer token
@validate(body=InboundBody)
def inbound(channel_id: int, body: InboundBody) -> Any:
    """Push an inbound message from another system; idempotent on provider_id."""
    channel = _bearer_channel(channel_id)
    if len(body.text) > current_app.config["MAX_MESSAGE_CHARS"]:
        raise ApiError(413, "too_large", f"text is longer than {current_app.config['MAX_MESSAGE_CHARS']} characters")
    try:
        sender = Identity.parse(body.identity.kind, body.identity.value, current_app.config["DEFAULT_PHONE_REGION"])
    except InvalidIdentity as exc:
        raise ApiError(422, "validation_failed", str(exc), {"identity.value": exc.reason}) from None
    thread = body.thread or InboundThread()
    result = ingest(
        InboundMessage(
            channel=channel.kind,
            sender=sender,
            sender_name=body.name,
            subject=body.subject,
            text=body.text,
            html=sanitize_html(body.html).html if body.html else None,
            provider_id=body.provider_id,
            thread=ThreadHints(
                reply_token=thread.reply_token,
                conversation_number=thread.conversation_number,
                in_reply_to=thread.in_reply_to,
            ),
            metadata={"sender_verified": body.verified and sender.kind != "external"},
        ),
        channel,
    )
    payload = {
        "message": message_dict(result.message),
        "conversation": conversation_dict(result.conversation),
        "customer": customer_summary(result.customer),
        "created": result.created,
    }
    return jsonify(payload), 201 if result.created else 200
