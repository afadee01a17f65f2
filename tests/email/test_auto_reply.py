"""An email channel's automatic reply to new conversations: when it goes out, what it says, and when it must not.

Mail goes in over real SMTP, the worker stores it, the outbox sends through a local relay sink.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Channel, Conversation, Message, utcnow
from tests.email.conftest import MAILBOX, RelaySink, deliver_outbox, release_session, smtp_send
from tests.email.test_threading_round_trip import answer_to, customer_mail, receive

ACK = "Thanks, {{ customer.first_name }}! Your case is #{{ conversation.number }}; we answer within a day."


def configure(**settings: Any) -> None:
    """Change the support mailbox's settings."""
    release_session()
    channel = db.session.scalars(select(Channel).where(Channel.address == MAILBOX)).one()
    channel.settings = {**channel.settings, **settings}
    db.session.commit()
    release_session()


def automatic_replies() -> list[Message]:
    release_session()
    return list(db.session.scalars(select(Message).where(Message.direction == "out", Message.automated.is_(True))))


def test_a_new_conversation_is_acknowledged_in_the_customers_thread(app: Any, smtp_server: Any, relay: RelaySink):
    configure(auto_reply={"text": ACK})
    first = receive(smtp_server, customer_mail(body="Where is my parcel?"))

    [ack] = automatic_replies()
    number = db.session.get_one(Conversation, first.conversation_id).number
    assert ack.conversation_id == first.conversation_id
    assert ack.text == f"Thanks, Anna! Your case is #{number}; we answer within a day."
    assert (ack.author_id, ack.delivery_status) == (None, "queued")
    assert deliver_outbox(app) == 1
    sent = relay.received[-1]
    assert sent.rcpt_tos == ["anna@example.com"]
    mail = sent.message
    assert mail["Auto-Submitted"] == "auto-replied"  # RFC 3834: other responders leave it alone
    assert mail["In-Reply-To"] == first.message_id_header
    assert mail["Subject"] == f"Re: Where is my parcel? [#{number}]"

    # The customer answers the acknowledgement: the same conversation, and no second acknowledgement.
    answer = receive(smtp_server, answer_to(sent, "Order 1234."))
    assert answer.conversation_id == first.conversation_id
    assert len(automatic_replies()) == 1


def test_turning_the_auto_reply_on_takes_effect_at_once(smtp_server: Any):
    receive(smtp_server, customer_mail("jan@example.com", name="Jan Kowalski"), mail_from="jan@example.com")
    assert automatic_replies() == []  # off; and the SMTP server and the worker have read the mailboxes now
    configure(auto_reply={"text": ACK})

    receive(smtp_server, customer_mail())

    assert [ack.text.split("!")[0] for ack in automatic_replies()] == ["Thanks, Anna"]


def test_no_auto_reply_to_automated_mail_or_to_a_customer_acknowledged_within_a_day(smtp_server: Any):
    configure(auto_reply={"text": ACK})
    raw = customer_mail("robot@example.com", body="I am out of office.", name="Robot").replace(
        b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1
    )
    robot = receive(smtp_server, raw, mail_from="robot@example.com")
    assert robot.automated is True
    assert automatic_replies() == []  # the loop guard: never answer an auto-responder

    first = receive(smtp_server, customer_mail())
    assert [ack.conversation_id for ack in automatic_replies()] == [first.conversation_id]
    # Anna's conversation ended long ago, so her next mail opens a new one; she heard from us today already.
    long_ago = utcnow() - dt.timedelta(days=60)
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == first.conversation_id)
        .values(status="resolved", resolved_at=long_ago)
    )
    db.session.commit()
    second = receive(smtp_server, customer_mail(subject="Another question"))
    assert second.conversation_id != first.conversation_id
    assert len(automatic_replies()) == 1


@pytest.mark.parametrize(("open_now", "acknowledged"), [(True, False), (False, True)])
def test_outside_hours_acknowledges_only_while_the_channel_is_closed(
    smtp_server: Any, open_now: bool, acknowledged: bool
):
    configure(auto_reply={"text": "We are closed; we answer tomorrow.", "when": "outside_hours"})
    every_day = {
        day: [["00:00", "24:00"]] if open_now else [] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    release_session()
    db.session.execute(
        update(Channel).where(Channel.address == MAILBOX).values(business_hours={"timezone": "UTC", "days": every_day})
    )
    db.session.commit()

    receive(smtp_server, customer_mail())

    assert [ack.text for ack in automatic_replies()] == (["We are closed; we answer tomorrow."] if acknowledged else [])


def test_no_auto_reply_when_the_mail_is_not_stored(smtp_server: Any, monkeypatch: pytest.MonkeyPatch):
    from sqlalchemy import text

    configure(auto_reply={"text": ACK})
    # Recording the outcome fails: the message is not stored, so nothing may have been said about it.
    with monkeypatch.context() as patch:
        patch.setattr("app.worker.inbound_mail._RECORD_OUTCOME", text("UPDATE no_such_table SET outcome = 1"))
        result = smtp_send(smtp_server.port, customer_mail())
    assert result.status == "processing"
    assert automatic_replies() == []


@pytest.mark.parametrize(
    ("kind", "auto_reply", "field"),
    [
        ("email", {"text": ""}, "settings.auto_reply.text"),
        ("email", {"text": "Hi", "when": "sometimes"}, "settings.auto_reply.when"),
        ("email", {"text": "Hi {{ agent.name }}"}, "settings.auto_reply.text"),
        ("email", {"text": "Hi", "cc": "boss@example.com"}, "settings.auto_reply"),
        ("email", "Thanks!", "settings.auto_reply"),
        ("sms", {"text": "Hi"}, "settings.auto_reply"),
    ],
)
def test_a_bad_auto_reply_setting_is_refused_and_changes_nothing(
    admin_client: Any, kind: str, auto_reply: Any, field: str
):
    address = "help@example.com" if kind == "email" else "+48600100200"
    new = {"kind": kind, "name": "Help", "address": address}
    created = admin_client.post("/api/v1/channels", json={**new, "settings": {"auto_reply": auto_reply}})
    assert created.status_code == 422
    assert field in created.json["error"]["fields"]
    assert admin_client.get("/api/v1/channels").json["items"] == []

    channel = admin_client.post("/api/v1/channels", json=new).json
    patched = admin_client.patch(f"/api/v1/channels/{channel['id']}", json={"settings": {"auto_reply": auto_reply}})
    assert patched.status_code == 422
    assert field in patched.json["error"]["fields"]
    assert "auto_reply" not in admin_client.get(f"/api/v1/channels/{channel['id']}").json["settings"]


def test_an_admin_turns_the_auto_reply_on_and_off(admin_client: Any):
    channel = admin_client.post(
        "/api/v1/channels", json={"kind": "email", "name": "Help", "address": "help@example.com"}
    )
    path = f"/api/v1/channels/{channel.json['id']}"
    on = admin_client.patch(path, json={"settings": {"auto_reply": {"text": ACK, "when": "outside_hours"}}})
    assert on.status_code == 200, on.json
    assert on.json["settings"]["auto_reply"] == {"text": ACK, "when": "outside_hours"}
    off = admin_client.patch(path, json={"settings": {"auto_reply": None}})
    assert off.status_code == 200
    assert off.json["settings"]["auto_reply"] is None
