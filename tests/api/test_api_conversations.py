"""The unified inbox API: listing, filters, search, keyset pagination, status changes, messages, replies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def _future(hours: int = 2) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


# Listing and filters ----------------------------------------------------------------------------------


def test_inbox_lists_newest_activity_first_with_topics_preview_and_channels(push, agent_client):
    first = push("email", "a@example.com", "first").json["conversation"]["id"]
    second = push("email", "b@example.com", "second").json["conversation"]["id"]
    push("email", "a@example.com", "a writes again: where is my parcel?")

    response = agent_client.get("/api/v1/conversations")

    assert _ids(response) == [first, second]
    row = response.json["items"][0]
    assert row["preview"] == "a writes again: where is my parcel?"
    assert row["last_message"] == {
        "text": "a writes again: where is my parcel?",
        "direction": "in",
        "channel": "api",
        "kind": "message",
    }
    assert row["channels"] == ["api"]
    assert row["topics"] == []
    assert row["topic_ids"] == []
    assert row["customer"]["id"] == row["customer_id"]
    assert response.json["next_cursor"] is None


def test_inbox_filters_by_status_assignee_team_and_channel_combined(push, agent_client, make_user, admin_client):
    me = agent_client.user["id"]
    other = make_user("agent").id
    team = admin_client.post("/api/v1/teams", json={"name": "Billing"}).json["id"]
    mine_open = push("email", "a@example.com", "a").json["conversation"]["id"]
    mine_pending = push("email", "b@example.com", "b").json["conversation"]["id"]
    theirs = push("email", "c@example.com", "c").json["conversation"]["id"]
    unassigned = push("email", "d@example.com", "d").json["conversation"]["id"]
    agent_client.patch(f"/api/v1/conversations/{mine_open}", json={"assignee_id": me, "team_id": team})
    agent_client.patch(f"/api/v1/conversations/{mine_pending}", json={"assignee_id": me, "status": "pending"})
    agent_client.patch(f"/api/v1/conversations/{theirs}", json={"assignee_id": other})

    assert set(_ids(agent_client.get("/api/v1/conversations?assignee=me"))) == {mine_open, mine_pending}
    assert _ids(agent_client.get("/api/v1/conversations?assignee=me&status=pending")) == [mine_pending]
    assert _ids(agent_client.get(f"/api/v1/conversations?assignee={other}")) == [theirs]
    assert _ids(agent_client.get("/api/v1/conversations?assignee=none")) == [unassigned]
    assert _ids(agent_client.get(f"/api/v1/conversations?team={team}&status=open")) == [mine_open]
    assert set(_ids(agent_client.get("/api/v1/conversations?team=none"))) == {mine_pending, theirs, unassigned}
    assert len(_ids(agent_client.get("/api/v1/conversations?status=all&channel=api"))) == 4
    assert _ids(agent_client.get("/api/v1/conversations?channel=sms")) == []
    assert len(_ids(agent_client.get("/api/v1/conversations?status=&assignee="))) == 4  # empty = no filter


def test_inbox_filters_by_topic_including_sub_topics(push, agent_client, session):
    from app.models import ConversationTopic, Topic

    parent = Topic(name="Delivery")
    session.add(parent)
    session.flush()
    child = Topic(name="Late", parent_id=parent.id)
    session.add(child)
    session.commit()
    tagged_child = push("email", "a@example.com", "a").json["conversation"]["id"]
    tagged_parent = push("email", "b@example.com", "b").json["conversation"]["id"]
    untagged = push("email", "c@example.com", "c").json["conversation"]["id"]
    session.add_all(
        [
            ConversationTopic(conversation_id=tagged_child, topic_id=child.id),
            ConversationTopic(conversation_id=tagged_parent, topic_id=parent.id),
        ]
    )
    session.commit()

    assert set(_ids(agent_client.get(f"/api/v1/conversations?topic={parent.id}"))) == {tagged_child, tagged_parent}
    assert _ids(agent_client.get(f"/api/v1/conversations?topic={child.id}")) == [tagged_child]
    assert _ids(agent_client.get("/api/v1/conversations?topic=none")) == [untagged]
    row = agent_client.get(f"/api/v1/conversations?topic={child.id}").json["items"][0]
    assert row["topics"] == [{"id": child.id, "name": "Late", "colour": child.colour, "parent_id": parent.id}]
    detail = agent_client.get(f"/api/v1/conversations/{tagged_child}").json
    assert detail["topic_ids"] == [child.id]


def test_search_finds_subject_customer_name_identity_and_message_text(push, agent_client):
    by_subject = push("email", "a@example.com", "hi", subject="Refund for order 77").json["conversation"]["id"]
    by_name = push("email", "b@example.com", "hi", name="Zofia Kowalska").json["conversation"]["id"]
    by_identity = push("phone", "+48601234567", "hi").json["conversation"]["id"]
    by_text = push("email", "d@example.com", "The courier left it at 100% wrong door").json["conversation"]["id"]

    assert _ids(agent_client.get("/api/v1/conversations?q=refund")) == [by_subject]
    assert _ids(agent_client.get("/api/v1/conversations?q=KOWALSKA")) == [by_name]
    assert _ids(agent_client.get("/api/v1/conversations?q=601 234 567")) == [by_identity]
    assert _ids(agent_client.get("/api/v1/conversations?q=b@example")) == [by_name]
    assert _ids(agent_client.get("/api/v1/conversations?q=courier")) == [by_text]
    assert _ids(agent_client.get("/api/v1/conversations?q=100%25")) == [by_text]  # % is literal, not a wildcard
    assert _ids(agent_client.get("/api/v1/conversations?q=nothing-like-this")) == []
    assert _ids(agent_client.get(f"/api/v1/conversations?q=%23{by_identity}")) == [by_identity]


def test_inbox_filters_by_customer_following_merges(push, agent_client):
    a = push("email", "a@example.com", "a").json
    b = push("email", "b@example.com", "b").json
    push("email", "c@example.com", "c")
    agent_client.post(f"/api/v1/customers/{a['customer']['id']}/merge", json={"source_id": b["customer"]["id"]})

    found = _ids(agent_client.get(f"/api/v1/conversations?customer={b['customer']['id']}"))

    assert set(found) == {a["conversation"]["id"], b["conversation"]["id"]}


@pytest.mark.parametrize(
    "query",
    ["status=closed", "assignee=someone", "limit=0", "limit=1000", "team=x", "unknown=1", "customer=abc"],
)
def test_bad_inbox_query_is_a_422_naming_the_field(agent_client, query):
    response = agent_client.get(f"/api/v1/conversations?{query}")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
    assert query.split("=")[0] in response.json["error"]["fields"]


def test_forged_cursor_is_a_400(agent_client):
    response = agent_client.get("/api/v1/conversations?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_cursor"
    assert "cursor" in response.json["error"]["fields"]


# Keyset pagination ------------------------------------------------------------------------------------


def test_keyset_pagination_returns_each_conversation_exactly_once_while_new_activity_arrives(push, agent_client):
    emails = {}
    for n in range(12):
        emails[push("email", f"c{n}@example.com", f"message {n}").json["conversation"]["id"]] = f"c{n}@example.com"
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/conversations?limit=5" + (f"&cursor={cursor}" if cursor else "")
        response = agent_client.get(url)
        seen += _ids(response)
        cursor = response.json["next_cursor"]
        pages += 1
        # Between pages: a brand-new conversation arrives, the conversation the cursor points at gets a new
        # message, and another one already seen gets a private note; all of them jump to the top.
        push("email", f"new{pages}@example.com", "a new customer")
        push("email", emails[seen[-1]], "seen customer writes again")
        agent_client.post(f"/api/v1/conversations/{seen[0]}/messages", json={"body": "note", "private": True})
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == len(set(seen)), "a conversation was returned twice"
    assert set(seen) == set(emails)
    # The arrivals are there for a client that starts again from the top.
    assert len(_ids(agent_client.get("/api/v1/conversations?limit=100"))) == 15


def test_equal_activity_times_are_ordered_by_id_and_paginated_without_loss(push, agent_client, session):
    from sqlalchemy import update

    from app.models import Conversation

    ids = [push("email", f"t{n}@example.com", "same time").json["conversation"]["id"] for n in range(7)]
    same = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    session.execute(update(Conversation).values(last_activity_at=same))
    session.commit()

    first = agent_client.get("/api/v1/conversations?limit=3")
    second = agent_client.get(f"/api/v1/conversations?limit=3&cursor={first.json['next_cursor']}")
    third = agent_client.get(f"/api/v1/conversations?limit=3&cursor={second.json['next_cursor']}")

    assert _ids(first) + _ids(second) + _ids(third) == sorted(ids, reverse=True)
    assert third.json["next_cursor"] is None


# Detail and changes -----------------------------------------------------------------------------------


def test_detail_has_customer_identities_reply_channels_and_topics(conversation, agent_client, session):
    from app.models import ConversationTopic, Topic

    topic = Topic(name="Payment")
    session.add(topic)
    session.flush()
    session.add(ConversationTopic(conversation_id=conversation["conversation"]["id"], topic_id=topic.id))
    session.commit()

    response = agent_client.get(f"/api/v1/conversations/{conversation['conversation']['id']}")

    assert response.status_code == 200
    body = response.json
    assert body["customer"]["name"] == "Anna Nowak"
    assert [(i["kind"], i["value"]) for i in body["customer"]["identities"]] == [("email", "anna@example.com")]
    assert body["reply_channels"] == ["email", "api"]
    assert body["default_reply_channel"] == "api"
    assert body["topics"] == [{"id": topic.id, "name": "Payment", "colour": topic.colour, "parent_id": None}]
    assert body["status"] == "open"


def test_unknown_conversation_is_404_everywhere(agent_client):
    for response in (
        agent_client.get("/api/v1/conversations/999"),
        agent_client.patch("/api/v1/conversations/999", json={"status": "resolved"}),
        agent_client.get("/api/v1/conversations/999/messages"),
        agent_client.post("/api/v1/conversations/999/messages", json={"body": "hi"}),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


def test_resolve_sets_resolved_at_publishes_update_and_asks_only_the_resolver_for_wrapup(
    conversation, agent_client, events
):
    from app.events import CONVERSATION_UPDATED, WRAPUP_REQUESTED

    conversation_id = conversation["conversation"]["id"]
    response = agent_client.patch(f"/api/v1/conversations/{conversation_id}", json={"status": "resolved"})

    assert response.status_code == 200
    assert response.json["status"] == "resolved"
    assert response.json["resolved_at"] is not None
    updated = [e for e in events if e.name == CONVERSATION_UPDATED]
    assert updated[-1].payload["conversation"]["status"] == "resolved"
    (wrapup,) = [e for e in events if e.name == WRAPUP_REQUESTED]
    assert wrapup.user_ids == (agent_client.user["id"],)
    assert wrapup.all_agents is False
    assert wrapup.conversation_id is None  # not to everyone viewing the conversation
    assert wrapup.payload["conversation_id"] == conversation_id

    reopened = agent_client.patch(f"/api/v1/conversations/{conversation_id}", json={"status": "open"})
    assert reopened.json["resolved_at"] is None
    assert len([e for e in events if e.name == WRAPUP_REQUESTED]) == 1


def test_snooze_requires_a_future_time_and_wakes_when_it_passes(conversation, agent_client, app):
    from app.services.conversations import wake_snoozed_conversations

    url = f"/api/v1/conversations/{conversation['conversation']['id']}"
    missing = agent_client.patch(url, json={"status": "snoozed"})
    past = agent_client.patch(url, json={"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00Z"})
    contradiction = agent_client.patch(url, json={"status": "open", "snoozed_until": _future()})
    assert missing.status_code == 422
    assert "snoozed_until" in missing.json["error"]["fields"]
    assert past.status_code == 422
    assert past.json["error"]["fields"]["snoozed_until"] == "must be in the future"
    assert contradiction.status_code == 422

    until = _future(2)
    snoozed = agent_client.patch(url, json={"snoozed_until": until})
    assert snoozed.status_code == 200
    assert snoozed.json["status"] == "snoozed"
    assert snoozed.json["snoozed_until"] is not None

    assert wake_snoozed_conversations(dt.datetime.now(dt.UTC)) == 0
    assert wake_snoozed_conversations(dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)) == 1

    woken = agent_client.get(url).json
    assert woken["status"] == "open"
    assert woken["snoozed_until"] is None


def test_wake_publishes_conversation_updated(conversation, app, events):
    from app.events import CONVERSATION_UPDATED
    from app.services.conversations import snooze, wake_snoozed_conversations

    conversation_id = conversation["conversation"]["id"]
    snooze(conversation_id, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), None)
    events.clear()

    assert wake_snoozed_conversations(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)) == 1

    (event,) = [e for e in events if e.name == CONVERSATION_UPDATED]
    assert event.payload["conversation"]["status"] == "open"


def test_leaving_snoozed_clears_the_snooze_time(conversation, agent_client):
    url = f"/api/v1/conversations/{conversation['conversation']['id']}"
    agent_client.patch(url, json={"status": "snoozed", "snoozed_until": _future()})

    response = agent_client.patch(url, json={"status": "pending"})

    assert response.json["status"] == "pending"
    assert response.json["snoozed_until"] is None


def test_assign_needs_an_active_user_and_null_unassigns(conversation, agent_client, make_user, admin_client):
    url = f"/api/v1/conversations/{conversation['conversation']['id']}"
    colleague = make_user("agent")
    gone = make_user("agent")
    admin_client.patch(f"/api/v1/users/{gone.id}", json={"active": False})

    assert agent_client.patch(url, json={"assignee_id": colleague.id}).json["assignee_id"] == colleague.id
    unknown = agent_client.patch(url, json={"assignee_id": 99999})
    inactive = agent_client.patch(url, json={"assignee_id": gone.id})
    assert unknown.status_code == 404
    assert "assignee_id" in unknown.json["error"]["fields"]
    assert inactive.status_code == 422
    assert inactive.json["error"]["code"] == "inactive_user"
    assert agent_client.get(url).json["assignee_id"] == colleague.id
    assert agent_client.patch(url, json={"assignee_id": None}).json["assignee_id"] is None


def test_a_rejected_change_writes_nothing(conversation, agent_client, admin_client):
    url = f"/api/v1/conversations/{conversation['conversation']['id']}"
    team = admin_client.post("/api/v1/teams", json={"name": "Billing"}).json["id"]

    response = agent_client.patch(url, json={"status": "resolved", "team_id": team, "assignee_id": 424242})

    assert response.status_code == 404
    after = agent_client.get(url).json
    assert (after["status"], after["team_id"], after["resolved_at"]) == ("open", None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"status": None}, "status"),
        ({"assignee_id": "me"}, "assignee_id"),
        ({"snoozed_until": "tomorrow"}, "snoozed_until"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_patch_is_422_with_field_details(conversation, agent_client, body, field):
    response = agent_client.patch(f"/api/v1/conversations/{conversation['conversation']['id']}", json=body)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_non_json_body_is_a_400(conversation, agent_client):
    response = agent_client.patch(
        f"/api/v1/conversations/{conversation['conversation']['id']}", data="status=open", content_type="text/plain"
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_resolve_calls_the_topics_service_when_it_exists(conversation, app, monkeypatch):
    """The topics helper's ensure_topic_for_resolve may refuse a resolve; it then changes nothing."""
    import sys
    import types

    from app.services.conversations import set_status
    from app.services.errors import ValidationFailed

    calls = []

    def ensure_topic_for_resolve(conv: Any) -> None:
        calls.append(conv.id)
        raise ValidationFailed("tag a topic first", code="topic_required")

    module = sys.modules.get("app.services.topics") or types.ModuleType("app.services.topics")
    monkeypatch.setitem(sys.modules, "app.services.topics", module)
    monkeypatch.setattr(module, "ensure_topic_for_resolve", ensure_topic_for_resolve, raising=False)
    conversation_id = conversation["conversation"]["id"]

    with pytest.raises(ValidationFailed):
        set_status(conversation_id, "resolved", None)

    from app.extensions import db
    from app.models import Conversation

    db.session.expire_all()
    assert calls == [conversation_id]
    assert db.session.get(Conversation, conversation_id).status == "open"


# Messages ---------------------------------------------------------------------------------------------


def test_messages_are_listed_oldest_first_with_a_forward_cursor(conversation, push, agent_client):
    for n in range(4):
        push("email", "anna@example.com", f"follow-up {n}")
    url = f"/api/v1/conversations/{conversation['conversation']['id']}/messages"

    first = agent_client.get(f"{url}?limit=3")
    second = agent_client.get(f"{url}?limit=3&cursor={first.json['next_cursor']}")

    texts = [m["text"] for m in first.json["items"] + second.json["items"]]
    assert texts == ["My parcel is late", "follow-up 0", "follow-up 1", "follow-up 2", "follow-up 3"]
    assert second.json["next_cursor"] is None

    latest = agent_client.get(f"{url}?limit=3&order=desc")
    older = agent_client.get(f"{url}?limit=3&order=desc&cursor={latest.json['next_cursor']}")
    backwards = [m["text"] for m in latest.json["items"] + older.json["items"]]
    assert backwards == list(reversed(texts))
    assert older.json["next_cursor"] is None


def test_reply_is_queued_and_a_note_is_private(conversation, agent_client, events):
    from app.events import MESSAGE_CREATED

    url = f"/api/v1/conversations/{conversation['conversation']['id']}/messages"

    sent = agent_client.post(url, json={"body": "We are on it", "channel": "api"})
    note = agent_client.post(url, json={"body": "customer is a VIP", "private": True})

    assert sent.status_code == 201
    assert (sent.json["direction"], sent.json["delivery_status"], sent.json["channel"]) == ("out", "queued", "api")
    assert sent.json["author_id"] == agent_client.user["id"]
    assert note.status_code == 201
    assert (note.json["kind"], note.json["private"], note.json["delivery_status"]) == ("note", True, "not_sent")
    listed = agent_client.get(url).json["items"]
    assert [m["text"] for m in listed] == ["My parcel is late", "We are on it", "customer is a VIP"]
    created = [e for e in events if e.name == MESSAGE_CREATED]
    assert [e.private for e in created] == [False, True]


def test_reply_on_a_channel_without_recipient_is_refused_with_a_reason(conversation, agent_client, session):
    from sqlalchemy import func, select

    from app.models import Message

    url = f"/api/v1/conversations/{conversation['conversation']['id']}/messages"

    response = agent_client.post(url, json={"body": "hi", "channel": "sms"})
    empty = agent_client.post(url, json={"body": ""})

    assert response.status_code == 422
    assert response.json["error"]["code"] == "no_recipient"
    assert empty.status_code == 422
    assert "body" in empty.json["error"]["fields"]
    session.rollback()
    assert session.scalar(select(func.count(Message.id))) == 1


def test_call_items_carry_their_call_details(conversation, agent_client, session):
    from app.models import Call, Message

    message = Message(
        conversation_id=conversation["conversation"]["id"],
        customer_id=conversation["customer"]["id"],
        channel="voice",
        direction="in",
        kind="call",
        text="Missed call",
        delivery_status="received",
    )
    session.add(message)
    session.flush()
    session.add(
        Call(message_id=message.id, provider_sid="CA123", direction="in", status="missed", from_number="+48601234567")
    )
    session.commit()

    items = agent_client.get(f"/api/v1/conversations/{conversation['conversation']['id']}/messages").json["items"]

    call_item = next(item for item in items if item["kind"] == "call")
    assert call_item["call"]["sid"] == "CA123"
    assert call_item["call"]["status"] == "missed"
    assert "call" not in items[0]
