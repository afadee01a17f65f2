"""The /widget namespace: origin and token checks, acks after commit, idempotent retries, live both ways."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.widget.conftest import OTHER_SHOP, SHOP, agent_user, connect_agent


def _conversation_id(visitor: Any) -> int:
    ack = visitor.send("Hello, is my order on its way?", client_id="first-message-1")
    assert ack["ok"] is True, ack
    return int(ack["conversation_id"])


def test_message_is_acknowledged_after_commit_and_retry_is_idempotent(widget: Any, session: Any) -> None:
    from app.models import Message

    visitor = widget()
    assert visitor.start().status_code == 200
    assert visitor.connect().is_connected("/widget")
    first = visitor.send("Hello, is my order on its way?", client_id="retry-abc-123")
    assert first["ok"] is True, first
    assert first["duplicate"] is False
    stored = session.get(Message, first["message"]["id"])
    assert stored is not None
    assert stored.channel == "chat"
    assert stored.html is None
    # The connection dropped before the ack arrived; the widget sends the same client id again.
    visitor.socket.disconnect("/widget")
    visitor.connect()
    again = visitor.send("Hello, is my order on its way?", client_id="retry-abc-123")
    assert again["ok"] is True
    assert again["duplicate"] is True
    assert again["message"]["id"] == first["message"]["id"]
    session.remove()
    assert session.scalar(select(func.count(Message.id))) == 1


def test_same_client_id_from_another_visitor_is_a_different_message(widget: Any) -> None:
    anna, bob = widget(), widget()
    for visitor in (anna, bob):
        visitor.start()
        visitor.connect()
    first = anna.send("Anna's private question", client_id="guessable-id-1")
    second = bob.send("Bob's question", client_id="guessable-id-1")
    assert second["duplicate"] is False
    assert second["message"]["id"] != first["message"]["id"]
    assert second["message"]["text"] == "Bob's question"


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (OTHER_SHOP, None),  # a page on another site connecting directly
        ("http://testserver.local", OTHER_SHOP),  # our iframe, framed by a site not on the list
        ("http://testserver.local", None),  # our iframe without naming its page
        ("http://shop.example.evil.example", None),  # prefix tricks do not match
    ],
)
def test_connection_from_an_origin_not_on_the_allow_list_is_refused(widget: Any, origin: str, host: str | None) -> None:
    visitor = widget()
    visitor.start()
    assert not visitor.connect(origin=origin, host=host).is_connected("/widget")


def test_iframe_on_allowed_page_may_connect(widget: Any) -> None:
    visitor = widget()
    visitor.start()
    assert visitor.connect(origin="http://testserver.local", host=SHOP).is_connected("/widget")


def test_connection_without_a_genuine_token_is_refused(widget: Any) -> None:
    visitor = widget()
    visitor.start()
    visitor.token = visitor.token[:-3] + "abc"
    assert not visitor.connect().is_connected("/widget")
    visitor.token = None
    assert not visitor.connect().is_connected("/widget")


def test_token_of_another_channel_is_refused(app: Any, widget: Any) -> None:
    from app.services.channels import create_channel
    from tests.widget.conftest import Widget

    other, _ = create_channel("chat", "Other shop", settings={"allowed_origins": [SHOP]})
    visitor = widget()
    visitor.start()
    stranger = Widget(app, other.id)
    stranger.token = visitor.token
    assert not stranger.connect().is_connected("/widget")


def test_invalid_messages_are_refused_with_a_reason(widget: Any) -> None:
    visitor = widget()
    visitor.start()
    visitor.connect()
    assert visitor.send("   ")["error"]["code"] == "invalid"
    assert visitor.send("hi", client_id="bad id!")["error"]["field"] == "client_id"
    too_long = visitor.send("x" * 5001)
    assert too_long["ok"] is False
    assert "5000" in too_long["error"]["message"]


def test_agent_reply_reaches_the_visitor_live_and_notes_never_do(widget: Any, agent_client: Any) -> None:
    from app.services.reply import reply

    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    visitor.received()
    agent = agent_user(agent_client)
    reply(conversation_id, agent, "Only for colleagues: check the warehouse", private=True)
    answer = reply(conversation_id, agent, "It left the warehouse today.")
    assert answer.channel == "chat"
    texts = [event["args"][0]["message"]["text"] for event in visitor.received("message.created")]
    assert texts == ["It left the warehouse today."]


def test_second_visitor_receives_nothing_of_the_first(widget: Any, agent_client: Any) -> None:
    from app.services.reply import reply

    anna, bob = widget(), widget()
    for visitor in (anna, bob):
        visitor.start()
        visitor.connect()
    conversation_id = _conversation_id(anna)
    reply(conversation_id, agent_user(agent_client), "Your parcel number is 123")
    assert [e["name"] for e in anna.received() if e["name"] == "message.created"]
    assert bob.received() == []


def test_typing_goes_both_ways_but_never_back_to_visitors(widget: Any, agent_client: Any, agent_socket: Any) -> None:
    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    assert agent_socket.emit("view", {"conversation_id": conversation_id})["ok"]
    agent_socket.received()
    visitor.received()

    assert visitor.socket.emit("typing", {"typing": True}, namespace="/widget", callback=True)["ok"]
    agent_events = agent_socket.received("typing")
    assert agent_events
    assert agent_events[0]["args"][0]["visitor"] is True
    assert visitor.received("typing") == []

    agent_socket.emit("typing", {"conversation_id": conversation_id, "typing": True})
    shown = visitor.received("typing")
    assert shown
    assert shown[0]["args"][0]["typing"] is True
    assert shown[0]["args"][0]["author_name"] == agent_client.user["name"]


def test_agent_private_note_typing_never_reaches_the_visitor(widget: Any, agent_socket: Any) -> None:
    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    visitor.received()
    agent_socket.emit("typing", {"conversation_id": conversation_id, "typing": True, "private": True})
    assert visitor.received("typing") == []


def test_read_state_both_ways(widget: Any, agent_client: Any, agent_socket: Any, session: Any) -> None:
    from app.models import Message
    from app.services.reply import reply

    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    visitor.received()
    # The agent opens the conversation: the visitor's message shows as seen.
    agent_socket.emit("view", {"conversation_id": conversation_id})
    read = visitor.received("messages.read")
    assert read
    assert read[0]["args"][0]["up_to"] > 0
    # The visitor reads the reply: the agent's message records when.
    answer = reply(conversation_id, agent_user(agent_client), "Here you are")
    ack = visitor.socket.emit("read", {"message_id": answer.id}, namespace="/widget", callback=True)
    assert ack == {"ok": True, "marked": 1}
    session.remove()
    assert session.get(Message, answer.id).meta["read_at"]
    history = visitor.history().json["items"]
    assert all(item["read_at"] for item in history)


def test_message_while_agent_is_viewing_is_read_at_once(widget: Any, agent_socket: Any) -> None:
    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    agent_socket.emit("view", {"conversation_id": conversation_id})
    visitor.received()
    visitor.send("One more thing", client_id="second-message")
    read = visitor.received("messages.read")
    assert read, "the agent was looking at the conversation when the message arrived"


def test_status_reports_online_agents_and_business_hours(
    app: Any, widget: Any, chat_channel: Any, agent_client: Any, session: Any
) -> None:
    visitor = widget()
    visitor.start()
    visitor.connect()
    status = visitor.socket.emit("status", {}, namespace="/widget", callback=True)
    assert status["ok"]
    assert status["open"] is True
    assert status["online"] is False

    agent = connect_agent(app, agent_client)
    try:
        status = visitor.socket.emit("status", {}, namespace="/widget", callback=True)
        assert status["online"] is True
        assert status["agents_online"] == 1

        chat_channel = session.merge(chat_channel)
        chat_channel.business_hours = {"timezone": "UTC", "days": {}}  # closed every day
        session.commit()
        status = visitor.socket.emit("status", {}, namespace="/widget", callback=True)
        assert status["open"] is False
        assert status["online"] is False
    finally:
        agent.disconnect()


def test_reply_goes_by_email_once_the_visitor_has_left(
    widget: Any, agent_client: Any, email_channel: Any, session: Any
) -> None:
    from app.services.reply import reply

    visitor = widget()
    visitor.start(name="Anna", email="anna@example.com")
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    agent = agent_user(agent_client)
    assert reply(conversation_id, agent, "Still there?").channel == "chat"
    visitor.socket.disconnect("/widget")
    answer = reply(conversation_id, agent, "We have found your parcel.")
    assert answer.channel == "email"
    assert answer.delivery_status == "queued"
    session.remove()
    from app.models import CustomerIdentity

    recipient = session.get(CustomerIdentity, answer.identity_id)
    assert recipient.value == "anna@example.com"
    assert recipient.verified is False
    # An explicit choice still wins: the agent may leave it in the chat for when the visitor is back.
    assert reply(conversation_id, agent, "Also here", channel="chat").channel == "chat"


def test_reply_stays_in_chat_when_the_visitor_left_no_email(widget: Any, agent_client: Any, email_channel: Any) -> None:
    from app.services.reply import reply

    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    visitor.socket.disconnect("/widget")
    assert reply(conversation_id, agent_user(agent_client), "Hello?").channel == "chat"


def test_chat_connector_delivers_by_recording(widget: Any, agent_client: Any, app: Any, session: Any) -> None:
    from app.models import Message
    from app.services.reply import reply
    from app.worker.outbox import process_due

    visitor = widget()
    visitor.start()
    visitor.connect()
    conversation_id = _conversation_id(visitor)
    answer = reply(conversation_id, agent_user(agent_client), "Sent!")
    visitor.received()
    assert process_due(app) >= 1
    session.remove()
    assert session.get(Message, answer.id).delivery_status == "sent"
    updates = visitor.received("message.updated")
    assert updates
    assert updates[-1]["args"][0]["message"]["delivery_status"] == "sent"


@pytest.fixture
def limited_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(
        RATELIMIT_ENABLED=True,
        WIDGET_MESSAGE_RATE_LIMIT="3/minute",
        WIDGET_IP_MESSAGE_RATE_LIMIT="5/minute",
        WIDGET_CONNECT_RATE_LIMIT="1000/minute",
    )
    return app_config


def test_messages_are_rate_limited_per_visitor_and_per_address(limited_config: Any, widget: Any) -> None:
    anna, bob = widget(), widget()
    for visitor in (anna, bob):
        visitor.start()
        visitor.connect()
    results = [anna.send(f"message {n}", client_id=f"anna-msg-{n:04d}") for n in range(4)]
    assert [r["ok"] for r in results] == [True, True, True, False]
    assert results[-1]["error"]["code"] == "rate_limited"
    # Bob has his own allowance, but he shares the address, whose limit (5) is reached after 2 more.
    results = [bob.send(f"message {n}", client_id=f"bob-msg-{n:04d}") for n in range(3)]
    assert [r["ok"] for r in results] == [True, True, False]


@pytest.mark.redis
def test_presence_is_shared_between_processes_through_redis(app: Any) -> None:
    from app.realtime.widget import Presence
    from tests.conftest import REDIS_URL, require_service

    require_service("Redis", 6379)
    app.config["REDIS_URL"] = REDIS_URL
    web_a, web_b = Presence(), Presence()  # as in two gunicorn processes
    for presence in (web_a, web_b):
        presence.configure(app)
    conversation_id = 10_000_000 + int.from_bytes(os.urandom(3), "big")
    assert not web_b.visitor_online(conversation_id)
    web_a.visitor_joined(conversation_id, "sid-on-a")
    assert web_b.visitor_online(conversation_id)
    web_a.visitor_left(conversation_id, "sid-on-a")
    assert not web_b.visitor_online(conversation_id)


@pytest.mark.redis
def test_rate_limits_are_shared_through_redis() -> None:
    from app.realtime.widget import RateLimits
    from tests.conftest import REDIS_URL, require_service

    require_service("Redis", 6379)
    config = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_ENABLED": True, "WIDGET_MESSAGE_RATE_LIMIT": "2/minute"}
    web_a, web_b = RateLimits(config), RateLimits(config)  # as in two gunicorn processes
    visitor = uuid.uuid4().hex
    assert web_a.hit("WIDGET_MESSAGE_RATE_LIMIT", "visitor", visitor)
    assert web_b.hit("WIDGET_MESSAGE_RATE_LIMIT", "visitor", visitor)
    assert not web_a.hit("WIDGET_MESSAGE_RATE_LIMIT", "visitor", visitor)
