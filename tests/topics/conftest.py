"""Fixtures for topics, reports, spikes and suggestions: a taxonomy and conversations at chosen times."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _request_scoped(request_scoped_clients: None) -> None:
    """Every request in these tests runs in its own app context, as in production."""


@pytest.fixture
def taxonomy(app: Any) -> dict[str, int]:
    """Billing (Card declined, Charged twice) and Delivery (Late, Damaged): name → id."""
    from app.services.topics import create_topic

    ids: dict[str, int] = {}
    for parent, children in (("Billing", ("Card declined", "Charged twice")), ("Delivery", ("Late", "Damaged"))):
        top = create_topic(parent, colour="#dc2626", actor_id=None)
        ids[parent] = top.id
        for child in children:
            ids[child] = create_topic(child, parent_id=top.id, actor_id=None).id
    return ids


@pytest.fixture
def customer(app: Any) -> int:
    from app.extensions import db
    from app.models import Customer

    person = Customer(name="Anna Nowak")
    db.session.add(person)
    db.session.commit()
    return person.id


@pytest.fixture
def make_conversation(app: Any, customer: int) -> Any:
    """Insert a conversation created at ``created`` (aware), with optional durations, topics and text."""
    from app.extensions import db
    from app.models import Conversation, ConversationTopic, Message

    def _make(
        created: dt.datetime,
        *,
        first_response: float | None = None,
        resolution: float | None = None,
        topics: tuple[int, ...] = (),
        tagged_at: dt.datetime | None = None,
        channel_id: int | None = None,
        team_id: int | None = None,
        assignee_id: int | None = None,
        text: str | None = None,
        subject: str | None = None,
        origin: str = "email",
    ) -> int:
        conversation = Conversation(
            number=next(_numbers) + 1000,
            customer_id=customer,
            status="resolved" if resolution is not None else "open",
            channel_id=channel_id,
            team_id=team_id,
            assignee_id=assignee_id,
            subject=subject,
            origin_channel=origin,
            last_channel=origin,
            created_at=created,
            last_activity_at=created,
            first_response_at=created + dt.timedelta(seconds=first_response) if first_response is not None else None,
            resolved_at=created + dt.timedelta(seconds=resolution) if resolution is not None else None,
        )
        db.session.add(conversation)
        db.session.flush()
        if text is not None:
            db.session.add(
                Message(
                    conversation_id=conversation.id,
                    customer_id=customer,
                    channel=origin,
                    direction="in",
                    text=text,
                    created_at=created,
                )
            )
        for topic_id in topics:
            db.session.add(
                ConversationTopic(conversation_id=conversation.id, topic_id=topic_id, created_at=tagged_at or created)
            )
        db.session.commit()
        return conversation.id

    return _make
