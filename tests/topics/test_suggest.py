"""Suggested topics: trained from tagged conversations, shown to the agent, never applied by themselves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.services.topic_corpus import OPENERS, corpus


@pytest.fixture
def demo_topics(app: Any) -> dict[tuple[str, str], int]:
    """The demo taxonomy (five topics, twelve subtopics): (topic, subtopic) → subtopic id."""
    from app.services.topics import create_topic

    ids: dict[tuple[str, str], int] = {}
    parents: dict[str, int] = {}
    for parent, child in OPENERS:
        if parent not in parents:
            parents[parent] = create_topic(parent, actor_id=None).id
        ids[(parent, child)] = create_topic(child, parent_id=parents[parent], actor_id=None).id
    return ids


@pytest.fixture
def tagged(demo_topics: dict[tuple[str, str], int], make_conversation: Any) -> list[tuple[int, int]]:
    """240 tagged conversations written like customers write; returns (conversation id, topic id)."""
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    made = []
    for i, (text, label) in enumerate(corpus(240, seed=11)):
        topic = demo_topics[label]
        made.append((make_conversation(start + dt.timedelta(minutes=i), text=text, topics=(topic,)), topic))
    return made


def test_holdout_accuracy_on_the_demo_corpus_is_useful():
    from app.services.suggest import holdout_accuracy

    data = corpus(1200, seed=4)
    labels = {label: i for i, label in enumerate(OPENERS)}
    accuracy = holdout_accuracy([t for t, _ in data], [labels[label] for _, label in data])
    assert accuracy.classes == 12
    assert accuracy.test == 240
    assert accuracy.top1 > 0.6
    assert accuracy.top3 > accuracy.top1


def test_flask_topics_train_stores_a_model_that_suggests_without_applying(
    app, tagged, demo_topics, make_conversation, agent_client
):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["topics", "train"])
    assert result.exit_code == 0, result.output
    assert "trained on 240 conversations over 12 topics" in result.output

    fresh = make_conversation(
        dt.datetime(2024, 6, 1, tzinfo=dt.UTC), text="Hi, my card keeps getting declined at checkout, order 55123"
    )
    response = agent_client.get(f"/api/v1/conversations/{fresh}/topic-suggestions")

    assert response.status_code == 200, response.json
    suggestions = response.json["items"]
    assert len(suggestions) == 3
    assert suggestions[0]["topic"]["id"] == demo_topics[("Payment problem", "Card declined")]
    assert suggestions[0]["path"] == "Payment problem / Card declined"
    assert suggestions[0]["score"] >= suggestions[1]["score"] >= suggestions[2]["score"]
    assert response.json["model"]["trained"] is True
    assert response.json["model"]["samples"] == 240
    # Only a suggestion: the conversation still has no topic.
    assert agent_client.get(f"/api/v1/conversations/{fresh}").json["topic_ids"] == []


def test_suggestions_skip_topics_already_tagged_and_archived(
    app, tagged, demo_topics, make_conversation, agent_client, admin_client
):
    app.test_cli_runner().invoke(args=["topics", "train"])
    declined = demo_topics[("Payment problem", "Card declined")]
    text = "my card is declined every time I try to pay"
    fresh = make_conversation(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), text=text, topics=(declined,))
    ids = [s["topic"]["id"] for s in agent_client.get(f"/api/v1/conversations/{fresh}/topic-suggestions").json["items"]]
    assert declined not in ids

    twice = demo_topics[("Payment problem", "Charged twice")]
    admin_client.patch(f"/api/v1/topics/{twice}", json={"archived": True})
    ids = [s["topic"]["id"] for s in agent_client.get(f"/api/v1/conversations/{fresh}/topic-suggestions").json["items"]]
    assert twice not in ids


def test_the_wrapup_prompt_offers_the_suggestions(app, tagged, demo_topics, make_conversation, agent_client):
    from app.worker.jobs import retrain_suggestions

    assert retrain_suggestions() is not None
    assert retrain_suggestions() is None  # nothing new was tagged: no retraining
    fresh = make_conversation(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), text="where is my parcel, tracking stuck")
    wrapup = agent_client.get(f"/api/v1/conversations/{fresh}/wrapup").json
    assert wrapup["suggestions"][0]["topic"]["id"] == demo_topics[("Delivery", "Late")]


def test_training_refuses_too_little_data(app, demo_topics, make_conversation):
    make_conversation(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), text="late parcel", topics=(1,))
    result = app.test_cli_runner().invoke(args=["topics", "train"])
    assert result.exit_code != 0
    assert "need at least" in result.output


def test_flask_topics_evaluate_prints_top1_and_top3(app, tagged):
    result = app.test_cli_runner().invoke(args=["topics", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "top-1" in result.output
    assert "top-3" in result.output


def test_without_a_model_there_are_no_suggestions(agent_client, make_conversation):
    fresh = make_conversation(dt.datetime(2024, 6, 1, tzinfo=dt.UTC), text="hello")
    response = agent_client.get(f"/api/v1/conversations/{fresh}/topic-suggestions")
    assert response.json == {"items": [], "model": {"trained": False}}
    assert agent_client.get("/api/v1/conversations/99999/topic-suggestions").status_code == 404
