"""The inbound mail spool: the SMTP server's 250 means "spooled", the worker stores the mail afterwards.

Over real SMTP sessions to the real server: what a 250 commits to, the order the worker takes mail in, what a
crash while processing does (retry with backoff, then ``failed`` with the raw source kept, then an admin's
retry), leases that run out, ``flask mail-spool``, and the embedded worker waking up when mail is spooled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Attachment, Conversation, Customer, CustomerIdentity, InboundMail, Message, utcnow
from app.services import attachments as files
from tests.email.conftest import (
    MAILBOX,
    crlf,
    load_spool,
    process_spool,
    release_session,
    smtp_send,
    update_spool,
)
from tests.email.test_loopguard_and_bounces import dsn
from tests.email.test_threading_round_trip import customer_mail, open_conversation, receive


def count(model: Any) -> int:
    release_session()
    total = db.session.scalar(select(func.count()).select_from(model)) or 0
    release_session()
    return total


def messages() -> list[Message]:
    release_session()
    return list(db.session.scalars(select(Message).order_by(Message.id)))


def make_due(inbound_mail_id: int, **values: Any) -> None:
    """Let time pass for a spooled mail: its backoff (or lease) has run out; ``values`` change it further."""
    update_spool(inbound_mail_id, next_attempt_at=utcnow() - dt.timedelta(seconds=1), **values)


def test_the_250_names_the_spool_row_which_holds_the_raw_source_before_any_processing(smtp_server: Any):
    raw = customer_mail(body="Hello, where is my parcel?")
    before = utcnow()

    result = smtp_send(smtp_server.port, raw, to=("Support+Tag@support.example.com",), process=False)
    bounce = smtp_send(smtp_server.port, dsn("<unknown@example.org>"), mail_from="", process=False)

    assert (result.code, result.reply) == (250, f"2.0.0 Ok: queued as {result.spool_id}")
    assert bounce.spool_id == (result.spool_id or 0) + 1
    row = result.spool
    assert (row.status, row.attempts, row.outcome, row.message_id, row.processed_at) == ("queued", 0, None, None, None)
    assert (row.mail_from, row.recipients) == ("anna@example.com", ["Support+Tag@support.example.com"])
    assert before <= row.received_at <= utcnow()
    assert row.next_attempt_at <= utcnow()  # due at once
    sent = crlf(raw)  # what went over the wire
    assert (row.size, row.raw_sha256) == (len(sent), hashlib.sha256(sent).hexdigest())
    assert files.read_bytes(row.raw_sha256) == sent
    # The null sender of a delivery report is kept as such (aiosmtpd reports MAIL FROM:<> as "<>").
    assert bounce.spool.mail_from in ("", "<>")
    # Nothing was parsed or stored yet.
    assert count(Message) == count(Customer) == count(Conversation) == 0


def test_spooled_mail_is_processed_in_arrival_order_so_a_reply_follows_its_original(app: Any, smtp_server: Any):
    first = receive(smtp_server, customer_mail())
    number = db.session.get_one(Conversation, first.conversation_id).number
    newer = open_conversation(first.customer_id)  # mail without a thread hint goes to this one
    # The original names the first conversation; the reply only points at the original's Message-ID, so
    # it reaches that conversation only when the original is stored first (else it would go to `newer`).
    original = customer_mail(subject=f"Also this [#{number}]", body="And the invoice?")
    message_id = str(message_from_bytes(original, policy=policy.default)["Message-ID"])
    answer = customer_mail(subject="Re: Also this", body="Sorry, the invoice for March.", in_reply_to=message_id)

    spooled = [smtp_send(smtp_server.port, raw, process=False) for raw in (original, answer)]

    assert [r.status for r in spooled] == ["queued", "queued"]
    from app.worker.inbound_mail import process_spooled_mail

    release_session()
    assert process_spooled_mail(app, limit=1) == 1  # the oldest first…
    assert [load_spool(r.spool_id).status for r in spooled] == ["stored", "queued"]
    assert process_spool(app) == 1  # …then the next one
    rows = [load_spool(r.spool_id) for r in spooled]
    assert [row.status for row in rows] == ["stored", "stored"]
    release_session()
    stored_original, stored_answer = (db.session.get_one(Message, row.message_id) for row in rows)
    assert stored_original.id < stored_answer.id
    assert stored_original.conversation_id == first.conversation_id
    assert stored_answer.conversation_id == first.conversation_id != newer
    assert stored_answer.in_reply_to == message_id


def test_a_mail_waits_while_an_earlier_one_from_its_sender_is_held_back_but_other_senders_do_not(
    app: Any, smtp_server: Any
):
    waiting = smtp_send(smtp_server.port, customer_mail(body="first"), process=False).spool_id or 0
    reply = smtp_send(smtp_server.port, customer_mail(body="second"), process=False).spool_id or 0
    stranger = (
        smtp_send(
            smtp_server.port, customer_mail("ola@example.com", body="hi"), mail_from="ola@example.com", process=False
        ).spool_id
        or 0
    )
    # The first failed once and waits for its retry (or another worker holds its lease).
    update_spool(waiting, status="queued", attempts=1, next_attempt_at=utcnow() + dt.timedelta(minutes=5))

    assert process_spool(app) == 1  # only the stranger's mail
    assert [load_spool(i).status for i in (waiting, reply, stranger)] == ["queued", "queued", "stored"]

    make_due(waiting)  # the retry is due: both go, in arrival order
    assert process_spool(app) == 2
    first, second = (load_spool(i) for i in (waiting, reply))
    assert (first.status, second.status) == ("stored", "stored")
    assert (first.message_id or 0) < (second.message_id or 0)


def test_a_crash_while_processing_puts_the_mail_back_in_the_queue_with_the_error_and_a_later_attempt(
    app: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
):
    app.config["OUTBOX_BACKOFF_BASE_SECONDS"] = 60  # a visible backoff (the test config makes it tiny)
    app.config["OUTBOX_BACKOFF_MAX_SECONDS"] = 3600

    def parser_bug(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("parser bug")

    with monkeypatch.context() as patch:
        patch.setattr("connectors.email.server.parse_email", parser_bug)
        before = utcnow()
        result = smtp_send(smtp_server.port, customer_mail())
        assert process_spool(app) == 0  # not due again before its backoff ran out

    assert result.code == 250  # the sender was told it is safe, and it is
    assert (result.status, result.attempts, result.outcome) == ("queued", 1, "RuntimeError: parser bug")
    assert result.spool.next_attempt_at >= before + dt.timedelta(seconds=30)  # 60 s with jitter, at least half
    assert (result.message_id, result.spool.processed_at) == (None, None)
    assert count(Message) == count(Customer) == 0

    make_due(result.spool_id or 0)  # the backoff ran out, and the parser was fixed meanwhile
    assert process_spool(app) == 1

    row = load_spool(result.spool_id or 0)
    [message] = messages()
    assert (row.status, row.attempts, row.outcome) == ("stored", 2, f"stored as message {message.id}")
    assert (row.message_id, row.next_attempt_at) == (message.id, None)
    assert row.processed_at is not None


@pytest.mark.parametrize("retry", ["retry_spooled_mail", "flask mail-spool retry"])
def test_after_the_last_attempt_the_mail_is_failed_with_nothing_half_stored_until_an_admin_retries_it(
    app: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, retry: str
):
    from app.services.mail import retry_spooled_mail

    app.config["MAIL_SPOOL_MAX_ATTEMPTS"] = 3
    raw = customer_mail()
    cli = app.test_cli_runner()

    def crash_before_commit(*_args: Any, **_kwargs: Any) -> None:
        # Late in ingest: the customer, conversation and message are flushed but not committed.
        raise RuntimeError("the event bus is down")

    with monkeypatch.context() as patch:
        patch.setattr("app.services.ingest.message_changed", crash_before_commit)
        result = smtp_send(smtp_server.port, raw)
        inbound_mail_id = result.spool_id or 0
        assert (result.status, result.attempts) == ("queued", 1)
        make_due(inbound_mail_id)
        assert process_spool(app) == 1
        assert (load_spool(inbound_mail_id).status, load_spool(inbound_mail_id).attempts) == ("queued", 2)
        make_due(inbound_mail_id)
        assert process_spool(app) == 1

        failed = load_spool(inbound_mail_id)
        assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
        assert failed.outcome == "RuntimeError: the event bus is down"
        assert files.read_bytes(failed.raw_sha256) == crlf(raw)  # kept, for the retry
        # Nothing of the three attempts is half-stored.
        assert [count(model) for model in (Message, Conversation, Customer, CustomerIdentity, Attachment)] == [0] * 5
        make_due(inbound_mail_id, status="failed")
        assert process_spool(app) == 0  # a failed mail waits for an admin, however long

        listed = cli.invoke(args=["mail-spool", "list", "--status", "failed"])
        assert listed.exit_code == 0, listed.output
        [line] = listed.output.splitlines()
        assert line.split("\t")[0] == str(inbound_mail_id)
        assert line.split("\t")[2:] == ["failed", "3", "anna@example.com", "RuntimeError: the event bus is down"]
        assert cli.invoke(args=["mail-spool", "list", "--status", "stored"]).output == ""

    # The bug is fixed; the admin retries.
    release_session()
    if retry == "retry_spooled_mail":
        assert retry_spooled_mail([inbound_mail_id + 99]) == []  # other ids are left alone
        assert retry_spooled_mail([inbound_mail_id]) == [inbound_mail_id]
    else:
        retried = cli.invoke(args=["mail-spool", "retry"])  # every failed mail
        assert retried.exit_code == 0, retried.output
        assert retried.output == "queued 1 failed mail(s) again\n"
    requeued = load_spool(inbound_mail_id)
    assert (requeued.status, requeued.attempts) == ("queued", 0)
    assert requeued.next_attempt_at <= utcnow()
    assert retry_spooled_mail() == []  # nothing is failed any more

    assert process_spool(app) == 1

    row = load_spool(inbound_mail_id)
    [message] = messages()
    assert (row.status, row.attempts, row.outcome) == ("stored", 1, f"stored as message {message.id}")
    assert message.message_id_header == str(message_from_bytes(raw, policy=policy.default)["Message-ID"])
    assert (count(Conversation), count(Customer)) == (1, 1)


def test_the_message_and_its_spool_row_are_committed_together(
    app: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
):
    from sqlalchemy import text

    # Recording the outcome fails (the database went away between the two statements): the message must not
    # be stored either, or the spool row would say "processing" about a mail agents already see.
    with monkeypatch.context() as patch:
        patch.setattr("app.worker.inbound_mail._RECORD_OUTCOME", text("UPDATE no_such_table SET outcome = 1"))
        result = smtp_send(smtp_server.port, customer_mail())
    assert (result.status, result.attempts, result.message_id) == ("processing", 1, None)
    assert count(Message) == count(Customer) == 0

    make_due(result.spool_id or 0)  # its lease ran out
    assert process_spool(app) == 1
    row = load_spool(result.spool_id or 0)
    [message] = messages()
    # "stored", not "already stored": the first attempt left nothing behind.
    assert (row.status, row.attempts, row.outcome) == ("stored", 2, f"stored as message {message.id}")


def test_a_mail_whose_lease_ran_out_is_claimed_again_and_stored_once(app: Any, smtp_server: Any):
    from app.worker import Worker

    # A worker stored the message and died before recording it on the spool row.
    stored = smtp_send(smtp_server.port, customer_mail(body="first"))
    assert stored.status == "stored"
    died_late = stored.spool_id or 0
    make_due(died_late, status="processing", outcome=None, message_id=None, processed_at=None)
    # A worker claimed the next one and died before storing anything.
    died_early = smtp_send(smtp_server.port, customer_mail(body="second"), process=False).spool_id or 0
    make_due(died_early, status="processing", attempts=1)
    # A live worker holds its lease on a third.
    held = smtp_send(smtp_server.port, customer_mail(body="third"), process=False).spool_id or 0
    update_spool(held, status="processing", attempts=1, next_attempt_at=utcnow() + dt.timedelta(minutes=4))

    worker = Worker(app)  # a new process's worker
    try:
        assert worker.run_once() == 2
    finally:
        worker.stop()

    late, early, busy = (load_spool(i) for i in (died_late, died_early, held))
    [first, second] = messages()
    assert (late.status, late.attempts, late.outcome) == ("stored", 2, f"already stored as message {first.id}")
    assert late.message_id == first.id
    assert (early.status, early.attempts, early.outcome) == ("stored", 2, f"stored as message {second.id}")
    assert (first.text, second.text) == ("first", "second")
    assert (busy.status, busy.attempts) == ("processing", 1)  # not taken from under the live worker


def test_a_lease_that_runs_out_after_the_last_attempt_fails_the_mail(app: Any, smtp_server: Any):
    app.config["MAIL_SPOOL_MAX_ATTEMPTS"] = 2
    inbound_mail_id = smtp_send(smtp_server.port, customer_mail(), process=False).spool_id or 0
    make_due(inbound_mail_id, status="processing", attempts=2)  # the last allowed attempt never finished

    assert process_spool(app) == 1

    row = load_spool(inbound_mail_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.outcome == "gave up after 2 attempts (the last one never finished)"
    assert count(Message) == 0


def test_a_mailbox_disabled_after_the_mail_was_spooled_rejects_it_with_the_reason(app: Any, smtp_server: Any):
    from app.models import Channel

    result = smtp_send(smtp_server.port, customer_mail(), process=False)
    release_session()
    db.session.execute(update(Channel).where(Channel.address == MAILBOX).values(enabled=False))
    db.session.commit()

    assert process_spool(app) == 1

    row = load_spool(result.spool_id or 0)
    assert (row.status, row.message_id) == ("rejected", None)
    assert row.outcome == "no such mailbox here (it was disabled after the mail arrived)"
    assert count(Message) == count(Customer) == 0


def test_the_embedded_worker_wakes_up_when_mail_is_spooled(app: Any, smtp_server: Any):
    from app.worker import _JOBS, Worker, schedule

    app.config["OUTBOX_POLL_SECONDS"] = 60.0  # so only the wake-up can explain a prompt store
    first_round = threading.Event()
    worker = Worker(app)
    schedule("test-first-round", 3600, first_round.set)  # runs at the end of the worker's first round
    worker.start()
    try:
        assert first_round.wait(30), "the worker did not finish its first round"
        result = smtp_send(smtp_server.port, customer_mail(), process=False)
        assert result.code == 250
        deadline = time.monotonic() + 15  # far below the poll interval; no tighter timing is asserted
        while load_spool(result.spool_id or 0).status != "stored" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        _JOBS.pop("test-first-round", None)

    row = load_spool(result.spool_id or 0)
    [message] = messages()
    assert (row.status, row.outcome) == ("stored", f"stored as message {message.id}")


def test_old_processed_spool_rows_are_pruned_and_unfinished_or_failed_ones_are_kept(app: Any, smtp_server: Any):
    from app.worker.inbound_mail import prune_mail_spool

    old_stored = smtp_send(smtp_server.port, customer_mail(body="old")).spool_id or 0
    old_rejected = smtp_send(smtp_server.port, dsn("<unknown@example.org>"), mail_from="").spool_id or 0
    recent = smtp_send(smtp_server.port, customer_mail("ola@example.com"), mail_from="ola@example.com").spool_id or 0
    old_failed = smtp_send(smtp_server.port, customer_mail("jan@example.com"), process=False).spool_id or 0
    old_queued = smtp_send(smtp_server.port, customer_mail("eva@example.com"), process=False).spool_id or 0
    release_session()
    long_ago = utcnow() - dt.timedelta(days=31)
    db.session.execute(
        update(InboundMail)
        .where(InboundMail.id.in_([old_stored, old_rejected, old_failed, old_queued]))
        .values(received_at=long_ago)
    )
    db.session.execute(update(InboundMail).where(InboundMail.id == old_failed).values(status="failed"))
    db.session.commit()

    assert prune_mail_spool(30) == 2
    release_session()
    left = set(db.session.scalars(select(InboundMail.id)))
    assert left == {recent, old_failed, old_queued}
    assert count(Message) == 2  # the stored messages stay; only the spool forgets
