"""Decide who receives each domain event and emit it: the only code that calls ``socketio.emit``.

Agent console (/agent): every agent sees the unified inbox, so conversation and message events go to the
``agents`` room unless the event names a narrower audience; a conversation's viewers also get them in its
own room. Customers (/widget) get only non-private message events of their own conversation, reduced to what
a customer may see. With REDIS_URL set the emit goes through Redis, so it reaches agents connected to any
web process, also when it is raised in the worker or the SMTP server.
"""

from __future__ import annotations

import logging
from typing import Any

from app.events import MESSAGE_CREATED, MESSAGE_UPDATED, MESSAGES_READ, TYPING, Event
from app.extensions import socketio
from app.services.widget import widget_attachment

log = logging.getLogger(__name__)

AGENT_NS = "/agent"
WIDGET_NS = "/widget"


def agent_rooms(event: Event) -> list[str]:
    if event.min_role:
        return [f"role:{event.min_role}"]
    if event.all_agents:
        return ["agents"]
    rooms = [f"user:{user_id}" for user_id in event.user_ids]
    if event.team_id is not None:
        rooms.append(f"team:{event.team_id}")
    if event.conversation_id is not None:
        rooms.append(f"conversation:{event.conversation_id}")
    return rooms


def customer_payload(event: Event) -> dict[str, Any] | None:
    """Return what the customer's widget may see of ``event``, or None when it is not for customers."""
    if event.private or event.conversation_id is None:
        return None
    if event.name in (MESSAGE_CREATED, MESSAGE_UPDATED):
        message = event.payload.get("message") or {}
        if message.get("kind") not in ("message",) or message.get("private"):
            return None
        if message.get("channel") != "chat":
            # The widget shows the chat thread only: an email or SMS in the same conversation may involve an
            # address the visitor merely claimed in the pre-chat form (app.services.widget).
            return None
        return {
            "message": {
                key: message.get(key)
                for key in (
                    "id",
                    "direction",
                    "text",
                    "created_at",
                    "delivery_status",
                    "author_name",
                )
            }
            | {
                "client_id": (message.get("meta") or {}).get("client_id"),
                # The console's file links need an agent's session: the visitor gets the widget's file route.
                "attachments": [
                    widget_attachment(item["id"], item["filename"], item["content_type"], item["size"])
                    for item in message.get("attachments") or []
                ],
            }
        }
    if event.name == MESSAGES_READ:
        return {"up_to": event.payload.get("up_to"), "at": event.payload.get("at")}
    if event.name == TYPING:
        return {"typing": bool(event.payload.get("typing")), "author_name": event.payload.get("author_name")}
    return None


def emit_event(event: Event) -> None:
    """Emit ``event`` to the agent rooms it concerns and, when customer-safe, to the customer's widget."""
    try:
        skip = event.extra.get("skip_sid")
        for room in agent_rooms(event):
            socketio.emit(event.name, event.payload, namespace=AGENT_NS, to=room, skip_sid=skip)
        widget = customer_payload(event)
        if widget is not None:
            socketio.emit(
                event.name,
                widget,
                namespace=WIDGET_NS,
                to=f"conversation:{event.conversation_id}",
                skip_sid=event.extra.get("skip_widget_sid"),
            )
    except Exception:  # a broken socket layer must never fail the request that committed the change
        log.exception("emitting %s failed", event.name)
