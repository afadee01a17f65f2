"""Helpers and fixtures shared by the pipeline, worker, real-time and operations tests.

Concurrency tests run on both backends in every pass: SQLite serialises writers (BEGIN IMMEDIATE) while
PostgreSQL really runs them side by side, so a race that SQLite hides shows up there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_test_config


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with the schema, whatever backend the run uses."""
    from app.extensions import make_engine
    from app.models import Base

    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'pipeline.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def pg_url(postgres_database: Any) -> str:
    """The run's PostgreSQL database with the schema (skipped, or failed on CI, when PostgreSQL is absent)."""
    from app.extensions import make_engine
    from app.models import Base

    engine = make_engine(postgres_database.url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return str(postgres_database.url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def app_config(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> dict[str, Any]:
    """The run's database, or the backend a test asks for with a ``backend`` parameter."""
    url = database_url
    if "backend" in request.fixturenames:
        backend = request.getfixturevalue("backend")
        run_backend = request.config.getoption("--db")
        if backend != run_backend:
            url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    return make_test_config(url, tmp_path)


def make_channel(kind: str = "email", address: str | None = None, **kwargs: Any) -> Any:
    """Create a channel through the service (email channels get a default address)."""
    from app.services.channels import create_channel

    defaults = {"email": "support@example.com", "sms": "+48222000000", "voice": "+48222000000"}
    channel, _ = create_channel(kind, f"{kind} channel", address=address or defaults.get(kind), **kwargs)
    return channel


def inbound(
    sender: str = "anna@example.com",
    *,
    kind: str = "email",
    channel: str = "email",
    text: str = "Hello",
    region: str = "PL",
    **fields: Any,
) -> Any:
    """Build an InboundMessage the way a connector would (the sender identity normalised)."""
    from connectors.base import Identity, InboundMessage, ThreadHints

    thread = fields.pop("thread", None) or ThreadHints(**fields.pop("hints", {}))
    return InboundMessage(
        channel=channel, sender=Identity.parse(kind, sender, region), text=text, thread=thread, **fields
    )


def run_together(app: Any, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same moment, each with its own session.

    Return the results in order; re-raise the first exception a thread hit.
    """
    from app.extensions import db

    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        with app.app_context():
            try:
                barrier.wait(10)
                results[index] = work(index)
            except BaseException as exc:  # reported to the test thread below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


class EventLog:
    """Collect every domain event delivered while it is attached (from any thread)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, _sender: object, event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def named(self, name: str) -> list[Any]:
        with self._lock:
            return [event for event in self.events if event.name == name]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


@pytest.fixture
def events() -> Iterator[EventLog]:
    """Record domain events delivered during the test."""
    from app.events import domain_event

    log = EventLog()
    domain_event.connect(log, weak=False)
    yield log
    domain_event.disconnect(log)
