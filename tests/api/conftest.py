"""Fixtures for the REST API tests: quick ways to make conversations; requests run in their own app context."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def conversation(push: Any) -> dict[str, Any]:
    """One open conversation from anna@example.com (the api channel's JSON answer)."""
    response = push("email", "anna@example.com", "My parcel is late", name="Anna Nowak", subject="Parcel")
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture(autouse=True)
def _request_scoped(request_scoped_clients: None) -> None:
    """Every request in these tests runs in its own app context, as in production."""
