"""Merging customers: two records turn out to be one person, so one absorbs the other's whole history."""

from __future__ import annotations

from sqlalchemy import select, update

from app.events import CUSTOMER_MERGED, CUSTOMER_UPDATED, Event, publish
from app.extensions import db
from app.models import AuditLog, Conversation, Customer, CustomerIdentity, Message, utcnow
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.notify import conversation_changed


def merged_customer_ids(customer_id: int) -> list[int]:
    """Return ``customer_id`` and every customer merged into it, directly or through earlier merges.

    Queries by customer use this list, so even a message stored for the old id by an ingest that raced the
    merge still shows in the survivor's timeline.
    """
    ids = [customer_id]
    frontier = [customer_id]
    while frontier:
        frontier = [
            row
            for row in db.session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
            if row not in ids
        ]
        ids.extend(frontier)
    return ids


def merge_customers(target_id: int, source_id: int, actor_id: int | None) -> Customer:
    """Move the source customer's identities, conversations and messages to the target; keep the source's id
    resolving to the target; record who did it; tell every console.

    Refuses merging a customer into itself and merging from or into an already merged customer. Both rows
    are locked in id order first, so crossing merges (A into B while B into A) run one after the other and
    the second is refused instead of making a cycle.
    """
    if target_id == source_id:
        raise ValidationFailed(
            "a customer cannot be merged into itself", code="merge_into_self", fields={"source_id": "same as target"}
        )
    try:
        locked = db.session.scalars(
            select(Customer)
            .where(Customer.id.in_(sorted((target_id, source_id))))
            .order_by(Customer.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        by_id = {customer.id: customer for customer in locked}
        target, source = by_id.get(target_id), by_id.get(source_id)
        if target is None:
            raise NotFound(f"customer {target_id} not found")
        if source is None:
            raise NotFound(f"customer {source_id} not found", fields={"source_id": "unknown customer"})
        if target.merged_into_id is not None:
            raise Conflict(
                f"customer {target_id} was already merged into customer {target.merged_into_id}; merge into that one",
                code="already_merged",
            )
        if source.merged_into_id is not None:
            raise Conflict(
                f"customer {source_id} was already merged into customer {source.merged_into_id}",
                code="already_merged",
                fields={"source_id": "already merged"},
            )

        now = utcnow()
        conversation_ids = list(
            db.session.scalars(select(Conversation.id).where(Conversation.customer_id == source.id))
        )
        moved_identities = db.session.execute(  # type: ignore[attr-defined]
            update(CustomerIdentity).where(CustomerIdentity.customer_id == source.id).values(customer_id=target.id)
        ).rowcount
        db.session.execute(
            update(Conversation).where(Conversation.customer_id == source.id).values(customer_id=target.id)
        )
        moved_messages = db.session.execute(  # type: ignore[attr-defined]
            update(Message).where(Message.customer_id == source.id).values(customer_id=target.id)
        ).rowcount
        # Customers merged into the source earlier now point straight at the survivor: chains stay one hop.
        db.session.execute(
            update(Customer)
            .where(Customer.merged_into_id == source.id)
            .values(merged_into_id=target.id, updated_at=now)
        )
        source.merged_into_id = target.id
        source.updated_at = now
        if not target.name and source.name:
            target.name = source.name
        target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
        if source.last_seen_at and (target.last_seen_at is None or source.last_seen_at > target.last_seen_at):
            target.last_seen_at = source.last_seen_at
        target.updated_at = now
        db.session.add(
            AuditLog(
                actor_id=actor_id,
                action="customer.merged",
                target_type="customer",
                target_id=target.id,
                data={
                    "source_id": source.id,
                    "source_name": source.name,
                    "identities": moved_identities,
                    "conversations": len(conversation_ids),
                    "messages": moved_messages,
                },
            )
        )
        db.session.flush()
        # The bulk updates bypassed loaded objects and relationships; reload them before serialising.
        db.session.expire_all()

        from app.serializers import customer_dict

        payload = customer_dict(target)
        publish(
            db.session, Event(CUSTOMER_MERGED, {"source_id": source.id, "target_id": target.id, "customer": payload})
        )
        publish(db.session, Event(CUSTOMER_UPDATED, {"customer": payload}))
        if conversation_ids:
            moved = db.session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
            for conversation in moved:
                conversation_changed(conversation)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return target
