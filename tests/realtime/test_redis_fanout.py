"""With REDIS_URL set, an event raised in another process reaches an agent connected to a live web process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, ROOT, LiveServer, require_service
from tests.realtime.live_socket import AgentSocket

pytestmark = pytest.mark.redis

# Stands in for an SMTP server or a webhook process: its own app, the same database and Redis.
INGEST_SCRIPT = textwrap.dedent(
    """
    import sys
    from app import create_app
    from app.extensions import db
    from app.models import Channel
    from app.services.ingest import ingest
    from connectors.base import Identity, InboundMessage

    app = create_app()
    with app.app_context():
        channel = db.session.get_one(Channel, int(sys.argv[1]))
        sender = Identity("email", "ola@example.com")
        result = ingest(InboundMessage(channel="api", sender=sender, text=sys.argv[2]), channel)
        print(result.conversation.id)
    """
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[LiveServer]:
    require_service("Redis", 6379)
    # The embedded worker is off: only the separate `flask worker` process below can deliver the reply.
    server = LiveServer(tmp_path, REDIS_URL=REDIS_URL, EMBEDDED_WORKER="0").start()
    yield server
    server.stop()


def test_events_from_other_processes_reach_a_websocket_agent_through_redis(redis_server: LiveServer):
    admin = redis_server.session()
    created = admin.post(f"{redis_server.url}/api/v1/channels", json={"kind": "api", "name": "Shop"})
    assert created.status_code == 201, created.text
    channel_id = created.json()["id"]
    agent = AgentSocket(redis_server.url, admin).connect()
    env = {**redis_server.env}
    text = f"Where is my order? {uuid.uuid4().hex}"
    worker = None
    try:
        # 1. A message ingested in another process appears on the agent's screen.
        ingest_run = subprocess.run(
            [sys.executable, "-c", INGEST_SCRIPT, str(channel_id), text],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ingest_run.returncode == 0, ingest_run.stderr
        conversation_id = int(ingest_run.stdout.strip().splitlines()[-1])
        message = agent.wait_for("message.created", lambda data: data["message"]["text"] == text)
        assert message["message"]["conversation_id"] == conversation_id

        # 2. A reply queued over HTTP is delivered by a separate `flask worker`; its status update comes back.
        queued = admin.post(
            f"{redis_server.url}/api/v1/conversations/{conversation_id}/messages",
            json={"body": "It left our warehouse today.", "channel": "api"},
        )
        assert queued.status_code == 201, queued.text
        reply_id = queued.json()["id"]
        assert queued.json()["delivery_status"] == "queued"
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "worker"],
            cwd=ROOT,
            env={**env, "OUTBOX_POLL_SECONDS": "0.1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sent = agent.wait_for(
            "message.updated",
            lambda data: data["message"]["id"] == reply_id and data["message"]["delivery_status"] == "sent",
        )
        assert sent["message"]["conversation_id"] == conversation_id
    finally:
        agent.close()
        if worker is not None:
            worker.terminate()
            worker.wait(20)
