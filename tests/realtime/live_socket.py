"""A real Socket.IO client (python-socketio over a websocket) for tests against a live gunicorn server."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import requests
import socketio


class AgentSocket:
    """An agent console's websocket to /agent, authenticated by the logged-in requests session's cookie."""

    def __init__(self, url: str, http: requests.Session | None) -> None:
        self.url = url
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record, namespace="/agent")
        cookie = "; ".join(f"{name}={value}" for name, value in (http.cookies.items() if http else []))
        self.headers = {"Cookie": cookie} if cookie else {}

    def _record(self, name: str, data: Any = None) -> None:
        self.events.put((name, data))

    def connect(self) -> AgentSocket:
        self.client.connect(
            self.url, namespaces=["/agent"], transports=["websocket"], headers=self.headers, wait_timeout=10
        )
        return self

    def wait_for(self, name: str, match: Callable[[Any], bool] = lambda _data: True, timeout: float = 20) -> Any:
        """Return the first ``name`` event whose data satisfies ``match``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            seen.append(event)
            if event == name and match(data):
                return data
        raise AssertionError(f"no matching {name} event within {timeout}s; got {seen}")

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()
