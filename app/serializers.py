"""JSON shapes of the domain objects, shared by the REST API and the real-time events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.models import (
    Attachment,
    Call,
    Channel,
    Conversation,
    Customer,
    CustomerIdentity,
    Message,
    Team,
    Topic,
    User,
)


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "available": user.available,
        "locale": user.locale,
        "phone": user.phone,
        "client_identity": user.client_identity,
        "team_ids": [team.id for team in user.teams],
    }


def team_dict(team: Team) -> dict[str, Any]:
    return {"id": team.id, "name": team.name, "member_ids": [member.id for member in team.members]}


def identity_dict(identity: CustomerIdentity) -> dict[str, Any]:
    return {
        "id": identity.id,
        "kind": identity.kind,
        "value": identity.value,
        "verified": identity.verified,
        "source": identity.source,
        "opted_out": identity.opted_out,
        "created_at": iso(identity.created_at),
    }


def customer_dict(customer: Customer, *, with_identities: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "attributes": customer.attributes,
        "created_at": iso(customer.created_at),
        "last_seen_at": iso(customer.last_seen_at),
        "merged_into_id": customer.merged_into_id,
    }
    if with_identities:
        data["identities"] = [identity_dict(identity) for identity in customer.identities]
    return data


def customer_summary(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name}


def conversation_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "number": conversation.number,
        "status": conversation.status,
        "subject": conversation.subject,
        "customer": customer_summary(conversation.customer),
        "customer_id": conversation.customer_id,
        "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id,
        "channel_id": conversation.channel_id,
        "origin_channel": conversation.origin_channel,
        "last_channel": conversation.last_channel,
        "call_back": conversation.call_back,
        "created_at": iso(conversation.created_at),
        "first_response_at": iso(conversation.first_response_at),
        "resolved_at": iso(conversation.resolved_at),
        "last_message_at": iso(conversation.last_message_at),
        "last_activity_at": iso(conversation.last_activity_at),
        "snoozed_until": iso(conversation.snoozed_until),
    }


def attachment_dict(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "inline": attachment.inline,
        "content_id": attachment.content_id,
        "url": f"/api/v1/attachments/{attachment.id}",
    }


def call_dict(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "sid": call.provider_sid,
        "direction": call.direction,
        "status": call.status,
        "from": call.from_number,
        "to": call.to_number,
        "agent_id": call.agent_id,
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration": call.duration,
        "recording_url": call.recording_url,
        "recording_duration": call.recording_duration,
        "voicemail": call.voicemail,
        "transcription": call.transcription,
    }


def message_dict(message: Message, *, call: Call | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "customer_id": message.customer_id,
        "channel": message.channel,
        "channel_id": message.channel_id,
        "direction": message.direction,
        "kind": message.kind,
        "private": message.kind == "note",
        "author_id": message.author_id,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "delivery_status": message.delivery_status,
        "attempts": message.attempts,
        "error": message.error,
        "automated": message.automated,
        "meta": message.meta,
        "attachments": [attachment_dict(attachment) for attachment in message.attachments],
        "created_at": iso(message.created_at),
        "sent_at": iso(message.sent_at),
    }
    if call is not None:
        data["call"] = call_dict(call)
    return data


# Channel settings that are secrets: never listed; their presence is shown as secrets_set.
SECRET_SETTINGS: tuple[str, ...] = ("identity_secret",)


def channel_dict(channel: Channel, *, token: str | None = None) -> dict[str, Any]:
    settings = dict(channel.settings or {})
    data: dict[str, Any] = {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "address": channel.address,
        "settings": {key: value for key, value in settings.items() if key not in SECRET_SETTINGS},
        "secrets_set": sorted(key for key in SECRET_SETTINGS if settings.get(key)),
        "business_hours": channel.business_hours,
        "team_id": channel.team_id,
        "enabled": channel.enabled,
        "created_at": iso(channel.created_at),
    }
    if token is not None:
        data["token"] = token  # shown once, when the channel is created or its token rotated
    return data


def topic_ref(topic: Topic) -> dict[str, Any]:
    return {"id": topic.id, "name": topic.name, "colour": topic.colour, "parent_id": topic.parent_id}


def conversation_ref(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "number": conversation.number,
        "subject": conversation.subject,
        "status": conversation.status,
    }


def conversation_row(
    conversation: Conversation,
    *,
    topics: list[Topic],
    last_message: dict[str, Any] | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    """An inbox row: the conversation plus its topics, a preview of its newest message and its channels."""
    data = conversation_dict(conversation)
    data["topics"] = [topic_ref(topic) for topic in topics]
    data["topic_ids"] = [topic.id for topic in topics]
    data["last_message"] = last_message
    data["preview"] = last_message["text"] if last_message else None
    data["channels"] = channels or []
    return data
