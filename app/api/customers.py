"""Customers: search, profile, identities, the cross-channel timeline, and merging duplicates."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify
from flask_login import current_user
from pydantic import Field
from sqlalchemy import func, select

from app.api.auth import role_required
from app.api.conversations import PageQuery, rows
from app.api.fields import DbId, Input, Query
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from app.api.validation import documented, validate
from app.extensions import db
from app.models import Conversation, ConversationTopic, Customer, Topic
from app.serializers import conversation_ref, customer_dict, identity_dict, message_dict
from app.services.conversations import ConversationFilters, list_conversations
from app.services.customers import add_identity, get_customer, search_customers, update_customer
from app.services.merge import merge_customers, merged_customer_ids
from app.services.timeline import customer_timeline

bp = Blueprint("customers", __name__, url_prefix="/api/v1/customers")


class CustomerQuery(Query):
    q: str | None = Field(default=None, max_length=200, description="name, email, phone or other identity")
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class IdentityCreate(Input):
    kind: Literal["email", "phone", "chat", "external"]
    value: str = Field(min_length=1, max_length=320)


class CustomerPatch(Input):
    name: str | None = Field(max_length=255)


class MergeBody(Input):
    source_id: DbId = Field(description="the duplicate; it is merged into the customer in the path")


def profile_dict(customer: Customer, requested_id: int | None = None) -> dict[str, Any]:
    """The customer sidebar: identities, the topics of their conversations, and merge hints."""
    ids = merged_customer_ids(customer.id)
    data = customer_dict(customer)
    data["merged_from"] = requested_id if requested_id is not None and requested_id != customer.id else None
    data["merged_ids"] = [customer_id for customer_id in ids if customer_id != customer.id]
    data["conversation_count"] = db.session.scalar(
        select(func.count(Conversation.id)).where(Conversation.customer_id.in_(ids))
    )
    topic_counts = db.session.execute(
        select(Topic, func.count(ConversationTopic.conversation_id))
        .join(ConversationTopic, ConversationTopic.topic_id == Topic.id)
        .join(Conversation, Conversation.id == ConversationTopic.conversation_id)
        .where(Conversation.customer_id.in_(ids))
        .group_by(Topic.id)
        .order_by(func.count(ConversationTopic.conversation_id).desc(), Topic.name)
    )
    data["topics"] = [
        {"id": topic.id, "name": topic.name, "colour": topic.colour, "count": count} for topic, count in topic_counts
    ]
    return data


@bp.get("")
@role_required("agent")
@validate(query=CustomerQuery)
@documented(summary="Search customers by name or any identity (merged-away records are left out)")
def index(query: CustomerQuery) -> Any:
    """List customers matching ``q``, newest first."""
    after = decode_cursor(query.cursor, int)
    customers, next_id = search_customers(query.q, after[0] if after else None, query.limit)
    return jsonify(page([customer_dict(customer) for customer in customers], (next_id,) if next_id else None))


@bp.get("/<int:customer_id>")
@role_required("agent")
@documented(summary="One customer; a merged-away id answers with the survivor and merged_from")
def detail(customer_id: int) -> Any:
    """Show a customer, following merges."""
    return jsonify(profile_dict(get_customer(customer_id), customer_id))


@bp.patch("/<int:customer_id>")
@role_required("agent")
@validate(body=CustomerPatch)
@documented(summary="Rename a customer")
def update(customer_id: int, body: CustomerPatch) -> Any:
    """Change a customer's name."""
    customer = update_customer(customer_id, name=body.name, actor_id=current_user.id)
    return jsonify(profile_dict(customer, customer_id))


@bp.get("/<int:customer_id>/timeline")
@role_required("agent")
@validate(query=PageQuery)
@documented(summary="Every message, call and note of the customer on every channel, newest first")
def timeline(customer_id: int, query: PageQuery) -> Any:
    """Show the customer's whole history across conversations and channels."""
    before = decode_cursor(query.cursor, dt.datetime, int)
    result = customer_timeline(customer_id, before, query.limit)  # type: ignore[arg-type]
    items = []
    for message in result.messages:
        item = message_dict(message, call=result.calls.get(message.id))
        item["conversation"] = conversation_ref(result.conversations[message.conversation_id])
        items.append(item)
    return jsonify(page(items, result.next_key) | {"customer_id": result.customer.id})


@bp.get("/<int:customer_id>/conversations")
@role_required("agent")
@validate(query=PageQuery)
@documented(summary="The customer's conversations on every channel, newest activity first")
def conversations(customer_id: int, query: PageQuery) -> Any:
    """List a customer's conversations."""
    customer = get_customer(customer_id)
    after = decode_cursor(query.cursor, dt.datetime, int)
    found, next_key = list_conversations(ConversationFilters(customer_id=customer.id), after, query.limit)  # type: ignore[arg-type]
    return jsonify(page(rows(found), next_key))


@bp.post("/<int:customer_id>/identities")
@role_required("agent")
@validate(body=IdentityCreate)
@documented(summary="Add an email, phone, chat or external identity; 409 when it belongs to another customer")
def create_identity(customer_id: int, body: IdentityCreate) -> Any:
    """Attach another identity to a customer."""
    identity = add_identity(
        customer_id,
        body.kind,
        body.value,
        actor_id=current_user.id,
        default_region=current_app.config["DEFAULT_PHONE_REGION"],
    )
    return jsonify(identity_dict(identity)), 201


@bp.post("/<int:customer_id>/merge")
@role_required("agent")
@validate(body=MergeBody)
@documented(summary="Merge customer source_id into this one: identities, conversations and messages move")
def merge(customer_id: int, body: MergeBody) -> Any:
    """Merge a duplicate customer into this one."""
    target = merge_customers(customer_id, body.source_id, current_user.id)
    return jsonify(profile_dict(target))
