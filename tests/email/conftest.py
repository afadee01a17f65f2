"""Fixtures for the email channel: a mailbox, the real SMTP server on a free port, and a relay sink.

Everything speaks real SMTP over sockets: the server under test is the one `flask smtp-server` runs, and
the relay the outbox sends to is a local aiosmtpd that records what it receives (or refuses on demand).
"""

from __future__ import annotations

import re
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from connectors.email.server import FreePortController
from tests.conftest import corpus_dir

MAILBOX = "support@support.example.com"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def corpus_mail_dir() -> Path:
    """The shared real-world mail corpus, or skip with the reason it is missing."""
    return corpus_dir("mail")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def crlf(raw: bytes) -> bytes:
    """Line endings as every MTA sends them over SMTP."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", raw)


def release_session() -> None:
    """End the test thread's transaction so the server's threads can write (SQLite has one writer)."""
    from app.extensions import db

    db.session.close()


@dataclass
class SmtpResult:
    code: int
    reply: str
    stage: str  # "rcpt" or "data"


def smtp_send(
    port: int, raw: bytes, *, mail_from: str = "anna@example.com", to: tuple[str, ...] = (MAILBOX,)
) -> SmtpResult:
    """Send one mail over a fresh SMTP session; return the server's final answer (never raises on 4xx/5xx)."""
    release_session()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return smtp_transaction(client, raw, mail_from=mail_from, to=to)


def smtp_transaction(
    client: smtplib.SMTP, raw: bytes, *, mail_from: str = "anna@example.com", to: tuple[str, ...] = (MAILBOX,)
) -> SmtpResult:
    """Run MAIL/RCPT/DATA on an open session (RSET first, so a session carries many mails)."""
    client.ehlo_or_helo_if_needed()
    client.rset()
    code, reply = client.mail(mail_from)
    if code != 250:
        return SmtpResult(code, reply.decode(), "mail")
    accepted = 0
    last: tuple[int, bytes] = (0, b"")
    for address in to:
        last = client.rcpt(address)
        accepted += last[0] == 250
    if not accepted:
        return SmtpResult(last[0], last[1].decode(), "rcpt")
    try:
        code, reply = client.data(crlf(raw))
    except smtplib.SMTPDataError as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    return SmtpResult(code, reply.decode(errors="replace"), "data")


@pytest.fixture
def mailbox(app: Any) -> Any:
    """The support mailbox: an enabled email channel."""
    from app.services.channels import create_channel

    channel, _ = create_channel("email", "Support", address=MAILBOX, settings={"from_name": "Acme Support"})
    release_session()
    return channel


@pytest.fixture
def smtp_server(app: Any, mailbox: Any) -> Iterator[Any]:
    """The inbound SMTP server, as `flask smtp-server` runs it, on a free port."""
    from connectors.email.server import start_smtp_server

    server = start_smtp_server(app, "127.0.0.1:0")
    yield server
    server.stop()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RelaySink:
    """What the relay received, and the reply it gives the next messages (250 unless told otherwise)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            return "250 2.0.0 Ok: queued as SINK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def relay(app: Any) -> Iterator[RelaySink]:
    """A local SMTP relay that records what the outbox sends; SMTP_RELAY_URL points at it."""
    sink = RelaySink()
    controller = FreePortController(sink, hostname="127.0.0.1", port=0)
    controller.start()
    sink.port = controller.port
    app.config["SMTP_RELAY_URL"] = sink.url
    yield sink
    controller.stop()


def deliver_outbox(app: Any) -> int:
    """Run the outbox once, as the worker does; return how many messages it handled."""
    from app.worker.outbox import process_due

    release_session()
    handled = process_due(app)
    release_session()
    return handled
