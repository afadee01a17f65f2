"""The topic taxonomy (two levels, colours, archiving that keeps history) and tagging conversations."""

from __future__ import annotations

from typing import Any


def _conversation(push: Any, who: str = "anna@example.com") -> int:
    response = push("email", who, "Where is my parcel?", subject="Parcel")
    assert response.status_code == 201, response.json
    return int(response.json["conversation"]["id"])


# The taxonomy -------------------------------------------------------------------------------------------


def test_admin_builds_a_two_level_taxonomy_with_colours(admin_client, agent_client):
    billing = admin_client.post("/api/v1/topics", json={"name": "Billing", "colour": "#DC2626"})
    assert billing.status_code == 201, billing.json
    assert billing.json["colour"] == "#dc2626"
    declined = admin_client.post("/api/v1/topics", json={"name": "Card declined", "parent_id": billing.json["id"]})
    assert declined.status_code == 201
    assert declined.json["parent_id"] == billing.json["id"]
    assert declined.json["colour"] == "#dc2626"  # a subtopic takes its parent's colour by default
    assert declined.json["path"] == "Billing / Card declined"

    listed = agent_client.get("/api/v1/topics").json["items"]
    assert [t["name"] for t in listed] == ["Billing", "Card declined"]

    third_level = admin_client.post("/api/v1/topics", json={"name": "Visa", "parent_id": declined.json["id"]})
    assert third_level.status_code == 422
    assert "parent_id" in third_level.json["error"]["fields"]


def test_topic_names_are_unique_per_level_ignoring_case(admin_client):
    assert admin_client.post("/api/v1/topics", json={"name": "Billing"}).status_code == 201
    clash = admin_client.post("/api/v1/topics", json={"name": "  billing "})
    assert clash.status_code == 409
    assert clash.json["error"]["fields"] == {"name": "already taken"}


def test_only_admins_change_the_taxonomy(agent_client, taxonomy):
    assert agent_client.post("/api/v1/topics", json={"name": "Spam"}).status_code == 403
    assert agent_client.patch(f"/api/v1/topics/{taxonomy['Billing']}", json={"name": "X"}).status_code == 403


def test_archiving_a_parent_hides_it_and_its_subtopics_from_agents_but_keeps_them_listed(
    admin_client, agent_client, taxonomy
):
    response = admin_client.patch(f"/api/v1/topics/{taxonomy['Billing']}", json={"archived": True})
    assert response.status_code == 200
    assert response.json["archived"] is True

    everything = {t["name"]: t for t in agent_client.get("/api/v1/topics").json["items"]}
    assert everything["Charged twice"]["archived"] is True
    assert everything["Billing"]["selectable"] is False
    offered = [t["name"] for t in agent_client.get("/api/v1/topics?archived=false").json["items"]]
    assert offered == ["Delivery", "Damaged", "Late"]

    child = admin_client.patch(f"/api/v1/topics/{taxonomy['Card declined']}", json={"archived": False})
    assert child.status_code == 422  # the parent first
    assert admin_client.patch(f"/api/v1/topics/{taxonomy['Billing']}", json={"archived": False}).status_code == 200


def test_a_topic_with_subtopics_cannot_become_a_subtopic(admin_client, taxonomy):
    response = admin_client.patch(f"/api/v1/topics/{taxonomy['Billing']}", json={"parent_id": taxonomy["Delivery"]})
    assert response.status_code == 422
    moved = admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"parent_id": taxonomy["Billing"]})
    assert moved.status_code == 200
    assert moved.json["path"] == "Billing / Late"
    top = admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"parent_id": None})
    assert top.json["parent_id"] is None


def test_taxonomy_changes_are_audited(admin_client, session, taxonomy):
    from sqlalchemy import select

    from app.models import AuditLog

    admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"name": "Late delivery"})
    actions = session.scalars(select(AuditLog.action).where(AuditLog.target_type == "topic")).all()
    assert "topic.updated" in actions
    assert actions.count("topic.created") == 6


# Tagging ------------------------------------------------------------------------------------------------


def test_agent_sets_adds_and_removes_topics_one_at_a_time(agent_client, push, taxonomy, events):
    conversation = _conversation(push)
    url = f"/api/v1/conversations/{conversation}/topics"

    response = agent_client.put(url, json={"topic_ids": [taxonomy["Late"], taxonomy["Damaged"]]})
    assert response.status_code == 200, response.json
    assert set(response.json["topic_ids"]) == {taxonomy["Late"], taxonomy["Damaged"]}

    added = agent_client.post(url, json={"topic_id": taxonomy["Charged twice"]})
    assert set(added.json["topic_ids"]) == {taxonomy["Late"], taxonomy["Damaged"], taxonomy["Charged twice"]}
    removed = agent_client.delete(f"{url}/{taxonomy['Damaged']}")
    assert set(removed.json["topic_ids"]) == {taxonomy["Late"], taxonomy["Charged twice"]}

    detail = agent_client.get(f"/api/v1/conversations/{conversation}").json
    assert set(detail["topic_ids"]) == {taxonomy["Late"], taxonomy["Charged twice"]}
    updates = [e for e in events if e.name == "conversation.updated" and e.conversation_id == conversation]
    assert len(updates) == 3
    assert set(updates[-1].payload["conversation"]["topic_ids"]) == {taxonomy["Late"], taxonomy["Charged twice"]}


def test_repeating_a_tag_changes_nothing_and_publishes_nothing(agent_client, push, taxonomy, events):
    conversation = _conversation(push)
    url = f"/api/v1/conversations/{conversation}/topics"
    agent_client.post(url, json={"topic_id": taxonomy["Late"]})
    before = len(events)
    again = agent_client.post(url, json={"topic_id": taxonomy["Late"]})
    assert again.status_code == 200
    assert again.json["topic_ids"] == [taxonomy["Late"]]
    assert len(events) == before


def test_archived_topics_stay_on_conversations_but_cannot_be_added(admin_client, agent_client, push, taxonomy):
    tagged = _conversation(push, "a@example.com")
    other = _conversation(push, "b@example.com")
    agent_client.put(f"/api/v1/conversations/{tagged}/topics", json={"topic_ids": [taxonomy["Late"]]})
    admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"archived": True})

    refused = agent_client.put(f"/api/v1/conversations/{other}/topics", json={"topic_ids": [taxonomy["Late"]]})
    assert refused.status_code == 422
    assert "archived" in refused.json["error"]["message"]
    kept = agent_client.put(
        f"/api/v1/conversations/{tagged}/topics", json={"topic_ids": [taxonomy["Late"], taxonomy["Damaged"]]}
    )
    assert kept.status_code == 200
    assert set(kept.json["topic_ids"]) == {taxonomy["Late"], taxonomy["Damaged"]}


def test_unknown_topic_or_conversation_is_a_404(agent_client, push, taxonomy):
    conversation = _conversation(push)
    unknown_topic = agent_client.put(f"/api/v1/conversations/{conversation}/topics", json={"topic_ids": [99999]})
    assert unknown_topic.status_code == 404
    assert agent_client.put("/api/v1/conversations/99999/topics", json={"topic_ids": []}).status_code == 404


def test_bulk_tagging_adds_and_removes_on_every_conversation(agent_client, push, taxonomy, events):
    first, second = _conversation(push, "a@example.com"), _conversation(push, "b@example.com")
    agent_client.put(f"/api/v1/conversations/{first}/topics", json={"topic_ids": [taxonomy["Damaged"]]})

    response = agent_client.post(
        "/api/v1/conversations/bulk-topics",
        json={"conversation_ids": [first, second], "add": [taxonomy["Late"]], "remove": [taxonomy["Damaged"]]},
    )
    assert response.status_code == 200, response.json
    assert {item["conversation_id"]: item["topic_ids"] for item in response.json["items"]} == {
        first: [taxonomy["Late"]],
        second: [taxonomy["Late"]],
    }


def test_bulk_tagging_is_all_or_nothing(agent_client, push, taxonomy):
    first = _conversation(push)
    response = agent_client.post(
        "/api/v1/conversations/bulk-topics", json={"conversation_ids": [first, 99999], "add": [taxonomy["Late"]]}
    )
    assert response.status_code == 404
    assert agent_client.get(f"/api/v1/conversations/{first}").json["topic_ids"] == []

    nothing = agent_client.post("/api/v1/conversations/bulk-topics", json={"conversation_ids": [first]})
    assert nothing.status_code == 422
    both = agent_client.post(
        "/api/v1/conversations/bulk-topics",
        json={"conversation_ids": [first], "add": [taxonomy["Late"]], "remove": [taxonomy["Late"]]},
    )
    assert both.status_code == 422


def test_inbox_filter_by_parent_topic_finds_subtopic_tags(agent_client, push, taxonomy):
    conversation = _conversation(push)
    agent_client.put(f"/api/v1/conversations/{conversation}/topics", json={"topic_ids": [taxonomy["Late"]]})
    found = agent_client.get(f"/api/v1/conversations?topic={taxonomy['Delivery']}").json["items"]
    assert [row["id"] for row in found] == [conversation]
