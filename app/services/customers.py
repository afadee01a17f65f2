"""Customers: find them by any identity, create them safely under concurrency, add identities."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from app.events import CUSTOMER_UPDATED, Event, publish
from app.extensions import db
from app.models import AuditLog, Customer, CustomerIdentity, utcnow
from app.services.errors import Conflict, NotFound, ValidationFailed
from connectors.base import Identity, InvalidIdentity


def surviving_customer(customer: Customer) -> Customer:
    """Follow merges to the customer that lives on (old ids keep resolving after a merge)."""
    seen = set()
    while customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = db.session.get_one(Customer, customer.merged_into_id)
    return customer


def get_customer(customer_id: int) -> Customer:
    """Return the customer (or the one it was merged into); raise NotFound."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return surviving_customer(customer)


# Built once: constructing a statement costs more than running it, and every inbound message runs this one.
_IDENTITY_BY_VALUE = (
    select(CustomerIdentity)
    .where(CustomerIdentity.kind == bindparam("kind"), CustomerIdentity.value == bindparam("value"))
    .options(joinedload(CustomerIdentity.customer))  # every caller needs the customer: one query, not two
)


def find_identity(identity: Identity) -> CustomerIdentity | None:
    return db.session.execute(_IDENTITY_BY_VALUE, {"kind": identity.kind, "value": identity.value}).scalar()


def find_or_create_customer(
    identity: Identity, *, name: str | None = None, source: str, verified: bool = True
) -> tuple[Customer, CustomerIdentity, bool]:
    """Return the customer owning ``identity``, creating both inside the current transaction if new.

    Two first messages from the same new address can race; the loser's flush raises IntegrityError on the
    unique (kind, value) constraint, and the caller rolls back and retries, then finds the winner's row.
    """
    existing = find_identity(identity)
    if existing is not None:
        if verified and not existing.verified:
            existing.verified = True
        customer = surviving_customer(existing.customer)
        if name and not customer.name:
            customer.name = name
        return customer, existing, False
    customer = Customer(name=name or None)
    db.session.add(customer)
    record = CustomerIdentity(
        customer=customer, kind=identity.kind, value=identity.value, verified=verified, source=source
    )
    db.session.add(record)
    db.session.flush()
    return customer, record, True


def add_identity(
    customer_id: int,
    kind: str,
    value: str,
    *,
    source: str = "agent",
    verified: bool = False,
    actor_id: int | None = None,
    default_region: str | None = None,
) -> CustomerIdentity:
    """Attach another email/phone/… to a customer; refuse one that belongs to someone else."""
    customer = get_customer(customer_id)
    try:
        identity = Identity.parse(kind, value, default_region or current_app.config["DEFAULT_PHONE_REGION"])
    except InvalidIdentity as exc:
        raise ValidationFailed(str(exc), fields={"value": exc.reason}) from None
    existing = find_identity(identity)
    if existing is not None:
        if surviving_customer(existing.customer).id == customer.id:
            return existing
        raise Conflict(
            f"{identity.value} already belongs to customer {existing.customer_id}; merge the customers instead",
            code="identity_taken",
            fields={"value": f"belongs to customer {existing.customer_id}"},
        )
    record = CustomerIdentity(
        customer_id=customer.id, kind=identity.kind, value=identity.value, verified=verified, source=source
    )
    db.session.add(record)
    customer.updated_at = utcnow()
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{identity.value} was just added to another customer", code="identity_taken") from None
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="identity.added",
            target_type="customer",
            target_id=customer.id,
            data={"kind": identity.kind, "value": identity.value},
        )
    )
    from app.serializers import customer_dict

    publish(db.session, Event(CUSTOMER_UPDATED, {"customer": customer_dict(customer)}))
    db.session.commit()
    return record


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_patterns(q: str) -> list[str]:
    """Return LIKE patterns (escape ``\\``) for a search box text; a phone number also matches without spaces."""
    q = q.strip()
    if not q:
        return []
    patterns = [f"%{_escape_like(q)}%"]
    digits = re.sub(r"\D", "", q)
    # "601 234 567" or "(601) 234-567" should find the stored E.164 "+48601234567".
    if len(digits) >= 4 and digits != q and re.fullmatch(r"[\d\s()+./-]+", q):
        patterns.append(f"%{digits}%")
    return patterns


def search_customers(q: str | None, after_id: int | None = None, limit: int = 50) -> tuple[list[Customer], int | None]:
    """Return a page of live (not merged-away) customers matching ``q`` by name or identity, newest first."""
    query = select(Customer).where(Customer.merged_into_id.is_(None)).options(selectinload(Customer.identities))
    patterns = search_patterns(q or "")
    if patterns:
        clauses: list[Any] = []
        for pattern in patterns:
            clauses.append(Customer.name.ilike(pattern, escape="\\"))
            clauses.append(
                exists().where(
                    CustomerIdentity.customer_id == Customer.id, CustomerIdentity.value.ilike(pattern, escape="\\")
                )
            )
        query = query.where(or_(*clauses))
    if after_id is not None:
        query = query.where(Customer.id < after_id)
    rows = list(db.session.scalars(query.order_by(Customer.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, rows[-1].id


def update_customer(customer_id: int, *, name: str | None, actor_id: int | None = None) -> Customer:
    """Rename a customer (an old merged id renames the survivor); tell every console."""
    customer = get_customer(customer_id)
    customer.name = name or None
    customer.updated_at = utcnow()
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="customer.updated",
            target_type="customer",
            target_id=customer.id,
            data={"name": customer.name},
        )
    )
    from app.serializers import customer_dict

    publish(db.session, Event(CUSTOMER_UPDATED, {"customer": customer_dict(customer)}))
    db.session.commit()
    return customer
