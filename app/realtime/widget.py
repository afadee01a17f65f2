"""The /widget namespace: the chat widget's live connection, authenticated by visitor token and origin.

Connect with ``auth={"channel_id", "token", "host"}``. The widget runs in an iframe on our own origin, so the
browser's Origin header names us; the page embedding it is then the ``host`` the iframe learned from the
loader's postMessage (``event.origin``, which a page cannot fake) and must be on the channel's
``allowed_origins``. Any other Origin must itself be on the list. The iframe page's CSP ``frame-ancestors``
makes the browser refuse to render it on other sites in the first place.

Events from the widget: ``message`` {client_id, text, attachments?} acknowledged only after the message is
committed (a retry with the same client id gets the same message back); ``typing`` {typing}; ``read``
{message_id}; ``status`` (who is online). Events to the widget come from ``app.realtime.emitter`` (customer-
safe ``message.created``/``message.updated``/``typing`` in room ``conversation:<id>``) and from here
(``read``: an agent has seen the visitor's messages).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from app.events import TYPING, VIEWING, Event, domain_event, publish_now
from app.extensions import db, socketio
from app.models import Channel, Conversation
from app.services.errors import DomainError
from app.services.widget import (
    Visitor,
    channel_status,
    host_allowed,
    mark_read_by_agent,
    mark_read_by_visitor,
    post_message,
    read_token,
    visible_conversation,
    widget_channel,
    widget_message,
)
from connectors.chat.payload import InvalidPayload, canonical_origin, parse_message

log = logging.getLogger(__name__)

NAMESPACE = "/widget"
AGENT_NAMESPACE = "/agent"

# Defaults for the app config keys of the same names.
LIMIT_DEFAULTS = {
    "WIDGET_MESSAGE_RATE_LIMIT": "20/minute",  # messages per visitor
    "WIDGET_IP_MESSAGE_RATE_LIMIT": "300/minute",  # messages per client address (many visitors behind one NAT)
    "WIDGET_TYPING_RATE_LIMIT": "40/minute",  # typing signals per visitor; extra ones are dropped
    "WIDGET_CONNECT_RATE_LIMIT": "120/minute",  # socket connections per client address
}
DEFAULT_MAX_MESSAGE_CHARS = 5000


# --- rate limits --------------------------------------------------------------------------------------------


class RateLimits:
    """Sliding-window counters in Flask-Limiter's storage: Redis when REDIS_URL is set, memory otherwise."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.enabled = bool(config.get("RATELIMIT_ENABLED", True))
        self.config = config
        self.storage = storage_from_string(config.get("RATELIMIT_STORAGE_URI") or "memory://")
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    def hit(self, name: str, *key: str) -> bool:
        """Count one event against limit ``name`` for ``key``; return False when it is over the limit."""
        if not self.enabled:
            return True
        limit = parse(str(self.config.get(name, LIMIT_DEFAULTS[name])))
        return self.strategy.hit(limit, "widget", name, *key)


def rate_limits() -> RateLimits:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    limits = app.extensions.get("switchboard.widget_limits")
    if limits is None:
        limits = app.extensions["switchboard.widget_limits"] = RateLimits(app.config)
    return limits


# --- presence -----------------------------------------------------------------------------------------------


class Presence:
    """Who is connected now: widget visitors per conversation, and agents on /agent.

    Rooms are per process. With REDIS_URL set, each web process also writes what it holds to Redis with a
    short expiry (and refreshes it every few seconds), so any process, the worker included, can ask.
    """

    TTL = 30.0
    HEARTBEAT = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visitors: dict[int, set[str]] = {}
        self._redis: Any = None
        self._heartbeat: threading.Thread | None = None
        self._process = f"{socket.gethostname()}:{os.getpid()}"

    def configure(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if not url or self._redis is not None:
            return
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2)
        with self._lock:
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="widget-presence", daemon=True)
                self._heartbeat.start()

    @staticmethod
    def _visitor_key(conversation_id: int) -> str:
        return f"switchboard:presence:widget:{conversation_id}"

    def visitor_joined(self, conversation_id: int, sid: str) -> None:
        with self._lock:
            self._visitors.setdefault(conversation_id, set()).add(sid)
        self._publish_visitor(conversation_id, sid)

    def visitor_left(self, conversation_id: int, sid: str) -> None:
        with self._lock:
            sids = self._visitors.get(conversation_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._visitors[conversation_id]
        if self._redis is not None:
            try:
                self._redis.zrem(self._visitor_key(conversation_id), sid)
            except Exception:
                log.warning("presence: Redis unreachable", exc_info=True)

    def visitor_online(self, conversation_id: int) -> bool:
        with self._lock:
            if self._visitors.get(conversation_id):
                return True
        if self._redis is None:
            return False
        try:
            return bool(self._redis.zcount(self._visitor_key(conversation_id), time.time(), "+inf"))
        except Exception:
            log.warning("presence: Redis unreachable", exc_info=True)
            return False

    def _publish_visitor(self, conversation_id: int, sid: str) -> None:
        if self._redis is None:
            return
        try:
            key = self._visitor_key(conversation_id)
            pipe = self._redis.pipeline()
            pipe.zadd(key, {sid: time.time() + self.TTL})
            pipe.expire(key, int(self.TTL * 2))
            pipe.execute()
        except Exception:
            log.warning("presence: Redis unreachable", exc_info=True)

    @staticmethod
    def local_agent_ids() -> set[int]:
        """Return the ids of users with a live /agent connection in this process."""
        server = getattr(socketio, "server", None)
        if server is None:
            return set()
        try:
            rooms = dict(server.manager.rooms.get(AGENT_NAMESPACE, {}))
        except RuntimeError:  # the room table changed while we copied it; ask again next time
            return set()
        ids = set()
        for room, members in rooms.items():
            if isinstance(room, str) and room.startswith("user:") and members and room[5:].isdigit():
                ids.add(int(room[5:]))
        return ids

    def agent_ids(self) -> set[int]:
        ids = self.local_agent_ids()
        if self._redis is None:
            return ids
        try:
            self._redis.set(f"switchboard:presence:agents:{self._process}", json.dumps(sorted(ids)), ex=int(self.TTL))
            for key in self._redis.scan_iter("switchboard:presence:agents:*", count=100):
                value = self._redis.get(key)
                if value:
                    ids.update(int(i) for i in json.loads(value))
        except Exception:
            log.warning("presence: Redis unreachable", exc_info=True)
        return ids

    def _beat(self) -> None:
        while True:
            time.sleep(self.HEARTBEAT)
            try:
                with self._lock:
                    held = [(cid, list(sids)) for cid, sids in self._visitors.items()]
                for conversation_id, sids in held:
                    for sid in sids:
                        self._publish_visitor(conversation_id, sid)
                self.agent_ids()
            except Exception:  # the heartbeat must survive a Redis outage
                log.warning("presence heartbeat failed", exc_info=True)


presence = Presence()


def visitor_online(conversation: Conversation) -> bool:
    """Return whether the conversation's visitor has the widget open now (the chat connector's live check)."""
    return presence.visitor_online(conversation.id)


def online_agent_ids() -> set[int]:
    return presence.agent_ids()


# --- the namespace ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class WidgetClient:
    """What one widget socket proved on connect."""

    channel_id: int
    visitor: Visitor
    ip: str
    host: str
    conversation_id: int | None = None


def _own_origins() -> set[str]:
    origins = {canonical_origin(request.host_url), canonical_origin(current_app.config.get("PUBLIC_URL"))}
    return {origin for origin in origins if origin}


def embedding_origin(origin_header: str | None, claimed_host: Any) -> str | None:
    """Return the origin of the page the widget is on: the Origin header, or the host our own iframe names."""
    origin = canonical_origin(origin_header)
    if origin is not None and origin not in _own_origins():
        return origin
    return canonical_origin(claimed_host) if isinstance(claimed_host, str) else None


def _refused(code: str, message: str) -> ConnectionRefusedError:
    """The client's connect_error carries ``message`` and ``data.code``."""
    return ConnectionRefusedError(message, {"code": code})


_CHANNEL_TTL = 5.0


def _channel(channel_id: int) -> Channel:
    """Return the chat channel, re-read at most every few seconds: one query less per message under load.

    The row is detached and only read (id, kind, team, settings); a disabled channel stops taking messages
    within ``_CHANNEL_TTL`` seconds.
    """
    now = time.monotonic()
    _channels: dict[int, tuple[float, Channel]] = current_app.extensions.setdefault("switchboard.widget_channels", {})
    cached = _channels.get(channel_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    channel = widget_channel(channel_id)
    _channels[channel_id] = (now + _CHANNEL_TTL, channel)
    return channel


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


class WidgetNamespace(Namespace):
    """Visitors' live connections: one room per conversation, acks only after commit."""

    def __init__(self, namespace: str = NAMESPACE) -> None:
        super().__init__(namespace)
        self._clients: dict[str, WidgetClient] = {}
        domain_event.connect(_on_domain_event, weak=False)

    # Flask-SocketIO passes the client's auth payload to connect handlers that accept it.
    def on_connect(self, auth: Any = None) -> bool:
        try:
            return self._connect(auth)
        finally:
            db.session.remove()

    def _connect(self, auth: Any) -> bool:
        presence.configure(current_app._get_current_object())  # type: ignore[attr-defined]
        ip = request.remote_addr or "unknown"
        if not rate_limits().hit("WIDGET_CONNECT_RATE_LIMIT", "ip", ip):
            raise _refused("rate_limited", "Too many connections; wait a minute.")
        if not isinstance(auth, dict) or not isinstance(auth.get("channel_id"), int):
            raise _refused("bad_request", "Connect with auth {channel_id, token}.")
        try:
            channel = widget_channel(auth["channel_id"])
        except DomainError:
            raise _refused("not_found", "Unknown chat channel.") from None
        host = embedding_origin(request.headers.get("Origin"), auth.get("host"))
        if host is None or not host_allowed(channel, host):
            log.info("widget connection refused: origin %s not allowed on channel %s", host, channel.id)
            raise _refused("origin_not_allowed", "This site may not use this chat.")
        visitor = read_token(auth.get("token"), channel.id)
        if visitor is None:
            raise _refused("bad_token", "Start a session first.")
        client = WidgetClient(channel.id, visitor, ip, host)
        join_room(visitor.room)
        conversation = visible_conversation(visitor)
        if conversation is not None:
            self._enter(client, conversation.id)
        self._clients[request.sid] = client  # type: ignore[attr-defined]
        return True

    def _enter(self, client: WidgetClient, conversation_id: int) -> None:
        sid: str = request.sid  # type: ignore[attr-defined]
        if client.conversation_id == conversation_id:
            return
        if client.conversation_id is not None:
            leave_room(f"conversation:{client.conversation_id}")
            presence.visitor_left(client.conversation_id, sid)
        join_room(f"conversation:{conversation_id}")
        presence.visitor_joined(conversation_id, sid)
        client.conversation_id = conversation_id

    def on_disconnect(self, reason: Any = None) -> None:
        client = self._clients.pop(request.sid, None)  # type: ignore[attr-defined]
        if client is not None and client.conversation_id is not None:
            presence.visitor_left(client.conversation_id, request.sid)  # type: ignore[attr-defined]

    def _client(self) -> WidgetClient | None:
        return self._clients.get(request.sid)  # type: ignore[attr-defined]

    def on_message(self, data: Any) -> dict[str, Any]:
        """Store a visitor's message and acknowledge it once committed; the same client id twice is one message."""
        client = self._client()
        if client is None:
            return _error("not_connected", "Reconnect first.")
        limits = rate_limits()
        if not limits.hit("WIDGET_MESSAGE_RATE_LIMIT", "visitor", client.visitor.visitor_id) or not limits.hit(
            "WIDGET_IP_MESSAGE_RATE_LIMIT", "ip", client.ip
        ):
            return _error("rate_limited", "You are sending messages too fast; wait a moment.", retry=True)
        max_chars = int(current_app.config.get("WIDGET_MAX_MESSAGE_CHARS", DEFAULT_MAX_MESSAGE_CHARS))
        try:
            message = parse_message(data, max_chars=max_chars)
            channel = _channel(client.channel_id)
            result = post_message(
                channel,
                client.visitor,
                message,
                {"origin": client.host, "ip": client.ip, "user_agent": request.headers.get("User-Agent", "")[:300]},
            )
            payload = widget_message(result.message)
            conversation_id = result.conversation.id
        except InvalidPayload as exc:
            db.session.rollback()
            return _error("invalid", exc.reason, field=exc.field)
        except DomainError as exc:
            db.session.rollback()
            return _error(exc.code, str(exc))
        except Exception:
            log.exception("storing a widget message failed")
            db.session.rollback()
            return _error("internal_error", "Not sent; it will be retried.", retry=True)
        finally:
            db.session.remove()
        self._enter(client, conversation_id)
        if _agents_viewing(conversation_id):
            _agent_read(conversation_id)
        return {"ok": True, "message": payload, "conversation_id": conversation_id, "duplicate": not result.created}

    def on_typing(self, data: Any) -> dict[str, Any]:
        """Tell the agents viewing the conversation that the visitor is typing (never echoed to visitors)."""
        client = self._client()
        if client is None or client.conversation_id is None:
            return {"ok": False}
        if not rate_limits().hit("WIDGET_TYPING_RATE_LIMIT", "visitor", client.visitor.visitor_id):
            return {"ok": False}
        typing = bool(data.get("typing", True)) if isinstance(data, dict) else True
        publish_now(
            Event(
                TYPING,
                {
                    "conversation_id": client.conversation_id,
                    "typing": typing,
                    "visitor": True,
                    "author_name": None,
                    "private": False,
                },
                conversation_id=client.conversation_id,
                all_agents=False,
                # Private to staff: a visitor's typing is for agents, not for the visitor's other tabs.
                private=True,
            )
        )
        return {"ok": True}

    def on_read(self, data: Any) -> dict[str, Any]:
        """Record that the visitor has seen our replies up to ``message_id``."""
        client = self._client()
        if client is None or not isinstance(data, dict) or not isinstance(data.get("message_id"), int):
            return {"ok": False}
        try:
            marked = mark_read_by_visitor(client.visitor, data["message_id"])
        finally:
            db.session.remove()
        return {"ok": True, "marked": len(marked)}

    def on_status(self, data: Any = None) -> dict[str, Any]:
        """Return whether the chat is staffed now and who the visitor is talking to."""
        client = self._client()
        if client is None:
            return {"ok": False}
        try:
            channel = widget_channel(client.channel_id)
            conversation = db.session.get(Conversation, client.conversation_id) if client.conversation_id else None
            status = channel_status(channel, online_agent_ids(), conversation)
        except DomainError:
            return {"ok": False}
        finally:
            db.session.remove()
        return {"ok": True, **status.to_dict()}

    def on_history(self, data: Any = None) -> dict[str, Any]:
        """Return the visitor's latest messages (after a reconnect, to fill any gap)."""
        from app.services.widget import history

        client = self._client()
        if client is None:
            return {"ok": False}
        try:
            conversation, items, more = history(client.visitor)
            if conversation is not None:
                self._enter(client, conversation.id)
        finally:
            db.session.remove()
        return {"ok": True, "conversation_id": client.conversation_id, "items": items, "has_more": more}


def _agents_viewing(conversation_id: int) -> bool:
    server = getattr(socketio, "server", None)
    if server is None:
        return False
    try:
        return bool(server.manager.rooms.get(AGENT_NAMESPACE, {}).get(f"conversation:{conversation_id}"))
    except RuntimeError:
        return False


def _agent_read(conversation_id: int) -> None:
    """Mark the visitor's messages read by an agent and tell the widget ("Seen")."""
    try:
        mark_read_by_agent(conversation_id)  # publishes messages.read, which the emitter sends to the widget
    except Exception:  # read receipts are a courtesy; never fail the caller over them
        log.exception("marking conversation %s read failed", conversation_id)
        db.session.rollback()
    finally:
        db.session.remove()


def _on_domain_event(_sender: object, event: Event) -> None:
    """An agent opening a conversation has seen the visitor's messages."""
    if event.name == VIEWING and event.conversation_id is not None and event.payload.get("viewing"):
        _agent_read(event.conversation_id)


__all__ = ["WidgetNamespace", "online_agent_ids", "presence", "visitor_online"]
