""" "Topic required on resolve", per channel or per team, on every path that resolves a conversation."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def conversation(push: Any) -> dict[str, Any]:
    response = push("email", "anna@example.com", "My card was charged twice", subject="Charged twice")
    assert response.status_code == 201, response.json
    return response.json["conversation"]


def _require_on_channel(admin_client: Any, channel_id: int) -> None:
    response = admin_client.put(f"/api/v1/channels/{channel_id}/topic-required", json={"required": True})
    assert response.status_code == 200, response.json
    assert response.json["topic_required"] is True


def test_resolving_without_a_topic_is_refused_with_a_422_naming_the_conversation(
    admin_client, agent_client, conversation
):
    _require_on_channel(admin_client, conversation["channel_id"])

    response = agent_client.patch(f"/api/v1/conversations/{conversation['id']}", json={"status": "resolved"})

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "topic_required"
    assert f"#{conversation['number']}" in error["message"]
    assert error["fields"]["conversation_id"] == str(conversation["id"])
    assert agent_client.get(f"/api/v1/conversations/{conversation['id']}").json["status"] == "open"


def test_resolving_with_a_topic_succeeds(admin_client, agent_client, conversation, taxonomy):
    _require_on_channel(admin_client, conversation["channel_id"])
    agent_client.put(f"/api/v1/conversations/{conversation['id']}/topics", json={"topic_ids": [taxonomy["Late"]]})

    response = agent_client.patch(f"/api/v1/conversations/{conversation['id']}", json={"status": "resolved"})

    assert response.status_code == 200, response.json
    assert response.json["status"] == "resolved"


def test_the_team_rule_applies_to_conversations_moved_into_the_team(admin_client, agent_client, conversation):
    team = admin_client.post("/api/v1/teams", json={"name": "Billing"}).json["id"]
    assert admin_client.put(f"/api/v1/teams/{team}/topic-required", json={"required": True}).status_code == 200

    # Moving into the team and resolving in one request: the rule of the team it ends up in applies.
    response = agent_client.patch(
        f"/api/v1/conversations/{conversation['id']}", json={"team_id": team, "status": "resolved"}
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "topic_required"
    assert agent_client.get(f"/api/v1/conversations/{conversation['id']}").json["team_id"] is None


def test_without_a_rule_conversations_resolve_without_topics(agent_client, conversation):
    response = agent_client.patch(f"/api/v1/conversations/{conversation['id']}", json={"status": "resolved"})
    assert response.status_code == 200


def test_every_service_path_enforces_the_rule(admin_client, conversation):
    """Console, REST and bulk actions all resolve through app.services.conversations.update_conversation."""
    from app.services.conversations import set_status, update_conversation
    from app.services.topics import TopicRequired

    _require_on_channel(admin_client, conversation["channel_id"])
    with pytest.raises(TopicRequired) as raised:
        set_status(conversation["id"], "resolved", actor_id=None)
    assert raised.value.conversation_id == conversation["id"]
    with pytest.raises(TopicRequired):
        update_conversation(conversation["id"], None, {"status": "resolved", "assignee_id": None})


def test_rules_are_listed_for_supervisors_and_set_by_admins_only(admin_client, supervisor_client, conversation):
    assert (
        supervisor_client.put(
            f"/api/v1/channels/{conversation['channel_id']}/topic-required", json={"required": True}
        ).status_code
        == 403
    )
    _require_on_channel(admin_client, conversation["channel_id"])
    rules = supervisor_client.get("/api/v1/topics/rules").json
    assert {c["id"]: c["topic_required"] for c in rules["channels"]} == {conversation["channel_id"]: True}
    assert rules["teams"] == []
    assert admin_client.put("/api/v1/teams/99999/topic-required", json={"required": True}).status_code == 404


def test_wrapup_prompt_says_a_topic_is_required(admin_client, agent_client, conversation, taxonomy):
    _require_on_channel(admin_client, conversation["channel_id"])
    wrapup = agent_client.get(f"/api/v1/conversations/{conversation['id']}/wrapup").json
    assert wrapup["topic_required"] is True
    assert wrapup["topics"] == []
    assert wrapup["suggestions"] == []  # no model trained yet
