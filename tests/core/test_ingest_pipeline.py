"""The ingest pipeline: one customer per identity under concurrency, idempotency, routing, events after commit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.events import CONVERSATION_CREATED, CONVERSATION_UPDATED, MESSAGE_CREATED, Event, publish
from app.extensions import db
from app.models import Channel, Conversation, Customer, CustomerIdentity, Message, utcnow
from app.services.ingest import ingest
from app.services.reply_tokens import make_reply_token
from tests.core.pipeline import BACKENDS, inbound, make_channel, run_together


def count(model: type, *where: object) -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- concurrency -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_first_messages_from_one_new_address_create_one_customer(app, backend):
    channel_id = make_channel("email").id
    addresses = [f"new{n}@example.com" for n in range(5)]
    threads = 4

    for address in addresses:

        def work(index: int, address: str = address) -> int:
            channel = db.session.get_one(Channel, channel_id)
            return ingest(
                inbound(address, text=f"hello {index}", provider_id=f"{address}-{index}"), channel
            ).customer.id

        customer_ids = run_together(app, threads, work)
        assert len(set(customer_ids)) == 1, f"{address} became {len(set(customer_ids))} customers"

    assert count(Customer) == len(addresses)
    assert count(CustomerIdentity) == len(addresses)
    # Every message of one sender landed in that sender's one conversation.
    assert count(Conversation) == len(addresses)
    assert count(Message) == len(addresses) * threads


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_deliveries_of_one_provider_id_store_one_message(app, backend, events):
    channel_id = make_channel("sms").id
    rounds, threads = 4, 4

    for n in range(rounds):

        def work(_index: int, n: int = n) -> tuple[int, bool]:
            channel = db.session.get_one(Channel, channel_id)
            message = inbound(f"+4860123456{n}", kind="phone", channel="sms", text="STOP?", provider_id=f"SM{n}")
            result = ingest(message, channel)
            return result.message.id, result.created

        results = run_together(app, threads, work)
        assert len({message_id for message_id, _ in results}) == 1
        assert sum(created for _, created in results) == 1, "exactly one delivery stores the message"

    assert count(Message) == rounds
    assert count(Customer) == rounds
    # Retried attempts were rolled back, so their events were dropped: one message.created per stored message.
    assert len(events.named(MESSAGE_CREATED)) == rounds


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_messages_from_a_known_customer_start_one_conversation(app, backend):
    channel_id = make_channel("email").id
    senders = [f"known{n}@example.com" for n in range(6)]
    old_ids = []
    for sender in senders:
        old = ingest(inbound(sender, text="first"), db.session.get_one(Channel, channel_id)).conversation
        _resolve(old, days_ago=30)  # long resolved: the next message starts a new conversation
        old_ids.append(old.id)

    for sender in senders:

        def work(index: int, sender: str = sender) -> int:
            channel = db.session.get_one(Channel, channel_id)
            return ingest(inbound(sender, text=f"again {index}"), channel).conversation.id

        conversation_ids = run_together(app, 4, work)
        assert len(set(conversation_ids)) == 1, f"{sender} got {len(set(conversation_ids))} new conversations"
        assert not set(conversation_ids) & set(old_ids)
    assert count(Conversation) == 2 * len(senders)


# --- routing ---------------------------------------------------------------------------------------------------


@pytest.fixture
def email_channel(app):
    return make_channel("email")


@pytest.fixture
def sms_channel(app):
    return make_channel("sms")


def _resolve(conversation: Conversation, days_ago: float) -> None:
    conversation.status = "resolved"
    conversation.resolved_at = utcnow() - dt.timedelta(days=days_ago)
    db.session.commit()


def _two_conversations(channel: Channel, sender: str = "anna@example.com") -> tuple[Conversation, Conversation]:
    """Two open conversations of ``sender``: an older one and one with newer activity."""
    first = ingest(inbound(sender, text="order 1"), channel).conversation
    first.last_activity_at = utcnow() - dt.timedelta(hours=5)
    second_conversation = Conversation(
        customer_id=first.customer_id,
        status="open",
        origin_channel="email",
        last_channel="email",
        last_activity_at=utcnow(),
    )
    db.session.add(second_conversation)
    db.session.flush()
    second_conversation.number = second_conversation.id
    db.session.commit()
    return first, second_conversation


def test_reply_token_routes_to_its_conversation_over_the_newest_open_one(email_channel):
    hinted, newest = _two_conversations(email_channel)
    # Without a hint the customer's most recently active conversation continues…
    assert ingest(inbound(text="plain"), email_channel).conversation.id == newest.id
    # …but the token names the older one.
    result = ingest(inbound(text="about order 1", hints={"reply_token": make_reply_token(hinted.id)}), email_channel)
    assert result.conversation.id == hinted.id


def test_in_reply_to_and_references_route_to_the_conversation_holding_that_message_id(email_channel):
    hinted, newest = _two_conversations(email_channel)
    ours = Message(
        conversation_id=hinted.id,
        customer_id=hinted.customer_id,
        channel="email",
        direction="out",
        text="We are on it",
        message_id_header="<reply-1@support.example.com>",
        delivery_status="sent",
    )
    db.session.add(ours)
    db.session.commit()

    by_in_reply_to = ingest(
        inbound(text="thanks", hints={"in_reply_to": "<reply-1@support.example.com>"}), email_channel
    )
    assert by_in_reply_to.conversation.id == hinted.id
    by_references = ingest(
        inbound(text="and", hints={"references": ["<unknown@x>", "<reply-1@support.example.com>"]}), email_channel
    )
    assert by_references.conversation.id == hinted.id
    assert newest.id not in (by_in_reply_to.conversation.id, by_references.conversation.id)


def test_conversation_number_routes_to_that_conversation(email_channel):
    hinted, _newest = _two_conversations(email_channel)
    result = ingest(inbound(text="see ticket", hints={"conversation_number": hinted.number}), email_channel)
    assert result.conversation.id == hinted.id


@pytest.mark.parametrize(
    "hint",
    ["reply_token", "in_reply_to", "conversation_number"],
)
def test_a_hint_into_another_customers_conversation_is_ignored(email_channel, hint):
    victim = ingest(inbound("victim@example.com", text="my address is secret"), email_channel)
    victim_message = victim.message
    victim_message.message_id_header = "<victim-1@example.com>"
    db.session.commit()
    hints = {
        "reply_token": {"reply_token": make_reply_token(victim.conversation.id)},
        "in_reply_to": {"in_reply_to": "<victim-1@example.com>"},
        "conversation_number": {"conversation_number": victim.conversation.number},
    }[hint]

    attacker = ingest(inbound("attacker@example.com", text="let me in", hints=hints), email_channel)

    assert attacker.conversation.id != victim.conversation.id
    assert attacker.conversation.customer_id == attacker.customer.id != victim.customer.id
    assert count(Message, Message.conversation_id == victim.conversation.id) == 1


def test_a_forged_reply_token_is_ignored(email_channel):
    own = ingest(inbound(text="first"), email_channel).conversation
    other = ingest(inbound("other@example.com", text="x"), email_channel).conversation
    forged = f"c{other.id}-aaaaaaaaaaaaaaaa"
    result = ingest(inbound(text="second", hints={"reply_token": forged}), email_channel)
    assert result.conversation.id == own.id


@pytest.mark.parametrize("status", ["open", "pending", "snoozed"])
def test_message_on_another_channel_joins_the_customers_active_conversation(email_channel, sms_channel, status):
    from app.services.customers import add_identity

    first = ingest(inbound("jan@example.com", text="Where is my order?"), email_channel)
    conversation = first.conversation
    conversation.status = status
    if status == "snoozed":
        conversation.snoozed_until = utcnow() + dt.timedelta(days=2)
    db.session.commit()
    add_identity(first.customer.id, "phone", "601 234 567", default_region="PL")

    second = ingest(inbound("+48601234567", kind="phone", channel="sms", text="Any news?"), sms_channel)

    assert second.customer.id == first.customer.id
    assert second.conversation.id == conversation.id
    assert second.conversation.last_channel == "sms"
    assert second.conversation.origin_channel == "email"
    # The customer wrote again: whatever it was waiting for, it needs an agent now.
    assert second.conversation.status == "open"
    assert second.conversation.snoozed_until is None


def test_snoozed_conversation_wakes_and_announces_the_change(email_channel, events):
    conversation = ingest(inbound(text="hi"), email_channel).conversation
    conversation.status = "snoozed"
    conversation.snoozed_until = utcnow() + dt.timedelta(days=1)
    db.session.commit()
    events.clear()

    result = ingest(inbound(text="still waiting"), email_channel)

    assert result.conversation.id == conversation.id
    assert result.conversation.status == "open"
    updated = events.named(CONVERSATION_UPDATED)
    assert [e.payload["conversation"]["status"] for e in updated] == ["open"]
    assert updated[0].payload["conversation"]["snoozed_until"] is None
    assert events.named(CONVERSATION_CREATED) == []


@pytest.mark.parametrize("with_hint", [False, True])
def test_recently_resolved_conversation_reopens(app, email_channel, with_hint):
    conversation = ingest(inbound(text="broken"), email_channel).conversation
    _resolve(conversation, days_ago=app.config["REOPEN_WINDOW_DAYS"] - 1)
    hints = {"reply_token": make_reply_token(conversation.id)} if with_hint else {}

    result = ingest(inbound(text="it broke again", hints=hints), email_channel)

    assert result.conversation.id == conversation.id
    assert result.conversation.status == "open"
    assert result.conversation.resolved_at is None


@pytest.mark.parametrize("with_hint", [False, True])
def test_old_resolved_conversation_is_left_alone_and_a_new_one_starts(app, email_channel, events, with_hint):
    old = ingest(inbound(text="broken", subject="Broken kettle"), email_channel).conversation
    _resolve(old, days_ago=app.config["REOPEN_WINDOW_DAYS"] + 1)
    events.clear()
    hints = {"reply_token": make_reply_token(old.id)} if with_hint else {}

    result = ingest(inbound(text="new question", subject="Re: Broken kettle", hints=hints), email_channel)

    assert result.conversation.id != old.id
    assert result.conversation.status == "open"
    assert result.conversation.customer_id == old.customer_id
    db.session.refresh(old)
    assert old.status == "resolved"
    assert [e.payload["conversation"]["id"] for e in events.named(CONVERSATION_CREATED)] == [result.conversation.id]


def test_replayed_history_uses_the_given_clock(app, email_channel):
    then = utcnow() - dt.timedelta(days=20)
    first = ingest(inbound(text="long ago"), email_channel, now=then)
    assert first.conversation.created_at == then
    assert first.message.created_at == then
    _resolve(first.conversation, days_ago=19)  # resolved the day after, so 19 days ago
    # Two days after that resolution the customer writes again: within the window at that time, so it reopens.
    again = ingest(inbound(text="again"), email_channel, now=then + dt.timedelta(days=3))
    assert again.conversation.id == first.conversation.id


# --- events after commit ---------------------------------------------------------------------------------------


def test_events_are_delivered_after_the_commit_made_the_rows_visible(app, email_channel):
    from app.events import domain_event

    seen: list[tuple[str, bool]] = []

    def check_visibility(_sender: object, event: Event) -> None:
        if event.name != MESSAGE_CREATED:
            return
        # A separate connection: it sees only what is committed.
        with db.engine.connect() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM messages WHERE id = :id"), {"id": event.payload["message"]["id"]}
            ).scalar()
        seen.append((event.name, found == 1))

    domain_event.connect(check_visibility, weak=False)
    try:
        ingest(inbound(text="visible?"), email_channel)
    finally:
        domain_event.disconnect(check_visibility)
    assert seen == [(MESSAGE_CREATED, True)]


@pytest.mark.parametrize("cleanup", ["rollback", "remove"])
def test_no_event_is_delivered_when_the_transaction_rolls_back(app, email_channel, events, cleanup):
    class Boom(Exception):
        pass

    def fail_commit(_session: Session) -> None:
        raise Boom("the database went away at commit")

    sa_event.listen(Session, "before_commit", fail_commit)
    try:
        with pytest.raises(Boom):
            ingest(inbound(text="lost"), email_channel)
    finally:
        sa_event.remove(Session, "before_commit", fail_commit)
    # What a request teardown or a worker does after a failure.
    db.session.rollback() if cleanup == "rollback" else db.session.remove()
    assert events.events == []
    assert count(Message) == 0

    # The next, successful transaction delivers its own events and none of the dropped ones.
    result = ingest(inbound(text="kept"), db.session.get_one(Channel, email_channel.id))
    assert [e.payload["message"]["id"] for e in events.named(MESSAGE_CREATED)] == [result.message.id]
    assert [e.payload["message"]["text"] for e in events.named(MESSAGE_CREATED)] == ["kept"]


def test_events_published_then_abandoned_by_close_are_dropped(app, events):
    publish(db.session, Event(MESSAGE_CREATED, {"message": {"id": -1}}))
    db.session.close()
    db.session.execute(text("SELECT 1"))
    db.session.commit()
    assert events.events == []
