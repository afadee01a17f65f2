"""Customers: find them by any identity, create them safely under concurrency, add identities."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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


def find_identity(identity: Identity) -> CustomerIdentity | None:
    return db.session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.kind == identity.kind, CustomerIdentity.value == identity.value)
    )


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
