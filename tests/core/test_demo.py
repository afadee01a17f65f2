"""`seed_demo`: a believable, consistent, deterministic contact centre that never queues anything to send."""

from __future__ import annotations

from sqlalchemy import distinct, func, select

from app.extensions import db
from app.models import (
    Call,
    Channel,
    Conversation,
    ConversationTopic,
    Customer,
    CustomerIdentity,
    Message,
    Team,
    Topic,
    User,
    utcnow,
)
from app.services.demo import seed_demo
from tests.conftest import empty_tables


def fingerprint() -> dict[str, object]:
    """What two runs with one seed must share (everything but ids' absolute times)."""
    return {
        "customers": sorted(db.session.scalars(select(Customer.name))),
        "identities": sorted(db.session.execute(select(CustomerIdentity.kind, CustomerIdentity.value)).tuples().all()),
        "statuses": sorted(db.session.scalars(select(Conversation.status))),
        "texts": sorted(db.session.scalars(select(Message.text))),
        "calls": sorted(db.session.execute(select(Call.status, Call.duration)).tuples().all(), key=repr),
    }


def test_seed_demo_builds_a_consistent_contact_centre(app):
    summary = seed_demo(customers=24, seed=7, password="demo password 1")
    assert summary.startswith("Demo contact centre ready: 24 customers")
    assert "supervisor" in summary

    # Staff in teams, a supervisor, every channel kind, a two-level topic tree.
    teams = {team.name: team for team in db.session.scalars(select(Team))}
    assert set(teams) == {"Support", "Sales"}
    assert all(team.members for team in teams.values())
    roles = db.session.scalars(select(User.role)).all()
    assert roles.count("supervisor") == 1
    assert roles.count("agent") >= 4
    assert set(db.session.scalars(select(Channel.kind))) == {"email", "sms", "voice", "chat", "form", "api"}
    children = db.session.scalars(select(Topic).where(Topic.parent_id.is_not(None))).all()
    assert {"Card declined", "Late"} <= {topic.name for topic in children}

    assert db.session.scalar(select(func.count(Customer.id))) == 24
    conversations = db.session.scalars(select(Conversation)).all()
    assert {c.status for c in conversations} == {"open", "pending", "snoozed", "resolved"}
    assert any(c.assignee_id for c in conversations)
    assert all(c.resolved_at for c in conversations if c.status == "resolved")
    assert all(c.snoozed_until and c.snoozed_until > utcnow() for c in conversations if c.status == "snoozed")
    tagged = set(db.session.scalars(select(ConversationTopic.conversation_id)))
    assert tagged == {c.id for c in conversations}

    # Every conversation started with the customer; replies, notes and calls with durations exist.
    for conversation in conversations:
        first = db.session.scalars(
            select(Message).where(Message.conversation_id == conversation.id).order_by(Message.created_at, Message.id)
        ).first()
        assert first is not None
        assert first.direction == "in"
    kinds = dict(db.session.execute(select(Message.kind, func.count()).group_by(Message.kind)).tuples().all())
    assert kinds.get("note", 0) > 0
    assert kinds.get("call", 0) > 0
    replies = select(func.count(Message.id)).where(Message.direction == "out", Message.kind == "message")
    assert db.session.scalar(replies)
    assert db.session.scalar(select(func.count(Call.id)).where(Call.duration > 0))

    # Several channels per customer: the one timeline is the point of the product.
    per_customer = db.session.execute(
        select(Message.customer_id, func.count(distinct(Message.channel)))
        .where(Message.direction == "in")
        .group_by(Message.customer_id)
    ).all()
    assert sum(1 for _, channels in per_customer if channels > 1) >= 3

    # Nothing waits in the outbox, and nothing happened in the future.
    assert not db.session.scalar(
        select(func.count(Message.id)).where(Message.delivery_status.in_(["queued", "sending"]))
    )
    assert db.session.scalar(select(func.max(Message.created_at))) <= utcnow()

    # Reserved addresses only: nobody real can be reached from the demo.
    for kind, value in db.session.execute(select(CustomerIdentity.kind, CustomerIdentity.value)).tuples().all():
        if kind == "email":
            assert value.rsplit("@", 1)[1].endswith(("example.com", "example.org", "example.net"))
        if kind == "phone":
            assert value.startswith("+120255501")


def test_seed_demo_is_deterministic_and_refuses_a_helpdesk_with_customers(app):
    seed_demo(customers=10, seed=11, password="demo password 1")
    first = fingerprint()

    again = seed_demo(customers=10, seed=11, password="demo password 1")
    assert "nothing was changed" in again
    assert fingerprint() == first

    db.session.remove()
    empty_tables(db.engine)
    seed_demo(customers=10, seed=11, password="demo password 1")
    assert fingerprint() == first
