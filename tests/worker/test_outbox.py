"""The durable outbox: queued and committed before sending, claimed once, retried with backoff, resumed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from app.events import MESSAGE_CREATED, MESSAGE_UPDATED
from app.extensions import db
from app.models import Channel, Conversation, Message, utcnow
from app.services.channels import create_channel
from app.services.ingest import ingest
from app.services.reply import reply
from app.worker import Worker
from app.worker.outbox import backoff, claim_batch, process_due
from connectors.base import PermanentSendError, RetryableSendError
from tests.conftest import ROOT
from tests.core.pipeline import BACKENDS, inbound, run_together


@pytest.fixture
def conversation_id(app) -> int:
    """A conversation that came in on an api channel (so replies go out through the api connector)."""
    channel, _token = create_channel("api", "Shop backend")
    result = ingest(inbound("buyer@example.com", channel="api", text="Where is order 17?"), channel)
    return result.conversation.id


def fresh(message_id: int) -> Message:
    """Read the message as committed, and end the read (on SQLite every transaction holds the write lock)."""
    db.session.expire_all()
    message = db.session.get_one(Message, message_id)
    db.session.commit()
    return message


def queue(conversation_id: int, body: str = "It ships today.") -> int:
    return reply(conversation_id, None, body, channel="api").id


def test_reply_is_committed_as_queued_before_anything_is_sent(app, conversation_id, connector, events):
    message_id = queue(conversation_id)

    # Another connection sees the committed outbox row; nothing has been sent yet.
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT delivery_status, next_attempt_at, attempts FROM messages WHERE id = :id"), {"id": message_id}
        ).one()
    assert row.delivery_status == "queued"
    assert row.next_attempt_at is not None
    assert row.attempts == 0
    assert connector.calls == []
    created = events.named(MESSAGE_CREATED)[-1].payload["message"]
    assert (created["id"], created["delivery_status"]) == (message_id, "queued")

    assert process_due(app) == 1

    message = fresh(message_id)
    assert connector.sent == [message_id]
    assert message.delivery_status == "sent"
    assert message.provider_id == f"rec-{message_id}-1"
    assert message.sent_at is not None
    assert message.next_attempt_at is None
    assert message.attempts == 1
    updated = [e.payload["message"] for e in events.named(MESSAGE_UPDATED)]
    assert [(m["id"], m["delivery_status"]) for m in updated] == [(message_id, "sent")]
    sent = connector.calls[0]
    assert sent.recipient.value == "buyer@example.com"
    assert sent.text == "It ships today."


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_workers_never_send_one_message_twice(app, backend, conversation_id, connector):
    ids = [queue(conversation_id, f"update {n}") for n in range(30)]
    connector.delay = 0.003

    def work(_index: int) -> int:
        handled = 0
        idle = 0
        while idle < 3:  # a few empty claims in a row: the others hold the rest, or nothing is left
            claimed = process_due(app, limit=3)
            handled += claimed
            idle = idle + 1 if claimed == 0 else 0
        return handled

    handled = run_together(app, 4, work)

    assert sorted(connector.sent) == sorted(ids), "every message sent exactly once"
    assert sum(handled) == len(ids)
    rows = db.session.execute(select(Message.delivery_status, Message.attempts).where(Message.id.in_(ids))).all()
    assert {(status, attempts) for status, attempts in rows} == {("sent", 1)}


def test_retryable_errors_back_off_exponentially_up_to_a_cap_then_fail(app, conversation_id, connector, events):
    app.config.update(OUTBOX_MAX_ATTEMPTS=5, OUTBOX_BACKOFF_BASE_SECONDS=0.02, OUTBOX_BACKOFF_MAX_SECONDS=0.05)
    connector.failures = lambda _message: RetryableSendError("421 4.7.0 try again later")
    message_id = queue(conversation_id)
    expected_delays = [0.02, 0.04, 0.05, 0.05]  # base·2^(n-1), capped at 0.05

    for attempt, delay in enumerate(expected_delays, start=1):
        _wait_until_due(message_id)
        before = utcnow()
        assert process_due(app) == 1
        after = utcnow()
        message = fresh(message_id)
        assert (message.delivery_status, message.attempts) == ("queued", attempt)
        assert message.error == "421 4.7.0 try again later"
        # Full jitter: the retry is due between half the delay and the whole delay after the failure.
        assert (
            before + dt.timedelta(seconds=delay / 2) <= message.next_attempt_at <= after + dt.timedelta(seconds=delay)
        )

    _wait_until_due(message_id)
    assert process_due(app) == 1
    message = fresh(message_id)
    assert (message.delivery_status, message.attempts) == ("failed", 5)
    assert message.next_attempt_at is None
    assert message.error == "421 4.7.0 try again later"
    assert process_due(app) == 0, "a failed message is never claimed again"
    assert len(connector.calls) == 5
    statuses = [e.payload["message"]["delivery_status"] for e in events.named(MESSAGE_UPDATED)]
    assert statuses == ["queued"] * 4 + ["failed"]


def _wait_until_due(message_id: int) -> None:
    message = fresh(message_id)
    while message.next_attempt_at is not None and message.next_attempt_at > utcnow():
        time.sleep(0.01)


def test_backoff_doubles_from_the_base_is_capped_and_jittered():
    for attempts in range(1, 30):
        ceiling = min(3600.0, 5.0 * 2 ** (attempts - 1))
        delays = {backoff(attempts, 5.0, 3600.0).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1, "jittered, so many workers retrying at once do not stampede"


def test_permanent_error_fails_at_once_with_the_reason(app, conversation_id, connector, events):
    connector.failures = lambda _message: PermanentSendError("550 5.1.1 no such user")
    message_id = queue(conversation_id)

    assert process_due(app) == 1

    message = fresh(message_id)
    assert (message.delivery_status, message.attempts) == ("failed", 1)
    assert message.error == "550 5.1.1 no such user"
    assert message.next_attempt_at is None
    update_ = events.named(MESSAGE_UPDATED)[-1].payload["message"]
    assert (update_["delivery_status"], update_["error"]) == ("failed", "550 5.1.1 no such user")
    assert process_due(app) == 0


def test_a_connector_crash_is_retried_like_a_transient_error(app, conversation_id, connector):
    connector.failures = lambda _message: RuntimeError("bug in the connector")
    message_id = queue(conversation_id)
    assert process_due(app) == 1
    message = fresh(message_id)
    assert message.delivery_status == "queued"
    assert message.error == "RuntimeError: bug in the connector"


def test_a_restarted_worker_resumes_queued_messages_and_expired_leases(app, conversation_id, connector):
    crashed = queue(conversation_id, "claimed, then the worker died")
    waiting = queue(conversation_id, "queued while the worker was down")
    assert claim_batch(limit=1) == [crashed]  # the old worker claimed one and died before sending it
    held = queue(conversation_id, "claimed by a live worker")
    assert claim_batch(limit=1) == [waiting]
    assert claim_batch(limit=1) == [held]
    # Time passes: the dead worker's lease runs out; the live worker's lease on `held` has not.
    db.session.execute(update(Message).where(Message.id.in_([crashed, waiting])).values(next_attempt_at=utcnow()))
    db.session.execute(update(Message).where(Message.id == waiting).values(delivery_status="queued"))
    db.session.commit()

    worker = Worker(app)  # a new process's worker
    try:
        worker.run_once()
    finally:
        worker.stop()

    assert sorted(connector.sent) == sorted([crashed, waiting])
    assert fresh(crashed).delivery_status == "sent"
    assert fresh(crashed).attempts == 2
    assert fresh(held).delivery_status == "sending"


def test_a_lease_that_expires_after_the_last_attempt_fails_the_message(app, conversation_id, connector):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    message_id = queue(conversation_id)
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(delivery_status="sending", attempts=2, next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    )
    db.session.commit()

    assert process_due(app) == 1

    message = fresh(message_id)
    assert message.delivery_status == "failed"
    assert "gave up after 2 attempts" in message.error
    assert connector.calls == []


def test_private_notes_are_never_sent(app, conversation_id, connector, events):
    note = reply(conversation_id, None, "Customer sounds upset; offer a refund", private=True)
    assert (note.kind, note.delivery_status, note.next_attempt_at) == ("note", "not_sent", None)
    assert events.named(MESSAGE_CREATED)[-1].private is True
    assert process_due(app) == 0

    # Even a note wrongly put in the outbox by a bug elsewhere is refused, not sent.
    db.session.execute(
        update(Message).where(Message.id == note.id).values(delivery_status="queued", next_attempt_at=utcnow())
    )
    db.session.commit()
    assert process_due(app) == 1
    assert fresh(note.id).delivery_status == "not_sent"
    assert connector.calls == []


def test_inbound_messages_are_never_sent_back(app, conversation_id, connector):
    inbound_id = db.session.scalar(select(Message.id).where(Message.direction == "in"))
    db.session.execute(
        update(Message).where(Message.id == inbound_id).values(delivery_status="queued", next_attempt_at=utcnow())
    )
    db.session.commit()
    process_due(app)
    assert connector.calls == []
    assert fresh(inbound_id).delivery_status == "not_sent"


def test_a_queued_reply_wakes_the_running_worker(app, conversation_id, connector):
    app.config["OUTBOX_POLL_SECONDS"] = 60.0  # so only the wake-up can explain a prompt send
    worker = Worker(app).start()
    try:
        time.sleep(0.2)  # let it finish its first pass and go to sleep
        message_id = queue(conversation_id)
        deadline = time.monotonic() + 20
        while fresh(message_id).delivery_status != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert fresh(message_id).delivery_status == "sent"


def test_the_worker_schedules_the_snooze_wake_up(app):
    worker = Worker(app)
    try:
        assert {"wake-snoozed", "evaluate-spikes", "retrain-suggestions", "refresh-reports"} <= set(worker.jobs)
        channel = db.session.scalar(select(Channel)) or create_channel("api", "x")[0]
        conversation = ingest(inbound("sleepy@example.com", channel=channel.kind, text="hi"), channel).conversation
        conversation.status = "snoozed"
        conversation.snoozed_until = utcnow() - dt.timedelta(seconds=1)
        db.session.commit()
        conversation_id = conversation.id
        worker.run_once()
    finally:
        worker.stop()
    db.session.expire_all()
    assert db.session.get_one(Conversation, conversation_id).status == "open"


def test_flask_worker_runs_the_outbox_in_its_own_process(app, conversation_id, tmp_path: Path):
    message_id = queue(conversation_id)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SWITCHBOARD_INSTANCE": str(tmp_path / "instance"),
        "OUTBOX_POLL_SECONDS": "0.1",
    }
    flask = Path(sys.executable).parent / "flask"
    process = subprocess.Popen(
        [str(flask), "--app", "wsgi", "worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while fresh(message_id).delivery_status != "sent" and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.1)
        message = fresh(message_id)
        assert message.delivery_status == "sent", process.stdout.read().decode() if process.poll() is not None else ""
        assert message.provider_id == f"api-{message_id}"  # the real api connector, in the other process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=20)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # SIGTERM lets the current batch finish and exits cleanly.
    assert process.returncode == 0, output
    assert "worker stopped" in output
