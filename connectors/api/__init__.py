"""The API channel: other systems (a shop, a CRM) push inbound messages with the channel's token.

Inbound arrives at ``POST /api/v1/channels/ID/inbound`` (see ``app.api.channels``). Replies to a
conversation that came in on an api channel have no provider to go to, so the api channel keeps them in
the conversation, where the pushing system can read them back through the REST API.
"""

from __future__ import annotations

from typing import ClassVar

from flask import Flask

from connectors.base import OutboundMessage, register


class ApiConnector:
    """Deliver by recording: the message is already stored and readable through the API."""

    kind: ClassVar[str] = "api"

    def send(self, message: OutboundMessage) -> str:
        return f"api-{message.message_id}"


def init_app(app: Flask) -> None:
    register("api", lambda _config: ApiConnector())
