"""A customer's timeline: every message, call and note on every channel, in one stream, newest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Call, Conversation, Customer, Message
from app.services.conversations import calls_for
from app.services.customers import get_customer
from app.services.merge import merged_customer_ids

TimelineKey = tuple[dt.datetime, int]


@dataclass(slots=True)
class TimelinePage:
    customer: Customer
    messages: list[Message]
    calls: dict[int, Call]  # by message id, for the call items
    conversations: dict[int, Conversation]  # by id, for the conversations the page's items belong to
    next_key: TimelineKey | None


def customer_timeline(customer_id: int, before: TimelineKey | None = None, limit: int = 50) -> TimelinePage:
    """Return one page of the customer's (or, for a merged id, the survivor's) timeline, newest first.

    It spans every conversation and channel, and every customer record merged into this one.
    """
    customer = get_customer(customer_id)
    query = (
        select(Message)
        .where(Message.customer_id.in_(merged_customer_ids(customer.id)))
        .options(selectinload(Message.attachments))
    )
    if before is not None:
        at, last_id = before
        query = query.where(or_(Message.created_at < at, and_(Message.created_at == at, Message.id < last_id)))
    messages = list(db.session.scalars(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)))
    next_key = None
    if len(messages) > limit:
        messages = messages[:limit]
        next_key = (messages[-1].created_at, messages[-1].id)
    conversation_ids = {message.conversation_id for message in messages}
    conversations = (
        {c.id: c for c in db.session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))}
        if conversation_ids
        else {}
    )
    return TimelinePage(customer, messages, calls_for(messages), conversations, next_key)
