"""The events services publish about conversations and messages, in one shape for every service."""

from __future__ import annotations

from app.events import CONVERSATION_CREATED, CONVERSATION_UPDATED, MESSAGE_CREATED, MESSAGE_UPDATED, Event, publish
from app.extensions import db
from app.models import Call, Conversation, Message
from app.serializers import conversation_dict, message_dict


def conversation_changed(conversation: Conversation, *, created: bool = False) -> None:
    """Queue conversation.created/updated for the inbox; it is sent when the session commits."""
    publish(
        db.session,
        Event(
            CONVERSATION_CREATED if created else CONVERSATION_UPDATED,
            {"conversation": conversation_dict(conversation)},
            conversation_id=conversation.id,
            team_id=conversation.team_id,
        ),
    )


def message_changed(
    message: Message, conversation: Conversation, *, created: bool = True, call: Call | None = None
) -> None:
    """Queue message.created/updated; a private note is marked so it never reaches the customer."""
    publish(
        db.session,
        Event(
            MESSAGE_CREATED if created else MESSAGE_UPDATED,
            {"message": message_dict(message, call=call)},
            conversation_id=conversation.id,
            team_id=conversation.team_id,
            private=message.kind == "note",
        ),
    )


def delivery_changed(message: Message) -> None:
    """Queue message.updated after an outbound message's delivery status changed (sent, failed, bounced…)."""
    publish(
        db.session, Event(MESSAGE_UPDATED, {"message": message_dict(message)}, conversation_id=message.conversation_id)
    )
