"""The inbound SMTP server: aiosmtpd in front of ingest.

It accepts mail for the enabled email channels' addresses and their plus-addresses (``support+TOKEN@…``),
answers 550 to any other recipient and 552 above the size limit, and says 250 only once the raw mail is
spooled (on disk, and a committed ``inbound_mail`` row); when that fails, 451 makes the sender try again
later, so nothing is lost. The worker parses and ingests spooled mail (``app.worker.inbound_mail``), as an
MTA's queue or Rails' ActionMailbox do: parsing is most of a mail's cost, and a mail that cannot be parsed
yet waits to be retried instead of being refused. Spooling runs in a thread pool: the event loop only
speaks SMTP.

``start_smtp_server(app)`` serves SMTP_LISTEN in a background thread (embedded mode and ``flask
smtp-server``); stop it with ``.stop()``.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from connectors.email.parse import UnusableMessage, parse_email

log = logging.getLogger(__name__)

INLINE_URL = "/api/v1/email/inline/{sha256}"
TEMPFAIL = "451 4.3.0 Temporary failure storing the message, please try again later"


def parse_listen(value: str, default_port: int = 2525) -> tuple[str, int]:
    """Parse SMTP_LISTEN ("127.0.0.1:2525", "[::1]:25", ":2525", "0") into (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, port = value[1:].partition("]")
        return host, int(port.lstrip(":") or default_port)
    host, sep, port = value.rpartition(":")
    if not sep:
        return ("127.0.0.1", int(value)) if value.isdigit() else (value, default_port)
    return host or "127.0.0.1", int(port or default_port)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a spooled mail: ``stored`` (a message, or a delivery report applied) or ``rejected``."""

    status: str
    detail: str
    message_id: int | None = None


class MailReceiver:
    """Recipient checks and spooling for the SMTP server; parsing and ingest for the worker.

    ``spool`` runs in the SMTP server's thread pool, before the 250; ``process`` runs in the worker, after it.
    """

    def __init__(self, app: Flask) -> None:
        from app.services.mail import MailboxDirectory

        self.app = app
        self.mailboxes = MailboxDirectory()
        languages = str(app.config.get("EMAIL_REPLY_LANGUAGES") or "en,pl")
        self.reply_languages = tuple(lang.strip() for lang in languages.split(",") if lang.strip())

    def accepts(self, address: str) -> bool:
        """Whether ``address`` is one of our mailboxes or a plus-address of one."""
        with self.app.app_context():
            from app.extensions import db

            try:
                return self.mailboxes.lookup(address) is not None
            finally:
                db.session.remove()

    def spool(self, raw: bytes, mail_from: str | None, recipients: list[str]) -> str:
        """Keep ``raw`` for the worker and return the SMTP reply line: 250 only once it is committed."""
        with self.app.app_context():
            from app.extensions import db
            from app.services.mail import spool_mail

            try:
                ours = [address for address in recipients if self.mailboxes.lookup(address)]
                if not ours:
                    # The mailbox was disabled between RCPT and the end of DATA.
                    return "550 5.1.1 Recipient address rejected: no such mailbox here"
                return f"250 2.0.0 Ok: queued as {spool_mail(raw, mail_from, ours)}"
            except Exception:
                # The database or the disk cannot take it: the sender keeps the mail and retries.
                db.session.rollback()
                log.warning("spooling a message failed; asked the sender to retry", exc_info=True)
                return TEMPFAIL
            finally:
                db.session.remove()

    def process(self, raw: bytes, mail_from: str | None, recipients: list[str]) -> Outcome:
        """Turn one spooled mail into a stored message or an applied bounce, or reject it with a reason.

        Runs in an app context; errors other than a deliberate rejection propagate, so the worker retries.
        A stored message (and the channel's automatic reply to it, if one is due) is left uncommitted: the worker
        records the outcome in the same transaction.
        """
        from app.extensions import db
        from app.models import utcnow
        from app.services.autoreply import auto_reply
        from app.services.ingest import ingest
        from app.services.mail import record_bounce

        targets = [(address, found) for address in recipients if (found := self.mailboxes.lookup(address))]
        own_addresses = self.mailboxes.channels()
        # Parsing takes milliseconds: hold no transaction (on SQLite, the write lock) while it runs.
        db.session.commit()
        if not targets:
            return Outcome("rejected", "no such mailbox here (it was disabled after the mail arrived)")
        # One message per mail, even when it was sent to several of our addresses: prefer the one
        # carrying a reply token, it says which conversation the mail continues.
        address, (channel, token) = next(((a, f) for a, f in targets if f[1]), targets[0])
        try:
            parsed = parse_email(
                raw,
                recipient=address,
                envelope_sender=mail_from,
                own_addresses=own_addresses,
                inline_url=lambda sha256: INLINE_URL.format(sha256=sha256),
                reply_token=token,
                reply_languages=self.reply_languages,
            )
        except UnusableMessage as exc:
            log.info("rejected mail from %r to %s: %s", mail_from, address, exc)
            return Outcome("rejected", str(exc))
        if parsed.bounce is not None:
            bounce = parsed.bounce
            message = record_bounce(
                bounce.message_ids,
                action=bounce.action,
                reason=bounce.reason,
                status=bounce.status,
                recipients=bounce.recipients,
                raw=raw,
            )
            if message is None:
                log.info("rejected a delivery report that matches no message we sent: %s", bounce.reason[:200])
                return Outcome("rejected", "delivery report does not match any message sent from here")
            log.info("delivery report for message %s: %s %s", message.id, bounce.action, bounce.reason[:200])
            return Outcome("stored", f"delivery report recorded for message {message.id}", message.id)
        assert parsed.inbound is not None
        result = ingest(parsed.inbound, channel, commit=False)
        auto_reply(result, channel, automated=parsed.inbound.automated, now=utcnow())
        if parsed.inbound.automated:
            log.info(
                "stored automated mail %s (%s)",
                result.message.id,
                parsed.inbound.metadata["email"].get("automated_reason"),
            )
        state = "stored" if result.created else "already stored"
        return Outcome("stored", f"{state} as message {result.message.id}", result.message.id)


class SmtpHandler:
    """aiosmtpd handler: checks recipients and stores mail without ever blocking the event loop."""

    def __init__(self, receiver: MailReceiver, executor: ThreadPoolExecutor) -> None:
        self.receiver = receiver
        self.executor = executor

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        loop = asyncio.get_running_loop()
        try:
            ours = self.receiver.mailboxes.fresh_accepts(address)
            if ours is None:  # the mailbox cache is stale: refresh it from the database, off the event loop
                ours = await loop.run_in_executor(self.executor, self.receiver.accepts, address)
        except Exception as exc:  # the database is down (or a bug): the sender must keep the mail and retry
            log.warning("cannot check recipient %s: %r", address, exc, exc_info=not isinstance(exc, SQLAlchemyError))
            return "451 4.3.0 Temporary failure checking the recipient, please try again later"
        if not ours:
            log.info("rejected recipient %s from %r", address, envelope.mail_from)
            return "550 5.1.1 Recipient address rejected: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self.executor, self.receiver.spool, bytes(raw or b""), envelope.mail_from, list(envelope.rcpt_tos)
            )
        except RuntimeError:  # the pool is shutting down with the server
            return TEMPFAIL


class LenientSMTP(SMTP):
    """aiosmtpd's SMTP with room for over-long lines.

    RFC 5321 caps lines at 1000 octets, but real senders exceed it (minified HTML, long base64 lines) and
    big MTAs accept them; refusing with "500 Line too long" would lose real customer mail. The message
    size limit still bounds memory.
    """

    line_length_limit = 1024 * 1024


class FreePortController(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 (it cannot find the port it got otherwise)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer(FreePortController):
    """The Switchboard SMTP listener: lenient SMTP sessions, and the thread pool that stores the mail."""

    def __init__(self, handler: SmtpHandler, *, hostname: str, port: int, **smtp_options: Any) -> None:
        super().__init__(handler, hostname=hostname, port=port, **smtp_options)
        self.executor = handler.executor

    def factory(self) -> SMTP:
        return LenientSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.executor.shutdown(wait=True)


def start_smtp_server(app: Flask, listen: str | None = None) -> SmtpServer:
    """Start the SMTP server for ``app`` on SMTP_LISTEN (or ``listen``) and return it; ``.stop()`` ends it."""
    host, port = parse_listen(listen or app.config.get("SMTP_LISTEN", "127.0.0.1:2525"))
    # aiosmtpd logs every SMTP command line at INFO; the spool keeps a row for every mail, so that chatter
    # only fills the log (and costs the server ~8 % of its time). A level the operator's logging sets wins.
    command_log = logging.getLogger("mail.log")
    if command_log.level == logging.NOTSET:
        command_log.setLevel(logging.WARNING)
    executor = ThreadPoolExecutor(max_workers=int(app.config.get("SMTP_WORKERS", 4)), thread_name_prefix="smtp-ingest")
    handler = SmtpHandler(MailReceiver(app), executor)
    server = SmtpServer(
        handler,
        hostname=host,
        port=port,
        data_size_limit=int(app.config.get("SMTP_MAX_MESSAGE_BYTES", 25 * 1024 * 1024)),
        server_hostname=app.config.get("MAIL_DOMAIN") or None,
        ident="Switchboard ESMTP",
        decode_data=False,
        enable_SMTPUTF8=True,
    )
    server.start()
    log.info("SMTP server listening on %s:%s", server.hostname, server.port)
    return server
