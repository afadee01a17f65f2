"""Topics: the taxonomy (admins), tagging conversations (agents), suggestions, wrap-up and the resolve rule.

Also the ``flask topics`` commands: ``train``, ``evaluate``, ``rebuild-stats``, ``spikes``.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, jsonify
from flask_login import current_user
from pydantic import Field

from app.api.auth import role_required
from app.api.fields import DbId, Input, Query
from app.api.validation import documented, validate
from app.extensions import db
from app.models import Channel, Team, Topic
from app.serializers import iso, topic_ref
from app.services import topics as service
from app.services.suggest import model_info, suggest_topics

bp = Blueprint("topics", __name__, url_prefix="/api/v1", cli_group="topics")


def topic_dict(topic: Topic, parents: dict[int, Topic] | None = None) -> dict[str, Any]:
    parent = (parents or {}).get(topic.parent_id) if topic.parent_id else None
    if topic.parent_id and parent is None:
        parent = db.session.get(Topic, topic.parent_id)
    return {
        "id": topic.id,
        "name": topic.name,
        "parent_id": topic.parent_id,
        "path": f"{parent.name} / {topic.name}" if parent else topic.name,
        "colour": topic.colour,
        "archived": topic.archived,
        # Offered to agents: neither it nor its parent is archived.
        "selectable": not topic.archived and not (parent is not None and parent.archived),
        "created_at": iso(topic.created_at),
    }


def _topics_payload(topics: list[Topic]) -> dict[str, Any]:
    return {"topic_ids": [t.id for t in topics], "topics": [topic_ref(t) for t in topics]}


class TopicQuery(Query):
    archived: bool = Field(default=True, description="include archived topics (false: only what agents may pick)")


class TopicCreate(Input):
    name: str = Field(min_length=1, max_length=255)
    parent_id: DbId | None = Field(default=None, description="a top-level topic: this one becomes its subtopic")
    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb; default: parent's")


class TopicPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    parent_id: DbId | None = Field(default=None, description="null makes it top-level")
    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    archived: bool | None = Field(default=None, description="archived topics keep their history but are not offered")


class TopicIds(Input):
    topic_ids: list[DbId] = Field(max_length=service.MAX_TOPICS_PER_CONVERSATION)


class TopicId(Input):
    topic_id: DbId


class BulkTopics(Input):
    conversation_ids: list[DbId] = Field(min_length=1, max_length=service.MAX_BULK)
    add: list[DbId] = Field(default_factory=list, max_length=service.MAX_TOPICS_PER_CONVERSATION)
    remove: list[DbId] = Field(default_factory=list, max_length=service.MAX_TOPICS_PER_CONVERSATION)


class SuggestionQuery(Query):
    limit: int = Field(default=3, ge=1, le=10)


class RequiredBody(Input):
    required: bool


# The taxonomy -------------------------------------------------------------------------------------------


@bp.get("/topics")
@role_required("agent")
@validate(query=TopicQuery)
@documented(summary="Topics, parents before their subtopics")
def index(query: TopicQuery) -> Any:
    """List topics (all, or only the ones agents may pick)."""
    topics = service.list_topics(include_archived=query.archived)
    parents = {t.id: t for t in service.list_topics() if t.parent_id is None}
    return jsonify(items=[topic_dict(t, parents) for t in topics])


@bp.post("/topics")
@role_required("admin")
@validate(body=TopicCreate)
@documented(summary="Create a topic or a subtopic")
def create(body: TopicCreate) -> Any:
    """Create a topic."""
    topic = service.create_topic(body.name, parent_id=body.parent_id, colour=body.colour, actor_id=current_user.id)
    return jsonify(topic_dict(topic)), 201


@bp.get("/topics/<int:topic_id>")
@role_required("agent")
@documented(summary="One topic")
def detail(topic_id: int) -> Any:
    """Show one topic."""
    return jsonify(topic_dict(service.get_topic(topic_id)))


@bp.patch("/topics/<int:topic_id>")
@role_required("admin")
@validate(body=TopicPatch)
@documented(summary="Rename, recolour, move or archive a topic")
def update(topic_id: int, body: TopicPatch) -> Any:
    """Change a topic; archiving keeps its history in conversations and reports."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    if "archived" in changes and changes["archived"] is None:
        changes.pop("archived")
    topic = service.update_topic(topic_id, changes, actor_id=current_user.id)
    return jsonify(topic_dict(topic))


# Tagging ------------------------------------------------------------------------------------------------


@bp.put("/conversations/<int:conversation_id>/topics")
@role_required("agent")
@validate(body=TopicIds)
@documented(summary="Set a conversation's topics (exactly these)")
def put_topics(conversation_id: int, body: TopicIds) -> Any:
    """Replace the conversation's topics."""
    topics = service.set_conversation_topics(conversation_id, body.topic_ids, actor_id=current_user.id)
    return jsonify(_topics_payload(topics))


@bp.post("/conversations/<int:conversation_id>/topics")
@role_required("agent")
@validate(body=TopicId)
@documented(summary="Add one topic to a conversation")
def add_topic(conversation_id: int, body: TopicId) -> Any:
    """Tag the conversation with one more topic."""
    topics = service.tag_conversation(conversation_id, body.topic_id, actor_id=current_user.id)
    return jsonify(_topics_payload(topics))


@bp.delete("/conversations/<int:conversation_id>/topics/<int:topic_id>")
@role_required("agent")
@documented(summary="Remove one topic from a conversation")
def remove_topic(conversation_id: int, topic_id: int) -> Any:
    """Untag one topic."""
    topics = service.untag_conversation(conversation_id, topic_id, actor_id=current_user.id)
    return jsonify(_topics_payload(topics))


@bp.post("/conversations/bulk-topics")
@role_required("agent")
@validate(body=BulkTopics)
@documented(summary="Add and/or remove topics on many conversations (all or none)")
def bulk_topics(body: BulkTopics) -> Any:
    """Tag or untag many conversations at once."""
    result = service.bulk_tag(body.conversation_ids, add=body.add, remove=body.remove, actor_id=current_user.id)
    return jsonify(items=[{"conversation_id": cid, **_topics_payload(topics)} for cid, topics in result.items()])


@bp.get("/conversations/<int:conversation_id>/topic-suggestions")
@role_required("agent")
@validate(query=SuggestionQuery)
@documented(summary="Topics the classifier suggests for a conversation (never applied by themselves)")
def suggestions(conversation_id: int, query: SuggestionQuery) -> Any:
    """Suggest topics for the agent to confirm."""
    from app.services.conversations import get_conversation

    get_conversation(conversation_id)
    return jsonify(items=suggest_topics(conversation_id, limit=query.limit), model=model_info())


@bp.get("/conversations/<int:conversation_id>/wrapup")
@role_required("agent")
@documented(summary="What the wrap-up prompt shows: is a topic required, current topics, suggestions")
def wrapup(conversation_id: int) -> Any:
    """Return the wrap-up prompt's data for a conversation."""
    return jsonify(service.wrapup(conversation_id))


# Topic required on resolve ------------------------------------------------------------------------------


@bp.get("/topics/rules")
@role_required("supervisor")
@documented(summary="Which channels and teams require a topic before a conversation is resolved")
def rules() -> Any:
    """List the "topic required on resolve" setting of every channel and team."""
    return jsonify(service.required_rules())


@bp.put("/channels/<int:channel_id>/topic-required")
@role_required("admin")
@validate(body=RequiredBody)
@documented(summary="Require (or not) a topic before resolving conversations of this channel")
def channel_required(channel_id: int, body: RequiredBody) -> Any:
    """Set the channel's "topic required on resolve"."""
    return jsonify(service.set_topic_required(Channel, channel_id, body.required, actor_id=current_user.id))


@bp.put("/teams/<int:team_id>/topic-required")
@role_required("admin")
@validate(body=RequiredBody)
@documented(summary="Require (or not) a topic before resolving conversations of this team")
def team_required(team_id: int, body: RequiredBody) -> Any:
    """Set the team's "topic required on resolve"."""
    return jsonify(service.set_topic_required(Team, team_id, body.required, actor_id=current_user.id))


@bp.get("/topics/suggester")
@role_required("supervisor")
@documented(summary="When the topic suggester was trained and on how many conversations")
def suggester() -> Any:
    """Describe the stored suggestion model."""
    return jsonify(model_info())


# flask topics … ------------------------------------------------------------------------------------------


@bp.cli.command("train")
def train_command() -> None:
    """Retrain the topic suggester from tagged conversations now."""
    from app.worker.jobs import retrain_suggestions

    result = retrain_suggestions(force=True)
    assert result is not None
    if not result.trained:
        raise click.ClickException(result.reason)
    click.echo(f"trained on {result.samples} conversations over {result.classes} topics → {result.path}")


@bp.cli.command("evaluate")
@click.option("--test-size", default=0.2, show_default=True, help="share of conversations held out")
@click.option("--max-samples", default=20000, show_default=True)
def evaluate_command(test_size: float, max_samples: int) -> None:
    """Print top-1/top-3 accuracy of the suggester on a held-out split of the tagged conversations."""
    from collections import Counter

    from app.services.suggest import holdout_accuracy, training_data

    texts, labels = training_data(max_samples)
    counts = Counter(labels)
    keep = [i for i, label in enumerate(labels) if counts[label] >= 2]  # a stratified split needs two of each
    if len({labels[i] for i in keep}) < 2:
        raise click.ClickException("need tagged conversations over at least two topics")
    accuracy = holdout_accuracy([texts[i] for i in keep], [labels[i] for i in keep], test_size=test_size)
    click.echo(
        f"train {accuracy.train}, test {accuracy.test}, topics {accuracy.classes}: "
        f"top-1 {accuracy.top1:.3f}, top-3 {accuracy.top3:.3f}"
    )


@bp.cli.command("rebuild-stats")
def rebuild_stats_command() -> None:
    """Rebuild every day of the report statistics (after changing ORG_TIMEZONE, or to repair)."""
    from app.services.reports import rebuild_all

    result = rebuild_all()
    click.echo(f"rebuilt {result.days} days, {result.conversations} conversations")


@bp.cli.command("spikes")
def spikes_command() -> None:
    """Evaluate spike alerts once now (the worker does this on its schedule)."""
    from app.worker.jobs import evaluate_spikes

    opened = evaluate_spikes()
    click.echo(f"alerts opened: {opened or 'none'}")
