"""Customers and the identities (emails, phones, chat visitors, external ids) that lead to them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, intpk, str32


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[intpk]
    name: Mapped[str | None] = mapped_column(String(255))
    # A merged-away customer keeps its row so old ids still resolve to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]
    updated_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime | None]

    identities: Mapped[list[CustomerIdentity]] = relationship(back_populates="customer", order_by="CustomerIdentity.id")


class CustomerIdentity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str32]
    value: Mapped[str] = mapped_column(String(320))
    # Verified: proven by the channel (we received mail from it, Twilio delivered from it, HMAC-signed id).
    verified: Mapped[bool] = mapped_column(default=False)
    # Where we learned it: "email", "sms", "agent", "prechat", "api", …
    source: Mapped[str32]
    # SMS opt-out (STOP/START) for phone identities.
    opted_out: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at]

    customer: Mapped[Customer] = relationship(back_populates="identities")
