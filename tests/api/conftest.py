"""Fixtures for the REST API tests: captured domain events and quick ways to make conversations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient


@pytest.fixture
def events(app: Any) -> Iterator[list[Any]]:
    """Every domain event delivered (after commit) while the test runs."""
    from app.events import domain_event

    delivered: list[Any] = []

    def _receive(_sender: Any, event: Any) -> None:
        delivered.append(event)

    domain_event.connect(_receive)
    yield delivered
    domain_event.disconnect(_receive)


@pytest.fixture
def conversation(push: Any) -> dict[str, Any]:
    """One open conversation from anna@example.com (the api channel's JSON answer)."""
    response = push("email", "anna@example.com", "My parcel is late", name="Anna Nowak", subject="Parcel")
    assert response.status_code == 201, response.json
    return response.json


class RequestScopedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The ``app`` fixture keeps one app context open for the whole test, and Flask reuses it for each test
    request, so ``g`` (where Flask-Login caches the current user) and the database session would carry over
    from one request into the next: a second logged-in client would act as the first, and relationships
    loaded by an earlier request would look stale. Here each request gets a fresh ``g`` and ends by removing
    its session, like a request in the running server.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            response = super().open(*args, **kwargs)
            response.get_data()  # read the body while the request's context is still there
            return response


@pytest.fixture(autouse=True)
def _request_scoped_clients(app: Any) -> Iterator[None]:
    previous = app.test_client_class
    app.test_client_class = RequestScopedClient
    yield
    app.test_client_class = previous
