"""The web contact form channel.

Submissions arrive at ``POST /api/v1/forms/ID`` (``app.api.forms``) and are parsed by ``parsing``. A form
cannot carry a reply: ``app.services.reply`` answers form conversations by email (``REPLY_VIA``), so the
outbound connector registered here only refuses, loudly, if something ever asks it to send.
"""

from __future__ import annotations

from typing import ClassVar

from flask import Flask

from connectors.base import OutboundMessage, PermanentSendError, register


class FormConnector:
    """A form is inbound only; replies go by email."""

    kind: ClassVar[str] = "form"

    def send(self, message: OutboundMessage) -> str:
        raise PermanentSendError("a contact form cannot carry a reply; answer by email")


def init_app(app: Flask) -> None:
    register("form", lambda _config: FormConnector())
