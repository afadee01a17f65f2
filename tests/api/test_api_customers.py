"""Customers API: search, profile, identities, the cross-channel timeline and merging duplicates."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest


def _add_call(session: Any, conversation_id: int, customer_id: int, sid: str, status: str = "completed") -> int:
    from app.models import Call, Message

    message = Message(
        conversation_id=conversation_id,
        customer_id=customer_id,
        channel="voice",
        direction="in",
        kind="call",
        text="Phone call",
        delivery_status="received",
    )
    session.add(message)
    session.flush()
    session.add(Call(message_id=message.id, provider_sid=sid, direction="in", status=status, duration=42))
    session.commit()
    return message.id


def test_customer_search_matches_name_and_identities_and_skips_merged(push, agent_client):
    anna = push("email", "anna@example.com", "hi", name="Anna Nowak").json["customer"]["id"]
    piotr = push("phone", "+48601234567", "hi", name="Piotr").json["customer"]["id"]
    duplicate = push("email", "anna.nowak@work.example", "hi", name="Anna N.").json["customer"]["id"]

    def search(q: str) -> list[int]:
        response = agent_client.get("/api/v1/customers", query_string={"q": q})
        assert response.status_code == 200
        return [item["id"] for item in response.json["items"]]

    assert set(search("anna")) == {anna, duplicate}
    assert search("601-234-567") == [piotr]
    assert search("work.example") == [duplicate]
    agent_client.post(f"/api/v1/customers/{anna}/merge", json={"source_id": duplicate})
    assert search("anna") == [anna]
    assert search("work.example") == [anna]  # the identity moved with the merge
    listed = agent_client.get("/api/v1/customers").json
    assert [item["id"] for item in listed["items"]] == [piotr, anna]
    assert listed["items"][0]["identities"][0]["value"] == "+48601234567"


def test_customer_list_is_keyset_paginated(push, agent_client):
    ids = [push("email", f"p{n}@example.com", "hi").json["customer"]["id"] for n in range(5)]
    first = agent_client.get("/api/v1/customers?limit=2")
    second = agent_client.get(f"/api/v1/customers?limit=2&cursor={first.json['next_cursor']}")
    third = agent_client.get(f"/api/v1/customers?limit=2&cursor={second.json['next_cursor']}")
    got = [item["id"] for page in (first, second, third) for item in page.json["items"]]
    assert got == sorted(ids, reverse=True)
    assert third.json["next_cursor"] is None


def test_customer_profile_has_identities_counts_and_topics(conversation, agent_client, session):
    from app.models import ConversationTopic, Topic

    topic = Topic(name="Refund")
    session.add(topic)
    session.flush()
    session.add(ConversationTopic(conversation_id=conversation["conversation"]["id"], topic_id=topic.id))
    session.commit()

    response = agent_client.get(f"/api/v1/customers/{conversation['customer']['id']}")

    assert response.status_code == 200
    body = response.json
    assert body["name"] == "Anna Nowak"
    assert body["identities"][0]["value"] == "anna@example.com"
    assert body["merged_from"] is None
    assert body["merged_ids"] == []
    assert body["conversation_count"] == 1
    assert body["topics"] == [{"id": topic.id, "name": "Refund", "colour": topic.colour, "count": 1}]


def test_unknown_customer_is_404(agent_client):
    for response in (
        agent_client.get("/api/v1/customers/999"),
        agent_client.get("/api/v1/customers/999/timeline"),
        agent_client.get("/api/v1/customers/999/conversations"),
        agent_client.patch("/api/v1/customers/999", json={"name": "x"}),
        agent_client.post("/api/v1/customers/999/identities", json={"kind": "email", "value": "a@b.example"}),
        agent_client.post("/api/v1/customers/999/merge", json={"source_id": 1}),
    ):
        assert response.status_code == 404, response.json
        assert response.json["error"]["code"] == "not_found"


def test_rename_customer_publishes_customer_updated(conversation, agent_client, events):
    from app.events import CUSTOMER_UPDATED

    response = agent_client.patch(f"/api/v1/customers/{conversation['customer']['id']}", json={"name": "Anna K."})

    assert response.status_code == 200
    assert response.json["name"] == "Anna K."
    assert [e.payload["customer"]["name"] for e in events if e.name == CUSTOMER_UPDATED] == ["Anna K."]
    assert agent_client.patch(f"/api/v1/customers/{conversation['customer']['id']}", json={}).status_code == 422


def test_add_identity_normalises_and_refuses_one_that_belongs_to_someone_else(push, agent_client):
    anna = push("email", "anna@example.com", "hi").json["customer"]["id"]
    push("phone", "+48601234567", "hi")
    url = f"/api/v1/customers/{anna}/identities"

    added = agent_client.post(url, json={"kind": "email", "value": "Anna@Home.Example"})
    taken = agent_client.post(url, json={"kind": "phone", "value": "601 234 567"})
    invalid = agent_client.post(url, json={"kind": "phone", "value": "12"})
    bad_kind = agent_client.post(url, json={"kind": "fax", "value": "123"})

    assert added.status_code == 201
    assert (added.json["kind"], added.json["value"], added.json["source"]) == ("email", "anna@home.example", "agent")
    assert taken.status_code == 409
    assert taken.json["error"]["code"] == "identity_taken"
    assert invalid.status_code == 422
    assert "value" in invalid.json["error"]["fields"]
    assert bad_kind.status_code == 422
    assert "kind" in bad_kind.json["error"]["fields"]
    identities = agent_client.get(f"/api/v1/customers/{anna}").json["identities"]
    assert [i["value"] for i in identities] == ["anna@example.com", "anna@home.example"]


def test_timeline_interleaves_messages_calls_and_notes_across_conversations_newest_first(push, agent_client, session):
    from sqlalchemy import update

    from app.models import Conversation

    first = push("email", "anna@example.com", "email one", name="Anna").json
    customer_id = first["customer"]["id"]
    agent_client.post(
        f"/api/v1/conversations/{first['conversation']['id']}/messages", json={"body": "internal", "private": True}
    )
    agent_client.patch(f"/api/v1/conversations/{first['conversation']['id']}", json={"status": "resolved"})
    # Resolved long ago: the customer's next message starts a new conversation.
    session.execute(update(Conversation).values(resolved_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    session.commit()
    agent_client.post(f"/api/v1/customers/{customer_id}/identities", json={"kind": "phone", "value": "+48601234567"})
    second = push("phone", "+48601234567", "sms two").json
    assert second["conversation"]["id"] != first["conversation"]["id"]
    call_id = _add_call(session, second["conversation"]["id"], customer_id, "CA1")

    response = agent_client.get(f"/api/v1/customers/{customer_id}/timeline")

    assert response.status_code == 200
    items = response.json["items"]
    assert [item["text"] for item in items] == ["Phone call", "sms two", "internal", "email one"]
    assert items[0]["id"] == call_id
    assert items[0]["call"]["sid"] == "CA1"
    assert items[0]["call"]["duration"] == 42
    assert items[2]["private"] is True
    assert items[0]["conversation"]["id"] == second["conversation"]["id"]
    assert items[3]["conversation"] == {
        "id": first["conversation"]["id"],
        "number": first["conversation"]["number"],
        "subject": None,
        "status": "resolved",
    }
    assert response.json["customer_id"] == customer_id

    page_one = agent_client.get(f"/api/v1/customers/{customer_id}/timeline?limit=3")
    page_two = agent_client.get(
        f"/api/v1/customers/{customer_id}/timeline?limit=3&cursor={page_one.json['next_cursor']}"
    )
    assert [i["text"] for i in page_one.json["items"] + page_two.json["items"]] == [i["text"] for i in items]
    assert page_two.json["next_cursor"] is None

    listed = agent_client.get(f"/api/v1/customers/{customer_id}/conversations").json
    assert [c["id"] for c in listed["items"]] == [second["conversation"]["id"], first["conversation"]["id"]]


def test_merge_moves_everything_old_id_still_resolves_and_timeline_shows_both_histories(
    push, agent_client, session, events
):
    from sqlalchemy import select

    from app.events import CONVERSATION_UPDATED, CUSTOMER_MERGED, CUSTOMER_UPDATED
    from app.models import AuditLog, Conversation, Customer, CustomerIdentity, Message

    target = push("email", "anna@example.com", "email from anna", name="Anna Nowak").json
    source = push("phone", "+48601234567", "sms from an unknown number").json
    target_id, source_id = target["customer"]["id"], source["customer"]["id"]
    _add_call(session, source["conversation"]["id"], source_id, "CA9", status="missed")
    events.clear()

    response = agent_client.post(f"/api/v1/customers/{target_id}/merge", json={"source_id": source_id})

    assert response.status_code == 200, response.json
    assert response.json["id"] == target_id
    assert {i["value"] for i in response.json["identities"]} == {"anna@example.com", "+48601234567"}
    assert response.json["merged_ids"] == [source_id]
    assert response.json["conversation_count"] == 2
    session.expire_all()
    assert session.get(Customer, source_id).merged_into_id == target_id
    assert session.scalars(select(CustomerIdentity.customer_id)).all() == [target_id, target_id]
    assert set(session.scalars(select(Conversation.customer_id))) == {target_id}
    assert set(session.scalars(select(Message.customer_id))) == {target_id}
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "customer.merged"))
    assert audit.actor_id == agent_client.user["id"]
    assert audit.target_id == target_id
    assert audit.data["source_id"] == source_id
    assert (audit.data["identities"], audit.data["conversations"], audit.data["messages"]) == (1, 1, 2)
    names = [e.name for e in events]
    assert CUSTOMER_MERGED in names
    assert CUSTOMER_UPDATED in names
    assert CONVERSATION_UPDATED in names
    merged_event = next(e for e in events if e.name == CUSTOMER_MERGED)
    assert (merged_event.payload["source_id"], merged_event.payload["target_id"]) == (source_id, target_id)

    old = agent_client.get(f"/api/v1/customers/{source_id}")
    assert old.status_code == 200
    assert old.json["id"] == target_id
    assert old.json["merged_from"] == source_id

    timeline = agent_client.get(f"/api/v1/customers/{source_id}/timeline").json
    assert timeline["customer_id"] == target_id
    assert [item["text"] for item in timeline["items"]] == [
        "Phone call",
        "sms from an unknown number",
        "email from anna",
    ]
    assert timeline["items"][0]["call"]["status"] == "missed"

    # Anna's next SMS lands with the survivor.
    later = push("phone", "+48601234567", "it's me again").json
    assert later["customer"]["id"] == target_id


def test_message_stored_for_the_old_id_after_a_merge_still_shows_in_the_survivor_timeline(push, agent_client, session):
    from app.models import Message

    target = push("email", "anna@example.com", "one").json
    source = push("email", "other@example.com", "two").json
    agent_client.post(
        f"/api/v1/customers/{target['customer']['id']}/merge", json={"source_id": source["customer"]["id"]}
    )
    # What an ingest that raced the merge could leave behind: a row still naming the old customer.
    session.add(
        Message(
            conversation_id=source["conversation"]["id"],
            customer_id=source["customer"]["id"],
            channel="api",
            direction="in",
            text="straggler",
        )
    )
    session.commit()

    items = agent_client.get(f"/api/v1/customers/{target['customer']['id']}/timeline").json["items"]

    assert "straggler" in [item["text"] for item in items]


def test_merge_flattens_earlier_merges_so_old_ids_resolve_in_one_hop(push, agent_client):
    a = push("email", "a@example.com", "a").json["customer"]["id"]
    b = push("email", "b@example.com", "b").json["customer"]["id"]
    c = push("email", "c@example.com", "c").json["customer"]["id"]
    assert agent_client.post(f"/api/v1/customers/{b}/merge", json={"source_id": c}).status_code == 200
    assert agent_client.post(f"/api/v1/customers/{a}/merge", json={"source_id": b}).status_code == 200

    profile = agent_client.get(f"/api/v1/customers/{c}").json
    assert profile["id"] == a
    assert sorted(profile["merged_ids"]) == sorted([b, c])
    texts = {item["text"] for item in agent_client.get(f"/api/v1/customers/{a}/timeline").json["items"]}
    assert texts == {"a", "b", "c"}


def test_merge_refuses_itself_and_already_merged_customers(push, agent_client):
    a = push("email", "a@example.com", "a").json["customer"]["id"]
    b = push("email", "b@example.com", "b").json["customer"]["id"]
    c = push("email", "c@example.com", "c").json["customer"]["id"]

    itself = agent_client.post(f"/api/v1/customers/{a}/merge", json={"source_id": a})
    assert itself.status_code == 422
    assert itself.json["error"]["code"] == "merge_into_self"
    assert agent_client.post(f"/api/v1/customers/{a}/merge", json={"source_id": b}).status_code == 200
    into_merged = agent_client.post(f"/api/v1/customers/{b}/merge", json={"source_id": c})
    from_merged = agent_client.post(f"/api/v1/customers/{c}/merge", json={"source_id": b})
    unknown = agent_client.post(f"/api/v1/customers/{a}/merge", json={"source_id": 9999})
    missing = agent_client.post(f"/api/v1/customers/{a}/merge", json={})

    assert into_merged.status_code == 409
    assert into_merged.json["error"]["code"] == "already_merged"
    assert from_merged.status_code == 409
    assert from_merged.json["error"]["fields"] == {"source_id": "already merged"}
    assert unknown.status_code == 404
    assert "source_id" in unknown.json["error"]["fields"]
    assert missing.status_code == 422
    assert agent_client.get(f"/api/v1/customers/{c}").json["merged_into_id"] is None


def test_crossing_concurrent_merges_leave_exactly_one_survivor(push, app):
    """A into B and B into A at the same moment: one wins, the other is refused, no cycle."""
    from app.extensions import db
    from app.models import Customer
    from app.services.errors import Conflict
    from app.services.merge import merge_customers

    a = push("email", "a@example.com", "a").json["customer"]["id"]
    b = push("email", "b@example.com", "b").json["customer"]["id"]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run(target: int, source: int) -> None:
        with app.app_context():
            try:
                start.wait()
                merge_customers(target, source, None)
                outcomes.append("merged")
            except Conflict:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes) == ["merged", "refused"]
    db.session.expire_all()
    rows = {c.id: c.merged_into_id for c in db.session.query(Customer).all()}
    survivors = [cid for cid, merged_into in rows.items() if merged_into is None]
    assert len(survivors) == 1
    assert rows[({a, b} - set(survivors)).pop()] == survivors[0]


@pytest.mark.parametrize("body", [{"source_id": "two"}, {"source_id": 1, "extra": True}, []])
def test_bad_merge_body_is_rejected(conversation, agent_client, body):
    response = agent_client.post(f"/api/v1/customers/{conversation['customer']['id']}/merge", json=body)
    assert response.status_code in (400, 422)
    assert response.json["error"]["code"] in ("bad_request", "validation_failed")
