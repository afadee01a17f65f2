"""Topics: the two-level taxonomy (topic → subtopic), tagging conversations, and "topic required on resolve".

Archiving a topic hides it from agents (it can no longer be added) but keeps every tag and every report
figure it ever had; a parent's archive covers its subtopics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select

from app.events import CONVERSATION_UPDATED, Event, publish
from app.extensions import db
from app.models import AuditLog, Channel, Conversation, ConversationTopic, Team, Topic
from app.serializers import conversation_row
from app.services import reports
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOUR = "#6b7280"
MAX_BULK = 500
MAX_TOPICS_PER_CONVERSATION = 20
CHANGEABLE = ("name", "parent_id", "colour", "archived")


class TopicRequired(DomainError):
    """Resolving this conversation needs a topic first (its channel or team says so)."""

    code = "topic_required"

    def __init__(self, conversation: Conversation) -> None:
        label = f"#{conversation.number}" if conversation.number else f"{conversation.id}"
        super().__init__(
            f"Conversation {label} needs a topic before it can be resolved.",
            fields={"topic_ids": "add at least one topic", "conversation_id": str(conversation.id)},
        )
        self.conversation_id = conversation.id
        self.number = conversation.number


# The taxonomy -------------------------------------------------------------------------------------------


def list_topics(*, include_archived: bool = True) -> list[Topic]:
    """Return every topic, parents before their subtopics, alphabetically."""
    topics = list(db.session.scalars(select(Topic).order_by(func.lower(Topic.name), Topic.id)))
    if not include_archived:
        archived = {t.id for t in topics if t.archived}
        topics = [t for t in topics if not t.archived and t.parent_id not in archived]
    parents = [t for t in topics if t.parent_id is None]
    children: dict[int, list[Topic]] = {}
    for topic in topics:
        if topic.parent_id is not None:
            children.setdefault(topic.parent_id, []).append(topic)
    ordered: list[Topic] = []
    for parent in parents:
        ordered.append(parent)
        ordered.extend(children.pop(parent.id, []))
    for orphans in children.values():  # subtopics whose parent was filtered out
        ordered.extend(orphans)
    return ordered


def get_topic(topic_id: int) -> Topic:
    """Return the topic; raise NotFound."""
    topic = db.session.get(Topic, topic_id)
    if topic is None:
        raise NotFound(f"topic {topic_id} not found")
    return topic


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("a topic needs a name", fields={"name": "must not be empty"})
    if len(name) > 255:
        raise ValidationFailed("topic name too long", fields={"name": "at most 255 characters"})
    return name


def _clean_colour(colour: str | None) -> str:
    if colour is None:
        return DEFAULT_COLOUR
    if not COLOUR.match(colour):
        raise ValidationFailed("bad colour", fields={"colour": "a hex colour like #1d4ed8"})
    return colour.lower()


def _check_parent(parent_id: int | None, topic: Topic | None = None) -> Topic | None:
    if parent_id is None:
        return None
    parent = db.session.get(Topic, parent_id)
    if parent is None:
        raise NotFound(f"topic {parent_id} not found", fields={"parent_id": "unknown topic"})
    if parent.parent_id is not None:
        raise ValidationFailed("topics have two levels", fields={"parent_id": "must be a top-level topic"})
    if topic is not None:
        if parent.id == topic.id:
            raise ValidationFailed("a topic cannot be its own parent", fields={"parent_id": "must be another topic"})
        if db.session.scalar(select(func.count()).select_from(Topic).where(Topic.parent_id == topic.id)):
            raise ValidationFailed(
                "a topic with subtopics cannot become a subtopic", fields={"parent_id": "move its subtopics first"}
            )
    return parent


def _check_unique(name: str, parent_id: int | None, exclude_id: int | None = None) -> None:
    # The database's unique (parent_id, name) does not cover top-level topics (NULLs are distinct), and
    # "Billing" vs "billing" should clash too.
    query = select(Topic.id).where(func.lower(Topic.name) == name.lower())
    query = query.where(Topic.parent_id.is_(None) if parent_id is None else Topic.parent_id == parent_id)
    if exclude_id is not None:
        query = query.where(Topic.id != exclude_id)
    if db.session.scalar(query.limit(1)) is not None:
        raise Conflict(f"a topic named {name!r} already exists here", fields={"name": "already taken"})


def create_topic(name: str, *, parent_id: int | None = None, colour: str | None = None, actor_id: int | None) -> Topic:
    """Create a topic, or a subtopic under a top-level ``parent_id``."""
    name = _clean_name(name)
    parent = _check_parent(parent_id)
    if parent is not None and parent.archived:
        raise ValidationFailed("the parent topic is archived", fields={"parent_id": "archived topic"})
    _check_unique(name, parent_id)
    topic = Topic(name=name, parent_id=parent_id, colour=_clean_colour(colour or (parent.colour if parent else None)))
    db.session.add(topic)
    db.session.flush()
    _audit(actor_id, "topic.created", topic, {"name": name, "parent_id": parent_id})
    db.session.commit()
    return topic


def update_topic(topic_id: int, changes: Mapping[str, Any], *, actor_id: int | None) -> Topic:
    """Rename, recolour, move (``parent_id``), archive or unarchive a topic."""
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ValidationFailed("unknown fields", fields=dict.fromkeys(unknown, "cannot be changed"))
    topic = get_topic(topic_id)
    before = {"name": topic.name, "parent_id": topic.parent_id, "colour": topic.colour, "archived": topic.archived}
    name = _clean_name(changes["name"]) if "name" in changes else topic.name
    parent_id = changes.get("parent_id", topic.parent_id)
    if "parent_id" in changes:
        _check_parent(parent_id, topic)
    if name != topic.name or parent_id != topic.parent_id:
        _check_unique(name, parent_id, exclude_id=topic.id)
    colour = _clean_colour(changes["colour"]) if "colour" in changes else topic.colour
    archived = bool(changes.get("archived", topic.archived))
    if not archived and topic.archived and parent_id is not None:
        parent = db.session.get(Topic, parent_id)
        if parent is not None and parent.archived:
            raise ValidationFailed("unarchive the parent topic first", fields={"archived": "the parent is archived"})

    moved = parent_id != topic.parent_id
    topic.name, topic.parent_id, topic.colour = name, parent_id, colour
    if archived and not topic.archived:
        # A parent's archive covers its subtopics: agents can no longer pick any of them.
        for child in db.session.scalars(select(Topic).where(Topic.parent_id == topic.id, Topic.archived.is_(False))):
            child.archived = True
    topic.archived = archived
    after = {"name": topic.name, "parent_id": topic.parent_id, "colour": topic.colour, "archived": topic.archived}
    if after != before:
        _audit(actor_id, "topic.updated", topic, {"before": before, "after": after})
    if moved:
        # Parent topics count their subtopics' conversations: every day's statistics change.
        reports.request_full_rebuild(db.session)
    db.session.commit()
    return topic


def _audit(actor_id: int | None, action: str, topic: Topic, data: dict[str, Any]) -> None:
    db.session.add(AuditLog(actor_id=actor_id, action=action, target_type="topic", target_id=topic.id, data=data))


# Tagging conversations ----------------------------------------------------------------------------------


def _usable_topics(topic_ids: Iterable[int], *, already: set[int] | None = None) -> list[Topic]:
    """Return the topics for ``topic_ids``; refuse unknown ones, and archived ones not already tagged."""
    wanted = list(dict.fromkeys(topic_ids))
    topics = {t.id: t for t in db.session.scalars(select(Topic).where(Topic.id.in_(wanted)))} if wanted else {}
    missing = [topic_id for topic_id in wanted if topic_id not in topics]
    if missing:
        raise NotFound(f"topic {missing[0]} not found", fields={"topic_ids": f"unknown topic {missing[0]}"})
    archived_parents = {
        t.id
        for t in db.session.scalars(select(Topic).where(Topic.id.in_({t.parent_id for t in topics.values()})))
        if t.archived
    }
    for topic in topics.values():
        if (topic.archived or topic.parent_id in archived_parents) and topic.id not in (already or set()):
            raise ValidationFailed(
                f"topic {topic.name!r} is archived", fields={"topic_ids": f"topic {topic.id} is archived"}
            )
    return [topics[topic_id] for topic_id in wanted]


def _locked_conversations(conversation_ids: Sequence[int]) -> list[Conversation]:
    wanted = list(dict.fromkeys(conversation_ids))
    found = {
        c.id: c
        for c in db.session.scalars(
            select(Conversation)
            .where(Conversation.id.in_(wanted))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    missing = [conversation_id for conversation_id in wanted if conversation_id not in found]
    if missing:
        raise NotFound(
            f"conversation {missing[0]} not found", fields={"conversation_ids": f"unknown conversation {missing[0]}"}
        )
    return [found[conversation_id] for conversation_id in wanted]


def _current(conversation_ids: Sequence[int]) -> dict[int, set[int]]:
    current: dict[int, set[int]] = {conversation_id: set() for conversation_id in conversation_ids}
    for conversation_id, topic_id in db.session.execute(
        select(ConversationTopic.conversation_id, ConversationTopic.topic_id).where(
            ConversationTopic.conversation_id.in_(conversation_ids)
        )
    ):
        current[conversation_id].add(topic_id)
    return current


def _apply(
    conversations: Sequence[Conversation],
    add: Mapping[int, Iterable[int]],
    remove: Mapping[int, Iterable[int]],
    actor_id: int | None,
) -> list[int]:
    """Add/remove tags, queue the report days, publish conversation.updated; return the changed ids."""
    from app.services.conversations import list_details

    changed: list[Conversation] = []
    for conversation in conversations:
        adds, removes = set(add.get(conversation.id, ())), set(remove.get(conversation.id, ()))
        if not adds and not removes:
            continue
        for topic_id in sorted(adds):
            db.session.add(ConversationTopic(conversation_id=conversation.id, topic_id=topic_id, added_by_id=actor_id))
        for topic_id in sorted(removes):
            row = db.session.get(ConversationTopic, (conversation.id, topic_id))
            if row is not None:
                db.session.delete(row)
        changed.append(conversation)
    if not changed:
        db.session.commit()  # end the locking transaction
        return []
    db.session.flush()
    reports.mark_stale(db.session, changed)
    details = list_details([c.id for c in changed])
    for conversation in changed:
        publish(
            db.session,
            Event(
                CONVERSATION_UPDATED,
                {"conversation": conversation_row(conversation, **details[conversation.id])},
                conversation_id=conversation.id,
                team_id=conversation.team_id,
            ),
        )
    db.session.commit()
    return [c.id for c in changed]


def set_conversation_topics(conversation_id: int, topic_ids: Sequence[int], *, actor_id: int | None) -> list[Topic]:
    """Make the conversation's topics exactly ``topic_ids``; return them."""
    if len(set(topic_ids)) > MAX_TOPICS_PER_CONVERSATION:
        raise ValidationFailed("too many topics", fields={"topic_ids": f"at most {MAX_TOPICS_PER_CONVERSATION}"})
    try:
        (conversation,) = _locked_conversations([conversation_id])
        current = _current([conversation_id])[conversation_id]
        topics = _usable_topics(topic_ids, already=current)
        wanted = {t.id for t in topics}
        _apply([conversation], {conversation_id: wanted - current}, {conversation_id: current - wanted}, actor_id)
    except Exception:
        db.session.rollback()
        raise
    return topics_of_conversation(conversation_id)


def tag_conversation(conversation_id: int, topic_id: int, *, actor_id: int | None) -> list[Topic]:
    """Add one topic to a conversation (no-op when it is there); return its topics."""
    return bulk_tag([conversation_id], add=[topic_id], remove=[], actor_id=actor_id)[conversation_id]


def untag_conversation(conversation_id: int, topic_id: int, *, actor_id: int | None) -> list[Topic]:
    """Remove one topic from a conversation (no-op when it is not there); return its topics."""
    return bulk_tag([conversation_id], add=[], remove=[topic_id], actor_id=actor_id)[conversation_id]


def bulk_tag(
    conversation_ids: Sequence[int], *, add: Sequence[int], remove: Sequence[int], actor_id: int | None
) -> dict[int, list[Topic]]:
    """Add and/or remove topics on many conversations at once: all of them or none; return their topics."""
    if not conversation_ids:
        raise ValidationFailed("no conversations", fields={"conversation_ids": "at least one"})
    if len(set(conversation_ids)) > MAX_BULK:
        raise ValidationFailed("too many conversations", fields={"conversation_ids": f"at most {MAX_BULK}"})
    if not add and not remove:
        raise ValidationFailed("nothing to do", fields={"add": "give topics to add or to remove"})
    both = set(add) & set(remove)
    if both:
        raise ValidationFailed("a topic cannot be added and removed", fields={"add": f"topic {min(both)} in both"})
    try:
        conversations = _locked_conversations(conversation_ids)
        ids = [c.id for c in conversations]
        current = _current(ids)
        _usable_topics(add)
        _usable_topics(remove, already=set(remove))
        adds = {cid: set(add) - current[cid] for cid in ids}
        for cid in ids:
            if len((current[cid] | adds[cid]) - set(remove)) > MAX_TOPICS_PER_CONVERSATION:
                raise ValidationFailed(
                    "too many topics",
                    fields={"add": f"conversation {cid} would have over {MAX_TOPICS_PER_CONVERSATION}"},
                )
        removes = {cid: set(remove) & current[cid] for cid in ids}
        _apply(conversations, adds, removes, actor_id)
    except Exception:
        db.session.rollback()
        raise
    topics = topics_by_conversation(ids)
    return topics


def topics_of_conversation(conversation_id: int) -> list[Topic]:
    """Return the conversation's topics by name."""
    return topics_by_conversation([conversation_id])[conversation_id]


def topics_by_conversation(conversation_ids: Sequence[int]) -> dict[int, list[Topic]]:
    from app.services.conversations import topics_of

    return topics_of(list(conversation_ids))


# Topic required on resolve ------------------------------------------------------------------------------


def topic_required(conversation: Conversation) -> bool:
    """Whether the conversation's channel or team requires a topic before it is resolved."""
    if conversation.channel_id is not None:
        channel = db.session.get(Channel, conversation.channel_id)
        if channel is not None and (channel.settings or {}).get("topic_required"):
            return True
    if conversation.team_id is not None:
        team = db.session.get(Team, conversation.team_id)
        if team is not None and (team.settings or {}).get("topic_required"):
            return True
    return False


def set_topic_required(
    model: type[Channel] | type[Team], target_id: int, required: bool, *, actor_id: int | None
) -> dict[str, Any]:
    """Turn "topic required on resolve" on or off for a channel or a team; return its rule."""
    target = db.session.get(Channel, target_id) if model is Channel else db.session.get(Team, target_id)
    kind = "channel" if model is Channel else "team"
    if target is None:
        raise NotFound(f"{kind} {target_id} not found")
    # Assign a new dict: an in-place change to a JSON column is not tracked.
    target.settings = {**(target.settings or {}), "topic_required": bool(required)}
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action=f"{kind}.topic_required",
            target_type=kind,
            target_id=target.id,
            data={"topic_required": bool(required)},
        )
    )
    db.session.commit()
    return _rule(target)


def _rule(target: Channel | Team) -> dict[str, Any]:
    data = {"id": target.id, "name": target.name, "topic_required": bool((target.settings or {}).get("topic_required"))}
    if isinstance(target, Channel):
        data["kind"] = target.kind
    return data


def required_rules() -> dict[str, Any]:
    """Return the "topic required on resolve" setting of every channel and team."""
    channels = db.session.scalars(select(Channel).order_by(Channel.kind, Channel.name, Channel.id))
    teams = db.session.scalars(select(Team).order_by(Team.name, Team.id))
    return {"channels": [_rule(c) for c in channels], "teams": [_rule(t) for t in teams]}


def ensure_topic_for_resolve(conversation: Conversation) -> None:
    """Refuse to resolve a conversation that needs a topic and has none (every resolve path calls this)."""
    if topic_required(conversation):
        has_topic = db.session.scalar(
            select(ConversationTopic.topic_id).where(ConversationTopic.conversation_id == conversation.id).limit(1)
        )
        if has_topic is None:
            raise TopicRequired(conversation)
    # Resolution times are part of the reports: queue the conversation's day (committed with the resolve).
    reports.mark_stale(db.session, [conversation])


def wrapup(conversation_id: int, *, limit: int = 3) -> dict[str, Any]:
    """What the wrap-up prompt shows: whether a topic is required, the current topics, suggestions."""
    from app.serializers import topic_ref
    from app.services.suggest import suggest_topics

    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return {
        "conversation_id": conversation.id,
        "topic_required": topic_required(conversation),
        "topics": [topic_ref(t) for t in topics_of_conversation(conversation.id)],
        "suggestions": suggest_topics(conversation.id, limit=limit),
    }
