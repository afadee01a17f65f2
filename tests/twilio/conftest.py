"""Fixtures for the Twilio channel tests: the REST stand-in, an app wired to it, signed webhook posts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio_helpers import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, signed
from twilio_standin import TwilioStandIn

from tests.conftest import make_test_config


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    """A local stand-in for Twilio's REST API on a free port."""
    server = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_config(database_url: str, tmp_path: Path, standin: TwilioStandIn) -> dict[str, Any]:
    """The app talks to the stand-in for Twilio's API and validates signatures against PUBLIC_URL."""
    return make_test_config(
        database_url,
        tmp_path,
        PUBLIC_URL=PUBLIC_URL,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=standin.base_url,
        DEFAULT_PHONE_REGION="PL",
    )


class EventLog(list):
    def __call__(self, _sender: object, event: Any) -> None:
        self.append(event)

    def named(self, name: str) -> list[Any]:
        return [event for event in self if event.name == name]


@pytest.fixture
def events(app: Any) -> Iterator[EventLog]:
    """Domain events delivered (after commit) during the test."""
    from app.events import domain_event

    log = EventLog()
    domain_event.connect(log, weak=False)
    yield log
    domain_event.disconnect(log)


@pytest.fixture
def twilio_post(app: Any) -> Callable[..., Any]:
    """POST form params to a webhook path with the signature Twilio would compute for PUBLIC_URL + path."""
    client = app.test_client()

    def _post(path: str, params: dict[str, str], *, query: str = "", signature: str | None = None) -> Any:
        url = PUBLIC_URL + path + (f"?{query}" if query else "")
        body, headers = signed(url, params)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
            if not signature:
                del headers["X-Twilio-Signature"]
        return client.post(path + (f"?{query}" if query else ""), data=body, headers=headers)

    return _post
