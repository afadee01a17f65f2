"""A connector for the outbox tests: it records what it is asked to send and fails on demand.

It stands in for a provider (SMTP relay, Twilio) behind the real connector contract; the outbox, the database
and the worker under test are all real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from connectors import base


class RecordingConnector:
    """Send by recording; ``failures`` decides, per message id, whether a send raises instead."""

    kind: ClassVar[str] = "api"

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.calls: list[base.OutboundMessage] = []
        self.failures: Callable[[base.OutboundMessage], Exception | None] = lambda _message: None
        self.delay = 0.0
        self._lock = threading.Lock()

    def send(self, message: base.OutboundMessage) -> str:
        with self._lock:
            self.calls.append(message)
        if self.delay:
            time.sleep(self.delay)  # widen the window in which a second worker could grab the same row
        error = self.failures(message)
        if error is not None:
            raise error
        with self._lock:
            self.sent.append(message.message_id)
            return f"rec-{message.message_id}-{len(self.sent)}"


@pytest.fixture
def connector(app: Any) -> Iterator[RecordingConnector]:
    """Route api-channel sends to a RecordingConnector for this test, then restore the real connector."""
    recorder = RecordingConnector()
    previous = base._registry.get("api")
    base.register("api", lambda _settings: recorder)
    yield recorder
    if previous is not None:
        base.register("api", previous)
