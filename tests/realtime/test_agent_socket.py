"""The /agent namespace: login required, rooms, events only after commit, typing and viewing relayed."""

from __future__ import annotations

from typing import Any

import pytest
from flask import g
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.events import MESSAGE_CREATED, TYPING, VIEWING, Event, domain_event
from app.extensions import db, socketio
from app.models import Team
from app.realtime.emitter import agent_rooms, customer_payload, emit_event
from app.services.ingest import ingest
from app.services.reply import reply
from tests.conftest import PASSWORD, ApiClient
from tests.core.pipeline import inbound, make_channel


class Agent:
    """A console's Socket.IO connection, acting as its own logged-in user."""

    def __init__(self, app: Any, flask_client: Any) -> None:
        self.sio = _isolated(socketio.test_client, app, namespace="/agent", flask_test_client=flask_client)

    def is_connected(self) -> bool:
        return bool(self.sio.is_connected("/agent"))

    def emit(self, name: str, data: Any) -> Any:
        return _isolated(self.sio.emit, name, data, namespace="/agent", callback=True)

    def get_received(self) -> list[dict[str, Any]]:
        return list(self.sio.get_received("/agent"))


def _isolated(func: Any, *args: Any, **kwargs: Any) -> Any:
    # Handlers run inside the app context the test holds; forget the user the last request cached in its `g`.
    g.pop("_login_user", None)
    return func(*args, **kwargs)


def connect_agent(app: Any, user: Any) -> Agent:
    """Log ``user`` in over HTTP and open /agent with that session cookie, as the console does."""
    client = ApiClient(app.test_client())
    assert client.login(user.email, PASSWORD).status_code == 200
    return Agent(app, client.client)


def received(agent: Agent, name: str | None = None) -> list[dict[str, Any]]:
    return [item for item in agent.get_received() if name is None or item["name"] == name]


def test_anonymous_connection_is_refused(app):
    assert not Agent(app, app.test_client()).is_connected()


def test_a_logged_out_session_is_refused(app, make_user):
    user = make_user("agent")
    client = ApiClient(app.test_client())
    client.login(user.email, PASSWORD)
    assert client.post("/api/v1/auth/logout").status_code == 200
    assert not Agent(app, client.client).is_connected()


def test_a_deactivated_agent_is_refused(app, make_user):
    user = make_user("agent")
    client = ApiClient(app.test_client())
    client.login(user.email, PASSWORD)
    user.active = False
    db.session.commit()
    assert not Agent(app, client.client).is_connected()


def test_logged_in_agent_receives_inbound_messages_after_commit(app, make_user):
    sio = connect_agent(app, make_user("agent"))
    assert sio.is_connected()
    sio.get_received()

    ingest(inbound("anna@example.com", text="My parcel is late"), make_channel("email"))

    got = received(sio)
    assert [item["name"] for item in got] == ["message.created", "conversation.created"]
    assert got[0]["args"][0]["message"]["text"] == "My parcel is late"
    assert got[1]["args"][0]["conversation"]["status"] == "open"


def test_nothing_reaches_agents_from_a_transaction_that_rolls_back(app, make_user):
    sio = connect_agent(app, make_user("agent"))
    channel = make_channel("email")
    sio.get_received()

    def fail_commit(_session: Session) -> None:
        raise RuntimeError("commit failed")

    sa_event.listen(Session, "before_commit", fail_commit)
    try:
        with pytest.raises(RuntimeError):
            ingest(inbound(text="never stored"), channel)
    finally:
        sa_event.remove(Session, "before_commit", fail_commit)
    db.session.rollback()
    assert received(sio) == []


def test_rooms_per_user_team_and_role(app, make_user):
    support = Team(name="Support")
    sales = Team(name="Sales")
    db.session.add_all([support, sales])
    db.session.commit()
    support_agent = make_user("agent", team_ids=[support.id])
    sales_agent = make_user("agent", team_ids=[sales.id])
    supervisor = make_user("supervisor")
    sockets = {
        name: connect_agent(app, user)
        for name, user in [("support", support_agent), ("sales", sales_agent), ("supervisor", supervisor)]
    }
    for sio in sockets.values():
        sio.get_received()

    emit_event(Event("test.team", {"n": 1}, team_id=support.id, all_agents=False))
    emit_event(Event("test.user", {"n": 2}, user_ids=(sales_agent.id,), all_agents=False))
    emit_event(Event("test.role", {"n": 3}, min_role="supervisor"))
    emit_event(Event("test.everyone", {"n": 4}))

    got = {name: sorted(item["name"] for item in received(sio)) for name, sio in sockets.items()}
    assert got == {
        "support": ["test.everyone", "test.team"],
        "sales": ["test.everyone", "test.user"],
        "supervisor": ["test.everyone", "test.role"],
    }


def test_viewing_and_typing_are_relayed_to_other_viewers_only(app, make_user):
    conversation = ingest(inbound(text="hello"), make_channel("email")).conversation
    alice, bob, carol = (connect_agent(app, make_user("agent", name=n)) for n in ("Alice", "Bob", "Carol"))
    for sio in (alice, bob, carol):
        sio.get_received()

    assert bob.emit("view", {"conversation_id": conversation.id}) == {"ok": True}
    assert alice.emit("view", {"conversation_id": conversation.id}) == {"ok": True}
    viewing = received(bob, VIEWING)
    assert [(v["args"][0]["name"], v["args"][0]["viewing"]) for v in viewing] == [("Alice", True)]

    alice.emit("typing", {"conversation_id": conversation.id, "typing": True})
    typing = received(bob, TYPING)
    assert [(t["args"][0]["author_name"], t["args"][0]["typing"]) for t in typing] == [("Alice", True)]
    assert received(alice, TYPING) == [], "the typist does not get an echo"
    assert received(carol) == [], "an agent not viewing the conversation is not disturbed"

    assert alice.emit("view", {"conversation_id": 999_999})["ok"] is False
    assert alice.emit("leave", {"conversation_id": conversation.id}) == {"ok": True}
    assert [v["args"][0]["viewing"] for v in received(bob, VIEWING)] == [False]


def test_a_conversation_room_gets_its_events(app, make_user):
    conversation = ingest(inbound(text="hello"), make_channel("email")).conversation
    viewer = connect_agent(app, make_user("agent"))
    viewer.emit("view", {"conversation_id": conversation.id})
    viewer.get_received()
    emit_event(Event("test.narrow", {"x": 1}, conversation_id=conversation.id, all_agents=False))
    assert [item["name"] for item in received(viewer)] == ["test.narrow"]


# --- what customers may see ------------------------------------------------------------------------------------


def _events_of(action: Any) -> list[Event]:
    captured: list[Event] = []

    def capture(_sender: object, event: Event) -> None:
        captured.append(event)

    domain_event.connect(capture, weak=False)
    try:
        action()
    finally:
        domain_event.disconnect(capture)
    return captured


def test_private_notes_never_produce_a_customer_payload(app):
    conversation = ingest(
        inbound("chat-visitor-1", kind="chat", channel="chat", text="hi"), make_channel("chat")
    ).conversation
    note_events = _events_of(lambda: reply(conversation.id, None, "VIP, refund without asking", private=True))
    assert note_events, "a note still updates the agents' screens"
    assert all(customer_payload(event) is None for event in note_events)
    # Even if a note event were published without the private flag, its payload says it is a note.
    note = next(e for e in note_events if e.name == MESSAGE_CREATED)
    assert customer_payload(Event(note.name, note.payload, conversation_id=conversation.id)) is None
    assert customer_payload(Event(TYPING, {"typing": True}, conversation_id=conversation.id, private=True)) is None


def test_a_public_reply_reaches_the_customer_reduced_to_safe_fields(app):
    conversation = ingest(
        inbound("chat-visitor-2", kind="chat", channel="chat", text="hi"), make_channel("chat")
    ).conversation
    reply_events = _events_of(lambda: reply(conversation.id, None, "We are on it", channel="chat"))
    created = next(e for e in reply_events if e.name == MESSAGE_CREATED)
    payload = customer_payload(created)
    assert payload is not None
    assert payload["message"]["text"] == "We are on it"
    assert set(payload["message"]) == {
        "id",
        "direction",
        "text",
        "created_at",
        "delivery_status",
        "attachments",
        "author_name",
        "client_id",
    }
    # Conversation bookkeeping (assignee, team, topics) is for staff only.
    assert all(customer_payload(e) is None for e in reply_events if e.name != MESSAGE_CREATED)


def test_agent_rooms_follow_the_audience():
    assert agent_rooms(Event("x", {})) == ["agents"]
    assert agent_rooms(Event("x", {}, min_role="supervisor")) == ["role:supervisor"]
    assert agent_rooms(Event("x", {}, conversation_id=3, team_id=2, user_ids=(5,), all_agents=False)) == [
        "user:5",
        "team:2",
        "conversation:3",
    ]


def test_a_dropped_connection_stops_viewing(app, make_user):
    conversation = ingest(inbound(text="hello"), make_channel("email")).conversation
    alice, bob = (connect_agent(app, make_user("agent", name=n)) for n in ("Alice", "Bob"))
    bob.emit("view", {"conversation_id": conversation.id})
    alice.emit("view", {"conversation_id": conversation.id})
    bob.get_received()
    _isolated(alice.sio.disconnect, namespace="/agent")
    assert [(v["args"][0]["name"], v["args"][0]["viewing"]) for v in received(bob, VIEWING)] == [("Alice", False)]


def test_a_handshake_from_another_site_is_refused(app, make_user):
    user = make_user("agent")
    client = ApiClient(app.test_client())
    assert client.login(user.email, PASSWORD).status_code == 200
    foreign = _isolated(
        socketio.test_client,
        app,
        namespace="/agent",
        flask_test_client=client.client,
        headers={"Origin": "https://evil.example"},
    )
    assert not foreign.is_connected("/agent")
    own = _isolated(
        socketio.test_client,
        app,
        namespace="/agent",
        flask_test_client=client.client,
        headers={"Origin": "http://testserver.local"},
    )
    assert own.is_connected("/agent")
