"""The /agent namespace: the console's live connection (session cookie required)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request
from flask_login import current_user
from flask_socketio import Namespace, join_room, leave_room

from app.events import TYPING, VIEWING, Event, publish_now
from app.extensions import db
from app.models import Conversation
from app.models.user import ROLES


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin: str | None) -> bool:
    """Whether a websocket handshake comes from our own pages (browsers always send Origin).

    The engine accepts any origin because the /widget namespace serves shop sites and checks its own
    allow-list; the console's namespace accepts only the console's origin, against cross-site hijacking.
    """
    if not origin:
        return True  # not a browser: the session cookie alone decides
    allowed = {_origin(current_app.config["PUBLIC_URL"]), _origin(request.host_url)}
    return origin.lower().rstrip("/") in allowed


def _announce_viewing(conversation_id: int, *, viewing: bool) -> None:
    """Tell the conversation's other viewers that this agent started or stopped looking at it."""
    payload = {
        "conversation_id": conversation_id,
        "user_id": current_user.id,
        "name": current_user.name,
        "viewing": viewing,
    }
    publish_now(
        Event(
            VIEWING,
            payload,
            conversation_id=conversation_id,
            all_agents=False,
            private=True,
            extra={"skip_sid": request.sid},
        )
    )  # type: ignore[attr-defined]


class AgentNamespace(Namespace):
    """Join the agent's rooms on connect; relay viewing and typing between agents."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        # Which conversations each connection is viewing, so a dropped connection stops "viewing" them.
        self._viewing: dict[str, set[int]] = {}

    def on_connect(self, auth: Any = None) -> bool:
        if not current_user.is_authenticated or not same_origin(request.headers.get("Origin")):
            return False  # refused: the client gets a connect_error
        join_room("agents")
        join_room(f"user:{current_user.id}")
        for role in ROLES:
            if current_user.has_role(role):
                join_room(f"role:{role}")
        for team in current_user.teams:
            join_room(f"team:{team.id}")
        db.session.remove()
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        for conversation_id in self._viewing.pop(request.sid, set()):  # type: ignore[attr-defined]
            if current_user.is_authenticated:
                _announce_viewing(conversation_id, viewing=False)

    def _conversation_id(self, data: Any) -> int | None:
        if not current_user.is_authenticated or not isinstance(data, dict):
            return None
        value = data.get("conversation_id")
        if not isinstance(value, int) or db.session.get(Conversation, value) is None:
            db.session.remove()
            return None
        db.session.remove()
        return value

    def on_view(self, data: Any) -> dict[str, Any]:
        """Start watching a conversation: receive its events and tell other agents who is looking."""
        conversation_id = self._conversation_id(data)
        if conversation_id is None:
            return {"ok": False, "error": "unknown conversation"}
        join_room(f"conversation:{conversation_id}")
        self._viewing.setdefault(request.sid, set()).add(conversation_id)  # type: ignore[attr-defined]
        _announce_viewing(conversation_id, viewing=True)
        return {"ok": True}

    def on_leave(self, data: Any) -> dict[str, Any]:
        conversation_id = self._conversation_id(data)
        if conversation_id is None:
            return {"ok": False, "error": "unknown conversation"}
        leave_room(f"conversation:{conversation_id}")
        self._viewing.get(request.sid, set()).discard(conversation_id)  # type: ignore[attr-defined]
        _announce_viewing(conversation_id, viewing=False)
        return {"ok": True}

    def on_typing(self, data: Any) -> dict[str, Any]:
        """Relay that this agent is typing; a private note's typing never reaches the customer."""
        conversation_id = self._conversation_id(data)
        if conversation_id is None:
            return {"ok": False, "error": "unknown conversation"}
        private = bool(data.get("private", False))
        publish_now(
            Event(
                TYPING,
                {
                    "conversation_id": conversation_id,
                    "user_id": current_user.id,
                    "author_name": current_user.name,
                    "typing": bool(data.get("typing", True)),
                    "private": private,
                },
                conversation_id=conversation_id,
                all_agents=False,
                private=private,
                extra={"skip_sid": request.sid},  # type: ignore[attr-defined]
            )
        )
        return {"ok": True}
