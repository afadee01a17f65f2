"""Conversations: find them for the inbox, and change their status, assignee, team and snooze.

Every change goes through ``update_conversation`` (``set_status``, ``assign``, ``snooze`` and ``set_team`` are
shorthands for it): validate everything first, apply, commit once, then the events go out.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, func, not_, or_, select
from sqlalchemy.orm import joinedload, selectinload

from app.events import WRAPUP_REQUESTED, Event, publish
from app.extensions import db
from app.models import (
    Call,
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
from app.models.conversation import STATUSES
from app.services import reports
from app.services.customers import search_patterns, surviving_customer
from app.services.errors import NotFound, ValidationFailed
from app.services.merge import merged_customer_ids
from app.services.notify import conversation_changed

PREVIEW_CHARS = 200
WAKE_BATCH = 500
CHANGEABLE = ("status", "assignee_id", "team_id", "snoozed_until")

ActivityKey = tuple[dt.datetime, int]


@dataclass(slots=True)
class ConversationFilters:
    """Inbox filters; every one given narrows the list (they combine with AND)."""

    status: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    no_team: bool = False
    channel: str | None = None
    topic_id: int | None = None
    no_topic: bool = False
    customer_id: int | None = None
    q: str | None = None


def get_conversation(conversation_id: int) -> Conversation:
    """Return the conversation; raise NotFound."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


def _filtered(filters: ConversationFilters) -> Select[tuple[Conversation]]:
    query = select(Conversation)
    if filters.status:
        query = query.where(Conversation.status == filters.status)
    if filters.unassigned:
        query = query.where(Conversation.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        query = query.where(Conversation.assignee_id == filters.assignee_id)
    if filters.no_team:
        query = query.where(Conversation.team_id.is_(None))
    elif filters.team_id is not None:
        query = query.where(Conversation.team_id == filters.team_id)
    if filters.channel:
        used = exists().where(Message.conversation_id == Conversation.id, Message.channel == filters.channel)
        query = query.where(
            or_(Conversation.origin_channel == filters.channel, Conversation.last_channel == filters.channel, used)
        )
    if filters.no_topic:
        query = query.where(not_(exists().where(ConversationTopic.conversation_id == Conversation.id)))
    elif filters.topic_id is not None:
        # A parent topic also finds conversations tagged with one of its sub-topics.
        family = select(Topic.id).where(or_(Topic.id == filters.topic_id, Topic.parent_id == filters.topic_id))
        query = query.where(
            exists().where(ConversationTopic.conversation_id == Conversation.id, ConversationTopic.topic_id.in_(family))
        )
    if filters.customer_id is not None:
        customer = db.session.get(Customer, filters.customer_id)
        # An old, merged-away id finds the survivor's conversations; an unknown id finds none.
        ids = merged_customer_ids(surviving_customer(customer).id) if customer is not None else []
        query = query.where(Conversation.customer_id.in_(ids))
    if filters.q:
        query = query.where(_matches(filters.q))
    return query


def _matches(q: str) -> Any:
    """Subject, customer name, any identity of the customer, any message text — or the conversation number."""
    clauses: list[Any] = []
    for pattern in search_patterns(q):
        clauses += [
            Conversation.subject.ilike(pattern, escape="\\"),
            exists().where(Customer.id == Conversation.customer_id, Customer.name.ilike(pattern, escape="\\")),
            exists().where(
                CustomerIdentity.customer_id == Conversation.customer_id,
                CustomerIdentity.value.ilike(pattern, escape="\\"),
            ),
            exists().where(Message.conversation_id == Conversation.id, Message.text.ilike(pattern, escape="\\")),
        ]
    number = q.strip().lstrip("#")
    if number.isdigit() and len(number) < 18:
        clauses.append(Conversation.number == int(number))
    return or_(*clauses)


def list_conversations(
    filters: ConversationFilters, after: ActivityKey | None = None, limit: int = 50
) -> tuple[list[Conversation], ActivityKey | None]:
    """Return one page, newest activity first, and the key to continue after (None on the last page).

    Keyset pagination on (last_activity_at, id): a row never shows twice, and rows that arrive or move to
    the top while a client pages are not skipped among the rest — they are above the cursor, where the
    client learns of them from the live conversation events.
    """
    query = _filtered(filters).options(joinedload(Conversation.customer))
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < last_id),
            )
        )
    rows = list(
        db.session.scalars(
            query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1)
        ).unique()
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].last_activity_at, rows[-1].id)


def topics_of(conversation_ids: list[int]) -> dict[int, list[Topic]]:
    """Return the topics tagged on each conversation, by name."""
    result: dict[int, list[Topic]] = {conversation_id: [] for conversation_id in conversation_ids}
    if not conversation_ids:
        return result
    rows = db.session.execute(
        select(ConversationTopic.conversation_id, Topic)
        .join(Topic, Topic.id == ConversationTopic.topic_id)
        .where(ConversationTopic.conversation_id.in_(conversation_ids))
        .order_by(Topic.name, Topic.id)
    )
    for conversation_id, topic in rows:
        result[conversation_id].append(topic)
    return result


def list_details(conversation_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Return what an inbox row shows besides the conversation itself, in three queries for the whole page.

    ``topics``, ``last_message`` (a preview of the newest message, call or note) and ``channels`` (every
    channel the conversation has used).
    """
    details: dict[int, dict[str, Any]] = {
        conversation_id: {"topics": [], "last_message": None, "channels": []} for conversation_id in conversation_ids
    }
    if not conversation_ids:
        return details
    for conversation_id, topics in topics_of(conversation_ids).items():
        details[conversation_id]["topics"] = topics
    ranked = (
        select(
            Message.conversation_id,
            func.substr(Message.text, 1, PREVIEW_CHARS).label("text"),
            Message.direction,
            Message.channel,
            Message.kind,
            Message.created_at,
            func.row_number()
            .over(partition_by=Message.conversation_id, order_by=(Message.created_at.desc(), Message.id.desc()))
            .label("rank"),
        )
        .where(Message.conversation_id.in_(conversation_ids), Message.kind != "event")
        .subquery()
    )
    for row in db.session.execute(select(ranked).where(ranked.c.rank == 1)).mappings():
        details[row["conversation_id"]]["last_message"] = {
            "text": row["text"],
            "direction": row["direction"],
            "channel": row["channel"],
            "kind": row["kind"],
        }
    channels = db.session.execute(
        select(Message.conversation_id, Message.channel)
        .where(Message.conversation_id.in_(conversation_ids), Message.kind.in_(("message", "call")))
        .distinct()
    )
    for conversation_id, channel in channels:
        details[conversation_id]["channels"].append(channel)
    for detail in details.values():
        detail["channels"].sort()
    return details


def list_messages(
    conversation_id: int, after: ActivityKey | None = None, limit: int = 50, *, newest_first: bool = False
) -> tuple[list[Message], dict[int, Call], ActivityKey | None]:
    """Return a page of the conversation's messages, their calls, and the key of the next page.

    Oldest first by default; ``newest_first`` pages backwards from the latest message (what a chat view
    opens on).
    """
    get_conversation(conversation_id)
    query = select(Message).where(Message.conversation_id == conversation_id).options(selectinload(Message.attachments))
    if after is not None:
        at, last_id = after
        if newest_first:
            query = query.where(or_(Message.created_at < at, and_(Message.created_at == at, Message.id < last_id)))
        else:
            query = query.where(or_(Message.created_at > at, and_(Message.created_at == at, Message.id > last_id)))
    order = (Message.created_at.desc(), Message.id.desc()) if newest_first else (Message.created_at, Message.id)
    messages = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
    next_key = None
    if len(messages) > limit:
        messages = messages[:limit]
        next_key = (messages[-1].created_at, messages[-1].id)
    return messages, calls_for(messages), next_key


def calls_for(messages: list[Message]) -> dict[int, Call]:
    """Return the Call row behind each call item among ``messages``, by message id."""
    ids = [message.id for message in messages if message.kind == "call"]
    if not ids:
        return {}
    return {call.message_id: call for call in db.session.scalars(select(Call).where(Call.message_id.in_(ids)))}


# Changing a conversation --------------------------------------------------------------------------------


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _ensure_topic_for_resolve(conversation: Conversation) -> None:
    """Let the topics service refuse or complete a resolve (it is optional: older installs lack it)."""
    try:
        topics = importlib.import_module("app.services.topics")
    except ModuleNotFoundError as exc:
        if exc.name != "app.services.topics":
            raise
        return
    check = getattr(topics, "ensure_topic_for_resolve", None)
    if check is not None:
        check(conversation)


def update_conversation(conversation_id: int, actor_id: int | None, changes: Mapping[str, Any]) -> Conversation:
    """Change status, assignee, team and/or snooze together: all of them or none.

    ``changes`` holds only the keys to change, among ``status``, ``assignee_id`` (None unassigns),
    ``team_id`` (None clears) and ``snoozed_until`` (a future time; it implies status "snoozed").
    """
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ValidationFailed("unknown fields", fields=dict.fromkeys(unknown, "cannot be changed"))
    # Lock the row so two agents changing the same conversation apply one after the other.
    conversation = db.session.get(Conversation, conversation_id, with_for_update=True, populate_existing=True)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    now = utcnow()

    status = changes.get("status", conversation.status)
    if status not in STATUSES:
        raise ValidationFailed(f"unknown status {status!r}", fields={"status": f"one of {', '.join(STATUSES)}"})
    until = conversation.snoozed_until
    if "snoozed_until" in changes:
        until = changes["snoozed_until"]
        if until is not None:
            until = _aware(until)
            if "status" not in changes:
                status = "snoozed"
            elif status != "snoozed":
                raise ValidationFailed(
                    "snoozed_until goes with status snoozed", fields={"snoozed_until": "only with status snoozed"}
                )
            if until <= now:
                raise ValidationFailed("snooze until a future time", fields={"snoozed_until": "must be in the future"})
    if status == "snoozed":
        # Snoozing needs its own end time; re-sending status "snoozed" keeps the current one.
        if until is None or ("snoozed_until" not in changes and conversation.status != "snoozed"):
            raise ValidationFailed("a snooze needs an end", fields={"snoozed_until": "required for status snoozed"})
    else:
        until = None

    assignee_id = changes.get("assignee_id", conversation.assignee_id)
    if "assignee_id" in changes and assignee_id is not None:
        assignee = db.session.get(User, assignee_id)
        if assignee is None:
            raise NotFound(f"user {assignee_id} not found", fields={"assignee_id": "unknown user"})
        if not assignee.active:
            raise ValidationFailed(
                f"user {assignee_id} is deactivated", code="inactive_user", fields={"assignee_id": "inactive user"}
            )
    team_id = changes.get("team_id", conversation.team_id)
    if "team_id" in changes and team_id is not None and db.session.get(Team, team_id) is None:
        raise NotFound(f"team {team_id} not found", fields={"team_id": "unknown team"})

    previous = conversation.status
    changed = (
        status != previous
        or until != conversation.snoozed_until
        or assignee_id != conversation.assignee_id
        or team_id != conversation.team_id
    )
    if not changed:
        db.session.commit()  # end the locking transaction
        return conversation
    resolving = status == "resolved" and previous != "resolved"
    try:
        conversation.status = status
        conversation.snoozed_until = until
        conversation.assignee_id = assignee_id
        conversation.team_id = team_id
        if resolving:
            conversation.resolved_at = now
            _ensure_topic_for_resolve(conversation)
        elif status != "resolved":
            conversation.resolved_at = None
        db.session.flush()
        # Its day's statistics count it by status, team and agent, with its resolution time.
        reports.mark_stale(db.session, [conversation])
        conversation_changed(conversation)
        if resolving and actor_id is not None:
            publish(
                db.session,
                Event(
                    WRAPUP_REQUESTED,
                    {"conversation_id": conversation.id, "reason": "resolved"},
                    all_agents=False,
                    user_ids=(actor_id,),
                    private=True,
                ),
            )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return conversation


def set_status(
    conversation_id: int, status: str, actor_id: int | None, *, snoozed_until: dt.datetime | None = None
) -> Conversation:
    """Open, set pending, snooze (with ``snoozed_until``) or resolve a conversation."""
    changes: dict[str, Any] = {"status": status}
    if snoozed_until is not None:
        changes["snoozed_until"] = snoozed_until
    return update_conversation(conversation_id, actor_id, changes)


def assign(conversation_id: int, assignee_id: int | None, actor_id: int | None) -> Conversation:
    """Assign the conversation to an active user, or unassign it with None."""
    return update_conversation(conversation_id, actor_id, {"assignee_id": assignee_id})


def set_team(conversation_id: int, team_id: int | None, actor_id: int | None) -> Conversation:
    """Move the conversation to a team, or to none."""
    return update_conversation(conversation_id, actor_id, {"team_id": team_id})


def snooze(conversation_id: int, until: dt.datetime, actor_id: int | None) -> Conversation:
    """Hide the conversation until ``until``; it reopens then, or earlier when the customer writes."""
    return update_conversation(conversation_id, actor_id, {"status": "snoozed", "snoozed_until": until})


def wake_snoozed_conversations(now: dt.datetime | None = None) -> int:
    """Reopen every snoozed conversation whose time has come; return how many woke.

    Safe to run in several workers at once: rows another worker holds are skipped, not waited for.
    """
    now = _aware(now) if now is not None else utcnow()
    woken = 0
    while True:
        batch = list(
            db.session.scalars(
                select(Conversation)
                .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
                .order_by(Conversation.id)
                .limit(WAKE_BATCH)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        for conversation in batch:
            conversation.status = "open"
            conversation.snoozed_until = None
            # Back at the top of the inbox, as if the customer had written.
            conversation.last_activity_at = now
            conversation_changed(conversation)
        db.session.commit()
        woken += len(batch)
        if len(batch) < WAKE_BATCH:
            return woken
