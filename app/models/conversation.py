"""Conversations: one thread of contact with a customer, spanning any channels it moves across."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, intpk, str32
from app.models.customer import Customer
from app.models.user import Team, User

STATUSES: tuple[str, ...] = ("open", "pending", "snoozed", "resolved")
# Statuses in which a new inbound message continues the conversation instead of starting a new one.
ACTIVE_STATUSES: tuple[str, ...] = ("open", "pending", "snoozed")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_activity", "last_activity_at", "id"),
        Index("ix_conversations_customer_status", "customer_id", "status"),
        Index("ix_conversations_status_activity", "status", "last_activity_at", "id"),
        # Reports rebuild their statistics one day of created conversations at a time.
        Index("ix_conversations_created", "created_at"),
    )

    id: Mapped[intpk]
    number: Mapped[int | None] = mapped_column(unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str32] = mapped_column(default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    subject: Mapped[str | None] = mapped_column(String(998))
    origin_channel: Mapped[str32]
    last_channel: Mapped[str32]
    # A missed call or voicemail asks for a call back.
    call_back: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    last_message_at: Mapped[dt.datetime | None]
    last_activity_at: Mapped[created_at]
    snoozed_until: Mapped[dt.datetime | None]

    customer: Mapped[Customer] = relationship()
    assignee: Mapped[User | None] = relationship()
    team: Mapped[Team | None] = relationship()
