"""Fixtures for the chat widget and contact form tests: chat/form channels, visitor sessions, widget sockets."""

from __future__ import annotations

from typing import Any

import pytest

SHOP = "http://shop.example"
OTHER_SHOP = "http://evil.example"
SECRET = "shop-identity-secret"


@pytest.fixture
def chat_channel(app: Any) -> Any:
    """A chat channel that only http://shop.example may embed, with identity verification set up."""
    from app.services.channels import create_channel

    channel, _ = create_channel(
        "chat",
        "Shop chat",
        settings={
            "allowed_origins": [SHOP, "*"],  # the wildcard must be ignored
            "identity_secret": SECRET,
            "prechat_fields": [
                {"name": "name"},
                {"name": "email", "required": True},
                {"name": "order", "label": {"en": "Order number", "pl": "Numer zamówienia"}},
            ],
            "max_attachment_bytes": 1024,
        },
    )
    return channel


@pytest.fixture
def email_channel(app: Any) -> Any:
    from app.services.channels import create_channel

    channel, _ = create_channel("email", "Support", address="support@shop.example")
    return channel


class Widget:
    """One visitor's browser: a session over HTTP and a socket on /widget, as the iframe app does it."""

    def __init__(self, app: Any, channel_id: int, origin: str = SHOP) -> None:
        self.app = app
        self.channel_id = channel_id
        self.origin = origin
        self.http = app.test_client()
        self.token: str | None = None
        self.socket: Any = None

    def start(self, **body: Any) -> Any:
        payload = {"channel_id": self.channel_id, "host": self.origin, **body}
        if self.token and "token" not in body:
            payload["token"] = self.token
        response = self.http.post("/api/v1/widget/session", json=payload, headers={"Origin": "http://testserver.local"})
        if response.status_code == 200:
            self.token = response.json["token"]
        return response

    def connect(self, *, origin: str | None = None, host: str | None = None) -> Any:
        from app.extensions import socketio

        if self.socket is not None and self.socket.is_connected("/widget"):
            self.socket.disconnect("/widget")
        self.socket = socketio.test_client(
            self.app,
            namespace="/widget",
            auth={"channel_id": self.channel_id, "token": self.token, **({"host": host} if host else {})},
            headers={"Origin": origin or self.origin},
        )
        return self.socket

    def send(self, text: str, client_id: str = "client-0001", **extra: Any) -> Any:
        return self.socket.emit(
            "message", {"client_id": client_id, "text": text, **extra}, namespace="/widget", callback=True
        )

    def history(self) -> Any:
        return self.http.get("/api/v1/widget/messages", headers={"Authorization": f"Bearer {self.token}"})

    def received(self, name: str | None = None) -> list[Any]:
        events = self.socket.get_received("/widget")
        return [event for event in events if name is None or event["name"] == name]


@pytest.fixture
def widget(app: Any, chat_channel: Any) -> Any:
    """Make a visitor's browser on the shop's site: ``widget()``; pass origin= for another site."""

    made: list[Widget] = []

    def _make(origin: str = SHOP) -> Widget:
        made.append(Widget(app, chat_channel.id, origin))
        return made[-1]

    yield _make
    # Sockets live in the process-wide Socket.IO server: leave no visitor behind in the next test's rooms.
    for visitor in made:
        if visitor.socket is not None and visitor.socket.is_connected("/widget"):
            visitor.socket.disconnect("/widget")


class AgentSocket:
    """The agent console's socket on /agent.

    Handlers of the in-process test client run inside the test's own app context, where Flask-Login caches
    the current user in ``g``; it is dropped before each event so the agent's session cookie decides.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def emit(self, event: str, data: Any, callback: bool = True) -> Any:
        from flask import g

        g.pop("_login_user", None)
        return self.client.emit(event, data, namespace="/agent", callback=callback)

    def received(self, name: str | None = None) -> list[Any]:
        events = self.client.get_received("/agent")
        return [event for event in events if name is None or event["name"] == name]

    def disconnect(self) -> None:
        if self.client.is_connected("/agent"):
            self.client.disconnect("/agent")


def connect_agent(app: Any, agent_client: Any) -> AgentSocket:
    from flask import g

    from app.extensions import socketio

    g.pop("_login_user", None)
    client = socketio.test_client(app, namespace="/agent", flask_test_client=agent_client.client)
    assert client.is_connected("/agent")
    return AgentSocket(client)


@pytest.fixture
def agent_socket(app: Any, agent_client: Any) -> Any:
    """The logged-in agent's console socket on /agent."""
    socket = connect_agent(app, agent_client)
    yield socket
    socket.disconnect()


def agent_user(agent_client: Any) -> Any:
    from app.extensions import db
    from app.models import User

    return db.session.get(User, agent_client.user["id"])
