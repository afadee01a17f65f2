"""Threading and the round trip: customer mail in → agent reply out through the relay → the customer's
answer to that mail lands in the same conversation. Also bounces of our mail, and relay failures."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Conversation, Message
from tests.email.conftest import MAILBOX, Received, RelaySink, deliver_outbox, release_session, smtp_send
from tests.email.test_loopguard_and_bounces import dsn


def customer_mail(
    sender: str = "anna@example.com",
    subject: str = "Where is my parcel?",
    body: str = "Hello, where is my parcel?",
    *,
    to: str = MAILBOX,
    in_reply_to: str | None = None,
    references: str | None = None,
    name: str = "Anna Nowak",
) -> bytes:
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = f"{name} <{sender}>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="example.com")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    mail.set_content(body)
    return mail.as_bytes()


def receive(server: Any, raw: bytes, *, mail_from: str = "anna@example.com", to: str = MAILBOX) -> Message:
    """Send ``raw`` over SMTP, let the worker process it, and return the message it became."""
    result = smtp_send(server.port, raw, mail_from=mail_from, to=(to,))
    assert result.code == 250, result
    assert result.status == "stored", result
    assert result.outcome == f"stored as message {result.message_id}", result
    release_session()
    return db.session.get_one(Message, result.message_id)


def open_conversation(customer_id: int) -> int:
    """Give the customer another open conversation, more recently active than the others."""
    import datetime as dt

    from app.models import utcnow

    later = utcnow() + dt.timedelta(seconds=5)
    conversation = Conversation(
        customer_id=customer_id,
        status="open",
        origin_channel="chat",
        last_channel="chat",
        subject="Chat",
        created_at=later,
        last_activity_at=later,
        last_message_at=later,
    )
    db.session.add(conversation)
    db.session.flush()
    conversation.number = conversation.id
    db.session.commit()
    release_session()
    return conversation.id


def agent_reply(app: Any, relay: RelaySink, conversation_id: int, body: str, **kwargs: Any) -> tuple[Message, Received]:
    from app.services.reply import reply

    message = reply(conversation_id, None, body, channel="email", **kwargs)
    assert deliver_outbox(app) == 1
    sent = db.session.get_one(Message, message.id)
    assert sent.delivery_status == "sent", sent.error
    return sent, relay.received[-1]


def answer_to(received: Received, body: str, *, sender: str = "anna@example.com", keep_headers: bool = True) -> bytes:
    """What a mail client sends when the customer presses Reply on our mail."""
    ours = received.message
    return customer_mail(
        sender,
        subject=f"Re: {ours['Subject']}",
        body=body,
        to=str(ours["Reply-To"].addresses[0].addr_spec) if keep_headers else MAILBOX,
        in_reply_to=str(ours["Message-ID"]) if keep_headers else None,
        references=f"{ours['References']} {ours['Message-ID']}" if keep_headers else None,
    )


def test_round_trip_customer_mail_agent_reply_customer_answer_in_one_conversation(
    app: Any, smtp_server: Any, relay: RelaySink
):
    first = receive(smtp_server, customer_mail())
    sent, received = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")

    ours = received.message
    assert received.mail_from == MAILBOX
    assert received.rcpt_tos == ["anna@example.com"]
    assert ours["Message-ID"] == sent.message_id_header
    assert ours["Message-ID"].endswith("@support.example.com>")
    assert ours["In-Reply-To"] == first.message_id_header
    assert first.message_id_header in ours["References"]
    assert ours["To"].addresses[0].display_name == "Anna Nowak"
    assert ours["From"].addresses[0].display_name == "Acme Support"
    reply_to = ours["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith("support+c")
    assert reply_to.endswith("@support.example.com")
    conversation = db.session.get_one(Conversation, first.conversation_id)
    assert ours["Subject"] == f"Re: Where is my parcel? [#{conversation.number}]"
    assert ours.get_body(("plain",)).get_content().strip() == "It ships tomorrow."  # type: ignore[union-attr]
    assert "It ships tomorrow." in ours.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert ours["Auto-Submitted"] is None

    answer = receive(smtp_server, answer_to(received, "Great, thanks!"), to=reply_to)

    assert answer.conversation_id == first.conversation_id
    assert answer.in_reply_to == sent.message_id_header


def test_the_reply_token_alone_threads_a_reply_whose_client_dropped_the_headers(
    app: Any, smtp_server: Any, relay: RelaySink
):
    first = receive(smtp_server, customer_mail())
    _, received = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")
    # The customer also has a newer open conversation (say, from a chat): untagged mail goes there.
    newer = open_conversation(first.customer_id)
    untagged = receive(smtp_server, customer_mail(subject="Gift cards", body="Do you sell gift cards?"))
    assert untagged.conversation_id == newer

    reply_to = received.message["Reply-To"].addresses[0].addr_spec
    raw = customer_mail(subject="no subject tag", body="One more thing", to=reply_to)
    answer = receive(smtp_server, raw, to=reply_to)

    assert answer.conversation_id == first.conversation_id


def test_in_reply_to_or_references_to_a_stored_inbound_message_thread(smtp_server: Any):
    first = receive(smtp_server, customer_mail())
    open_conversation(first.customer_id)  # without a hint, mail would go to this newer one

    by_in_reply_to = receive(
        smtp_server, customer_mail(subject="Re: parcel", in_reply_to=first.message_id_header, body="Any news?")
    )
    by_references = receive(
        smtp_server,
        customer_mail(subject="Re: parcel", references=f"<unknown@x.example> {first.message_id_header}", body="?"),
    )

    assert by_in_reply_to.conversation_id == first.conversation_id
    assert by_references.conversation_id == first.conversation_id


def test_the_conversation_number_in_the_subject_threads(smtp_server: Any):
    first = receive(smtp_server, customer_mail())
    number = db.session.get_one(Conversation, first.conversation_id).number
    newer = open_conversation(first.customer_id)

    untagged = receive(smtp_server, customer_mail(subject="Re: Parcel", body="About that"))
    tagged = receive(smtp_server, customer_mail(subject=f"Re: Parcel [#{number}]", body="About that"))

    assert untagged.conversation_id == newer
    assert tagged.conversation_id == first.conversation_id


def test_a_stranger_cannot_hijack_a_thread_with_its_token_message_id_or_number(
    app: Any, smtp_server: Any, relay: RelaySink
):
    first = receive(smtp_server, customer_mail())
    _, received = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")
    number = db.session.get_one(Conversation, first.conversation_id).number

    forged = answer_to(received, f"I am taking over [#{number}]", sender="mallory@example.net")
    reply_to = received.message["Reply-To"].addresses[0].addr_spec
    intruder = receive(smtp_server, forged, mail_from="mallory@example.net", to=reply_to)

    assert intruder.conversation_id != first.conversation_id
    assert db.session.get_one(Conversation, intruder.conversation_id).customer_id != first.customer_id


def test_an_automatic_message_says_auto_submitted(app: Any, smtp_server: Any, relay: RelaySink):
    first = receive(smtp_server, customer_mail())
    _, received = agent_reply(app, relay, first.conversation_id, "We got your mail.", automated=True)

    assert received.message["Auto-Submitted"] == "auto-replied"


def test_an_out_of_office_answer_is_stored_flagged_in_the_thread(app: Any, smtp_server: Any, relay: RelaySink):
    first = receive(smtp_server, customer_mail())
    _, received = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")
    raw = answer_to(received, "I am away until Monday.").replace(
        b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1
    )

    ooo = receive(smtp_server, raw)

    assert ooo.automated is True
    assert ooo.conversation_id == first.conversation_id
    assert ooo.meta["email"]["automated_reason"] == "Auto-Submitted: auto-replied"


def test_a_bounce_marks_the_sent_reply_failed_with_the_reason_and_opens_no_conversation(
    app: Any, smtp_server: Any, relay: RelaySink
):
    first = receive(smtp_server, customer_mail())
    sent, _ = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")
    conversations = db.session.scalars(select(Conversation.id)).all()

    result = smtp_send(smtp_server.port, dsn(sent.message_id_header or ""), mail_from="")

    assert result.code == 250
    assert (result.status, result.outcome) == ("stored", f"delivery report recorded for message {sent.id}")
    assert result.message_id == sent.id
    release_session()
    bounced = db.session.get_one(Message, sent.id)
    assert bounced.delivery_status == "failed"
    assert bounced.error == (
        "Bounced: gone@example.com: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
    )
    assert bounced.meta["bounce"]["status"] == "5.1.1"
    assert db.session.scalars(select(Conversation.id)).all() == conversations
    assert db.session.scalar(select(Message).where(Message.id > sent.id)) is None  # nothing else stored


def test_a_bounce_for_mail_we_never_sent_is_rejected_and_stores_nothing(app: Any, smtp_server: Any, relay: RelaySink):
    first = receive(smtp_server, customer_mail())
    sent, _ = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")

    result = smtp_send(smtp_server.port, dsn("<someone-else@example.org>"), mail_from="")

    assert result.code == 250  # spooled; what became of it is on the spool row
    assert (result.status, result.outcome) == ("rejected", "delivery report does not match any message sent from here")
    assert result.message_id is None
    release_session()
    assert db.session.scalars(select(Message.id).order_by(Message.id)).all() == [first.id, sent.id]
    assert db.session.get_one(Message, sent.id).delivery_status == "sent"  # our real mail is untouched


def test_a_relay_4xx_keeps_the_reply_queued_and_a_5xx_fails_it_with_the_relays_reason(
    app: Any, smtp_server: Any, relay: RelaySink
):
    from app.services.reply import reply

    first = receive(smtp_server, customer_mail())
    message = reply(first.conversation_id, None, "It ships tomorrow.", channel="email")
    relay.replies.append("451 4.7.1 Greylisted")
    deliver_outbox(app)
    queued = db.session.get_one(Message, message.id)
    assert queued.delivery_status == "queued"
    assert "451 4.7.1 Greylisted" in (queued.error or "")

    queued.next_attempt_at = first.created_at  # due now
    db.session.commit()
    relay.replies.append("550 5.1.1 No such user here")
    deliver_outbox(app)
    failed = db.session.get_one(Message, message.id)
    assert failed.delivery_status == "failed"
    assert "550 5.1.1 No such user here" in (failed.error or "")
    assert relay.received == []
