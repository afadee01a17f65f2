"""Fixtures for the email channel: a mailbox, the real SMTP server on a free port, and a relay sink.

Everything speaks real SMTP over sockets: the server under test is the one `flask smtp-server` runs, and
the relay the outbox sends to is a local aiosmtpd that records what it receives (or refuses on demand).

The server answers 250 once a mail is spooled; the worker parses and stores it afterwards. ``smtp_send``
runs that worker step (``process_spooled_mail``) right after a 250, as the embedded worker would, and hands
back the spool row the 250 named, so a test reads what became of its mail; ``process=False`` stops at the 250.
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


_QUEUED_RE = re.compile(r"\bqueued as (\d+)\b")


def queued_id(reply: str) -> int | None:
    """The spool id a ``250 2.0.0 Ok: queued as N`` reply names, else None."""
    found = _QUEUED_RE.search(reply)
    return int(found.group(1)) if found else None


def process_spool(app: Any = None) -> int:
    """Run the worker's spool step once (one batch of due mail), as the embedded worker does; return how many."""
    from flask import current_app

    from app.worker.inbound_mail import process_spooled_mail

    release_session()
    try:
        return process_spooled_mail(app if app is not None else current_app._get_current_object())
    finally:
        release_session()


def drain_spool(app: Any = None) -> int:
    """Process batches until no spooled mail is due (a backlog is longer than one batch); return how many."""
    total = 0
    while handled := process_spool(app):
        total += handled
    return total


def load_spool(inbound_mail_id: int) -> Any:
    """The spool row as the database holds it now, detached from the session (its attributes stay readable)."""
    from app.extensions import db
    from app.models import InboundMail

    release_session()
    row = db.session.get(InboundMail, inbound_mail_id, populate_existing=True)
    release_session()
    return row


def update_spool(inbound_mail_id: int, **values: Any) -> None:
    """Put a spool row in the state a test needs (what a worker, a crash or the clock would have left)."""
    from sqlalchemy import update

    from app.extensions import db
    from app.models import InboundMail

    release_session()
    db.session.execute(update(InboundMail).where(InboundMail.id == inbound_mail_id).values(**values))
    db.session.commit()
    release_session()


@dataclass
class SmtpResult:
    code: int
    reply: str
    stage: str  # "mail", "rcpt" or "data"
    # The spool row the 250 named, read after the worker step ran (or right after the 250 with process=False).
    spool: Any = None

    @property
    def spool_id(self) -> int | None:
        return queued_id(self.reply) if self.code == 250 else None

    @property
    def status(self) -> str | None:
        """queued | processing | stored | rejected | failed, or None when nothing was spooled."""
        return None if self.spool is None else str(self.spool.status)

    @property
    def outcome(self) -> str:
        """What became of the mail ("stored as message N", the reason of a rejection, the error of a crash)."""
        return "" if self.spool is None else str(self.spool.outcome or "")

    @property
    def attempts(self) -> int:
        """How many times the worker took the mail up (1 when it was handled in one go)."""
        return 0 if self.spool is None else int(self.spool.attempts)

    @property
    def message_id(self) -> int | None:
        """The message the mail became (or, for a delivery report, the sent message it was applied to)."""
        return None if self.spool is None else self.spool.message_id


def smtp_send(
    port: int,
    raw: bytes,
    *,
    mail_from: str = "anna@example.com",
    to: tuple[str, ...] = (MAILBOX,),
    process: bool = True,
    app: Any = None,
) -> SmtpResult:
    """Send one mail over a fresh SMTP session; return the server's final answer (never raises on 4xx/5xx).

    After a 250 the spooled mail is processed (unless ``process=False``) and its spool row attached.
    """
    release_session()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return smtp_transaction(client, raw, mail_from=mail_from, to=to, process=process, app=app)


def smtp_transaction(
    client: smtplib.SMTP,
    raw: bytes,
    *,
    mail_from: str = "anna@example.com",
    to: tuple[str, ...] = (MAILBOX,),
    process: bool = True,
    app: Any = None,
) -> SmtpResult:
    """Run MAIL/RCPT/DATA on an open session (RSET first, so a session carries many mails).

    A 250 must name the spool row it queued: the row is loaded (after one worker step unless ``process=False``).
    """
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
    result = SmtpResult(code, reply.decode(errors="replace"), "data")
    if code == 250:
        inbound_mail_id = result.spool_id
        assert inbound_mail_id is not None, f"a 250 must name the spool row: {result.reply!r}"
        if process:
            process_spool(app)
        result.spool = load_spool(inbound_mail_id)
        assert result.spool is not None, f"spool row {inbound_mail_id} is missing after {result.reply!r}"
    return result


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
