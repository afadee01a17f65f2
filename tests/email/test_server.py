"""The inbound SMTP server over real SMTP sessions: recipients, limits, spool-before-250, 451 on failures.

The server answers 250 once the mail is spooled; the worker step ``smtp_send`` runs after it stores the
message (or records why it was rejected) on the spool row the 250 named.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Attachment, Conversation, Customer, InboundMail, Message
from app.services import attachments as files
from tests.email.conftest import (
    MAILBOX,
    crlf,
    fixture_bytes,
    load_spool,
    process_spool,
    release_session,
    smtp_send,
)

SIMPLE = crlf(
    b"From: Anna Nowak <anna@example.com>\nTo: support@support.example.com\nSubject: Where is my parcel?\n"
    b"Message-ID: <simple-1@example.com>\nDate: Mon, 12 Feb 2024 10:00:00 +0100\n\nHello, where is it?\n"
)


def stored_messages() -> list[Message]:
    release_session()
    return list(db.session.scalars(select(Message).order_by(Message.id)))


def spool_rows() -> list[InboundMail]:
    release_session()
    return list(db.session.scalars(select(InboundMail).order_by(InboundMail.id)))


def test_mail_is_spooled_and_committed_before_the_250_and_stored_by_the_worker(app: Any, smtp_server: Any):
    result = smtp_send(smtp_server.port, SIMPLE, process=False)

    assert (result.code, result.stage) == (250, "data")
    assert result.reply == f"2.0.0 Ok: queued as {result.spool_id}"
    # When the 250 arrives the spool row is committed (another connection sees it), the message is not yet.
    with db.engine.connect() as other:  # type: ignore[union-attr]
        spooled = other.execute(
            text("SELECT status, mail_from, raw_sha256, size FROM inbound_mail WHERE id = :id"),
            {"id": result.spool_id},
        ).one()
        assert other.execute(text("SELECT count(*) FROM messages")).scalar() == 0
    assert (spooled.status, spooled.mail_from, spooled.size) == ("queued", "anna@example.com", len(SIMPLE))
    assert files.read_bytes(spooled.raw_sha256) == SIMPLE  # the raw source, as received, in the file store
    assert stored_messages() == []

    assert process_spool(app) == 1  # the worker's step

    [message] = stored_messages()
    spool = load_spool(result.spool_id or 0)
    assert (spool.status, spool.outcome, spool.message_id) == ("stored", f"stored as message {message.id}", message.id)
    assert spool.attempts == 1
    assert spool.processed_at is not None
    assert message.channel == "email"
    assert message.direction == "in"
    assert message.text == "Hello, where is it?"
    assert message.subject == "Where is my parcel?"
    assert message.message_id_header == "<simple-1@example.com>"
    assert files.read_bytes(message.raw_path or "") == SIMPLE  # the raw source, as received
    conversation = db.session.get_one(Conversation, message.conversation_id)
    assert conversation.customer.name == "Anna Nowak"


def test_unknown_recipients_are_refused_with_550(smtp_server: Any):
    result = smtp_send(smtp_server.port, SIMPLE, to=("sales@support.example.com",))

    assert (result.code, result.stage) == (550, "rcpt")
    assert result.spool is None
    assert stored_messages() == []
    assert spool_rows() == []  # refused before DATA: nothing was spooled


def test_plus_addresses_and_any_letter_case_reach_the_mailbox(smtp_server: Any):
    result = smtp_send(smtp_server.port, SIMPLE, to=("Support+anything@Support.Example.com",))

    assert result.code == 250
    assert result.status == "stored", result.outcome
    [message] = stored_messages()
    assert result.message_id == message.id


def test_a_disabled_mailbox_refuses_mail(app: Any, mailbox: Any):
    from connectors.email.server import start_smtp_server

    channel = db.session.merge(mailbox)
    channel.enabled = False
    db.session.commit()
    server = start_smtp_server(app, "127.0.0.1:0")
    try:
        assert smtp_send(server.port, SIMPLE).code == 550
    finally:
        server.stop()
    assert spool_rows() == []


def test_mail_over_the_size_limit_is_refused_with_552(app: Any, mailbox: Any):
    from connectors.email.server import start_smtp_server

    app.config["SMTP_MAX_MESSAGE_BYTES"] = 10_000
    server = start_smtp_server(app, "127.0.0.1:0")
    try:
        big = SIMPLE + b"x" * 20_000 + b"\r\n"
        result = smtp_send(server.port, big)
        assert result.code == 552
        assert smtp_send(server.port, SIMPLE).code == 250  # the limit, not the server, refused it
    finally:
        server.stop()
    assert len(stored_messages()) == 1
    assert len(spool_rows()) == 1  # the refused one was never spooled


def test_the_same_mail_delivered_twice_is_stored_once(smtp_server: Any):
    first = smtp_send(smtp_server.port, SIMPLE)
    again = smtp_send(smtp_server.port, SIMPLE)

    assert first.code == again.code == 250
    assert first.spool_id != again.spool_id  # each delivery is spooled…
    [message] = stored_messages()  # …but the mail is stored once
    assert (first.status, first.outcome) == ("stored", f"stored as message {message.id}")
    assert (again.status, again.outcome) == ("stored", f"already stored as message {message.id}")
    assert first.message_id == again.message_id == message.id


def test_mail_to_two_of_our_addresses_is_one_message(smtp_server: Any):
    from app.services.channels import create_channel

    create_channel("email", "Sales", address="sales@support.example.com")
    release_session()
    result = smtp_send(smtp_server.port, SIMPLE, to=(MAILBOX, "sales@support.example.com", "nobody@else.example"))

    assert result.code == 250
    assert result.status == "stored", result.outcome
    assert [row.recipients for row in spool_rows()] == [[MAILBOX, "sales@support.example.com"]]  # ours only
    assert len(stored_messages()) == 1


def test_mail_without_any_usable_sender_is_rejected_with_a_logged_reason(
    smtp_server: Any, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="connectors.email.server")
    raw = fixture_bytes("garbage_no_from.eml")
    result = smtp_send(smtp_server.port, raw, mail_from="")

    # Accepted into the spool (the sender cannot be told after the 250), then deliberately rejected.
    assert result.code == 250
    assert result.status == "rejected"
    assert "no usable sender" in result.outcome
    assert result.message_id is None
    assert result.spool.processed_at is not None
    assert files.read_bytes(result.spool.raw_sha256) == crlf(raw)  # kept, for an admin to look at
    assert stored_messages() == []
    release_session()
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
    assert any(line.startswith("rejected mail from") and result.outcome in line for line in caplog.messages)


def test_attachments_and_inline_images_are_stored_with_the_message(smtp_server: Any):
    assert smtp_send(smtp_server.port, fixture_bytes("html_inline_image.eml")).code == 250

    [message] = stored_messages()
    attachments = list(db.session.scalars(select(Attachment).where(Attachment.message_id == message.id)))
    assert sorted((a.filename, a.inline) for a in attachments) == [("faktura-żółć.pdf", False), ("logo.png", True)]
    logo = next(a for a in attachments if a.filename == "logo.png")
    assert f"/api/v1/email/inline/{logo.sha256}" in (message.html or "")


def _rename(table: str, to: str) -> None:
    with db.engine.begin() as connection:  # type: ignore[union-attr]
        connection.execute(text(f"ALTER TABLE {table} RENAME TO {to}"))


@pytest.mark.parametrize("broken", ["database", "disk"])
def test_a_failure_while_spooling_answers_451_so_the_sender_retries_and_nothing_is_lost(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch, broken: str
):
    assert smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"warm-up")).status == "stored"
    release_session()
    if broken == "database":
        _rename("inbound_mail", "inbound_mail_away")  # the database cannot spool mail now
        try:
            failed = smtp_send(smtp_server.port, SIMPLE)
        finally:
            _rename("inbound_mail_away", "inbound_mail")
    else:

        def disk_full(_data: bytes) -> str:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(files, "store_bytes", disk_full)
            failed = smtp_send(smtp_server.port, SIMPLE)

    assert (failed.code, failed.stage) == (451, "data")
    assert failed.spool is None
    assert len(spool_rows()) == 1  # only the warm-up: nothing half-spooled
    assert [m.message_id_header for m in stored_messages()] == ["<warm-up@example.com>"]
    retried = smtp_send(smtp_server.port, SIMPLE)  # what the sending MTA does next
    assert retried.code == 250
    assert retried.status == "stored", retried.outcome
    assert [m.message_id_header for m in stored_messages()] == ["<warm-up@example.com>", "<simple-1@example.com>"]


def test_a_database_failure_while_processing_keeps_the_mail_spooled_for_a_retry(app: Any, smtp_server: Any):
    release_session()
    _rename("messages", "messages_away")  # the database cannot store messages now, but can spool
    try:
        result = smtp_send(smtp_server.port, SIMPLE)
    finally:
        _rename("messages_away", "messages")

    assert result.code == 250  # the mail is safe in the spool
    assert result.status == "queued"
    assert result.spool.attempts == 1
    assert "messages" in result.outcome  # the database error, for the admin
    assert stored_messages() == []

    release_session()
    db.session.get_one(InboundMail, result.spool_id).next_attempt_at = result.spool.received_at  # due now
    db.session.commit()
    assert process_spool(app) == 1
    spool = load_spool(result.spool_id or 0)
    [message] = stored_messages()
    assert (spool.status, spool.outcome, spool.attempts) == ("stored", f"stored as message {message.id}", 2)
    assert message.message_id_header == "<simple-1@example.com>"


def test_a_database_failure_while_checking_a_recipient_answers_451(smtp_server: Any):
    release_session()
    _rename("channels", "channels_away")
    try:
        smtp_server.handler.receiver.mailboxes.forget()  # as if the cached list had just expired
        result = smtp_send(smtp_server.port, SIMPLE)
    finally:
        _rename("channels_away", "channels")

    assert (result.code, result.stage) == (451, "rcpt")


def _hold_write_lock(stop: threading.Event, locked: threading.Event) -> None:
    """Keep the spool's write lock (as a long migration or a stuck writer would)."""
    with db.engine.connect() as connection:  # type: ignore[union-attr]
        if db.dialect == "postgresql":
            transaction = connection.begin()
            connection.execute(text("LOCK TABLE inbound_mail IN ACCESS EXCLUSIVE MODE"))
        else:
            transaction = connection.begin()  # the engine begins SQLite transactions IMMEDIATE: the write lock
        locked.set()
        stop.wait(60)
        transaction.rollback()


def test_slow_spooling_never_blocks_the_smtp_event_loop_and_the_250_waits_for_the_commit(app: Any, smtp_server: Any):
    assert smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"warm-up")).status == "stored"
    release_session()
    stop, locked = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(stop, locked))
    holder.start()
    assert locked.wait(10)
    outcome: dict[str, Any] = {}

    def first_sender() -> None:
        # Only the SMTP side runs in this thread; the worker step runs below, once the lock is gone.
        outcome["first"] = smtp_send(smtp_server.port, SIMPLE, process=False)

    sender = threading.Thread(target=first_sender)
    sender.start()
    try:
        # While the first mail waits for the database, the server still talks to everyone else.
        with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as client:
            assert client.ehlo()[0] == 250
            assert client.mail("other@example.com")[0] == 250
            assert client.rcpt(MAILBOX)[0] == 250
            assert client.noop()[0] == 250
        assert "first" not in outcome  # …and the first mail is still waiting, unacknowledged
    finally:
        stop.set()
        holder.join()
        sender.join(60)
    assert outcome["first"].code == 250
    assert outcome["first"].status == "queued"
    assert process_spool(app) == 1
    assert load_spool(outcome["first"].spool_id).status == "stored"
    release_session()
    assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_the_server_can_be_stopped_and_started_again(app: Any, mailbox: Any):
    from connectors.email.server import start_smtp_server

    for _ in range(2):
        server = start_smtp_server(app, "127.0.0.1:0")
        assert smtp_send(server.port, SIMPLE).status == "stored"
        server.stop()
    assert len(stored_messages()) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:2525", ("127.0.0.1", 2525)),
        (":25", ("127.0.0.1", 25)),
        ("[::1]:2526", ("::1", 2526)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("2600", ("127.0.0.1", 2600)),
    ],
)
def test_smtp_listen_values(value: str, expected: tuple[str, int]):
    from connectors.email.server import parse_listen

    assert parse_listen(value) == expected


def test_rcpt_is_answered_from_a_fresh_mailbox_cache_and_checks_the_database_when_it_is_stale(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch
):
    receiver = smtp_server.handler.receiver
    checked: list[str] = []
    real_accepts = receiver.accepts

    def counting_accepts(address: str) -> bool:
        checked.append(address)
        return real_accepts(address)

    monkeypatch.setattr(receiver, "accepts", counting_accepts)
    monkeypatch.setattr(receiver.mailboxes, "recheck_unknown", 60.0)  # however slowly this test runs
    receiver.mailboxes.forget()  # stale: the first RCPT reads the mailboxes from the database
    assert smtp_send(smtp_server.port, SIMPLE, process=False).code == 250
    assert checked == [MAILBOX]
    # Fresh now: the next RCPTs are answered from the cache, accepted or refused, without a database session.
    assert smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"simple-2"), process=False).code == 250
    refused = smtp_send(smtp_server.port, SIMPLE, to=("sales@support.example.com",), process=False)
    assert (refused.code, refused.stage) == (550, "rcpt")
    assert checked == [MAILBOX]


def test_a_mailbox_created_a_moment_ago_gets_its_mail_and_unknown_addresses_are_rechecked_at_most_so_often(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch
):
    from app.services.channels import create_channel

    mailboxes = smtp_server.handler.receiver.mailboxes
    assert smtp_send(smtp_server.port, SIMPLE, process=False).code == 250  # the list is fresh now
    release_session()
    create_channel("email", "Sales", address="sales@support.example.com")
    to_sales = {"to": ("sales@support.example.com",), "process": False}

    # Within the recheck interval a refusal comes from the list (unknown addresses must not each cost a query)…
    monkeypatch.setattr(mailboxes, "recheck_unknown", 60.0)
    refused = smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"sales-1"), **to_sales)
    assert (refused.code, refused.stage) == (550, "rcpt")
    # …past it, the database is asked before a refusal that would bounce the mail: the new mailbox accepts it,
    # although the list as a whole is still fresh.
    monkeypatch.setattr(mailboxes, "recheck_unknown", 0.0)
    accepted = smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"sales-2"), **to_sales)
    assert accepted.code == 250
    assert load_spool(accepted.spool_id or 0).recipients == ["sales@support.example.com"]
    # An address that really is unknown is still refused.
    nobody = smtp_send(smtp_server.port, SIMPLE.replace(b"simple-1", b"nobody-1"), to=("nobody@support.example.com",))
    assert (nobody.code, nobody.stage) == (550, "rcpt")
