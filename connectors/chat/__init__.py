"""The website chat widget channel.

Inbound: the widget's Socket.IO namespace (``app.realtime.widget``) and its HTTP endpoints
(``app.api.widget``) turn browser payloads into ``InboundMessage`` with the pure helpers in ``payload``.

Outbound: a chat reply needs no provider. ``reply()`` stores it and the emitter pushes it to the visitor's
room as soon as it commits, so "sending" it only records that it went out. When the visitor has left, the
default reply channel becomes email (see ``register_live_check`` in ``app.services.reply``), so an offline
chat continues by email.
"""

from __future__ import annotations

from typing import ClassVar

from flask import Flask

from connectors.base import OutboundMessage, register


class ChatConnector:
    """Deliver by recording: the reply is already stored and was emitted live to the visitor's widget."""

    kind: ClassVar[str] = "chat"

    def send(self, message: OutboundMessage) -> str:
        return f"chat-{message.message_id}"


def init_app(app: Flask) -> None:
    from app.realtime.widget import visitor_online
    from app.services.reply import register_live_check

    register("chat", lambda _config: ChatConnector())
    register_live_check("chat", visitor_online)
