"""Smoke test of the real deployment shape: gunicorn (gthread), HTTP login, a websocket, the embedded worker."""

from __future__ import annotations

import uuid

import pytest
import requests
import socketio

from tests.conftest import LiveServer
from tests.realtime.live_socket import AgentSocket


def test_live_server_serves_http_and_websockets_end_to_end(live_server: LiveServer):
    health = requests.get(f"{live_server.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.headers["Server"].startswith("gunicorn"), "served by gunicorn, never the Werkzeug dev server"
    assert requests.get(f"{live_server.url}/api/v1/ping", timeout=10).json() == {"ok": True}

    # Without a session the websocket is refused.
    with pytest.raises(socketio.exceptions.ConnectionError):
        AgentSocket(live_server.url, None).connect()

    admin = live_server.session()
    assert admin.get(f"{live_server.url}/api/v1/auth/me").json()["user"]["email"] == live_server.admin_email
    agent = AgentSocket(live_server.url, admin).connect()
    try:
        created = admin.post(f"{live_server.url}/api/v1/channels", json={"kind": "api", "name": "Shop"})
        assert created.status_code == 201, created.text
        channel_id, token = created.json()["id"], created.json()["token"]

        # An inbound message pushed over HTTP appears on the agent's screen.
        text = f"Parcel {uuid.uuid4().hex} never arrived"
        pushed = requests.post(
            f"{live_server.url}/api/v1/channels/{channel_id}/inbound",
            json={"identity": {"kind": "email", "value": "piotr@example.com"}, "text": text, "name": "Piotr"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert pushed.status_code == 201, pushed.text
        event = agent.wait_for("message.created", lambda data: data["message"]["text"] == text)
        conversation_id = event["message"]["conversation_id"]

        # A reply is queued, then sent by the worker embedded in the gunicorn process.
        queued = admin.post(
            f"{live_server.url}/api/v1/conversations/{conversation_id}/messages",
            json={"body": "A new one is on its way.", "channel": "api"},
        )
        assert queued.status_code == 201, queued.text
        reply_id = queued.json()["id"]
        agent.wait_for(
            "message.updated",
            lambda data: data["message"]["id"] == reply_id and data["message"]["delivery_status"] == "sent",
        )
    finally:
        agent.close()

    # An oversized body is refused with a JSON 413 by the real server too.
    too_big = requests.post(
        f"{live_server.url}/api/v1/channels/{channel_id}/inbound",
        data=b"{" + b" " * (11 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert too_big.status_code == 413
    assert "error" in too_big.json()
