"""The product as shipped: gunicorn in embedded mode runs the SMTP listener and the outbox worker in-process.

A customer's mail arrives over SMTP and is spooled, the embedded worker (woken by the spooling) stores it, an
agent answers through the REST API, the embedded worker hands the reply to the relay (a local sink), and the
customer's answer to that mail lands in the same conversation.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.email.server import FreePortController
from tests.conftest import LiveServer, free_port
from tests.email.conftest import MAILBOX, RelaySink
from tests.email.test_threading_round_trip import answer_to, customer_mail


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy (the worker runs on its own schedule)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    recorder = RelaySink()
    controller = FreePortController(recorder, hostname="127.0.0.1", port=0)
    controller.start()
    recorder.port = controller.port
    yield recorder
    controller.stop()


def test_embedded_mode_mail_in_reply_out_answer_threads(tmp_path: Path, sink: RelaySink):
    smtp_port = free_port()
    server = LiveServer(
        tmp_path,
        EMBEDDED_SMTP="1",
        EMBEDDED_WORKER="1",
        SMTP_LISTEN=f"127.0.0.1:{smtp_port}",
        SMTP_RELAY_URL=sink.url,
        MAIL_DOMAIN="support.example.com",
    ).start()
    try:
        http = server.session()
        created = http.post(
            f"{server.url}/api/v1/channels", json={"kind": "email", "name": "Support", "address": MAILBOX}
        )
        assert created.status_code == 201, created.text

        def send(raw: bytes, to: str = MAILBOX) -> None:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
                assert client.sendmail("anna@example.com", [to], raw) == {}

        send(customer_mail(body="Where is my parcel?"))
        # The 250 means "spooled"; the embedded worker stores it right after.
        inbox = eventually(
            lambda: http.get(f"{server.url}/api/v1/conversations").json()["items"], "the embedded worker storing it"
        )
        [conversation] = inbox
        reply = http.post(
            f"{server.url}/api/v1/conversations/{conversation['id']}/messages",
            json={"body": "It ships tomorrow.", "channel": "email"},
        )
        assert reply.status_code == 201, reply.text

        received = eventually(lambda: sink.received, "the embedded worker sending the reply")[0]
        ours = received.message
        assert ours["Subject"] == f"Re: Where is my parcel? [#{conversation['number']}]"
        reply_to = ours["Reply-To"].addresses[0].addr_spec
        send(answer_to(received, "Great, thanks!"), to=reply_to)

        def thread() -> list[Any]:
            items = http.get(f"{server.url}/api/v1/conversations/{conversation['id']}/messages").json()["items"]
            return items if len(items) == 3 else []

        messages = eventually(thread, "the embedded worker storing the answer")
        assert [(m["direction"], m["text"]) for m in messages] == [
            ("in", "Where is my parcel?"),
            ("out", "It ships tomorrow."),
            ("in", "Great, thanks!"),
        ]
        assert messages[1]["delivery_status"] == "sent"
        assert len(http.get(f"{server.url}/api/v1/conversations").json()["items"]) == 1
    finally:
        server.stop()
