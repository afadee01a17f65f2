"""Fixtures for the Twilio channel tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio_helpers import ACCOUNT_SID, AUTH_TOKEN
from twilio_standin import TwilioStandIn


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    """A local stand-in for Twilio's REST API on a free port."""
    server = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    try:
        yield server
    finally:
        server.stop()
