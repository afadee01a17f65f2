"""Messages (inbound, outbound, notes, call items, events) and their attachments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, intpk, str32

DIRECTIONS: tuple[str, ...] = ("in", "out")
KINDS: tuple[str, ...] = ("message", "note", "call", "event")
# received: inbound, stored. queued → sending → sent → delivered | undelivered | failed: the outbox.
DELIVERY_STATUSES: tuple[str, ...] = (
    "received",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "not_sent",
)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
        Index("ix_messages_customer_created", "customer_id", "created_at", "id"),
        Index("ix_messages_outbox", "delivery_status", "next_attempt_at"),
    )

    id: Mapped[intpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str32]
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    direction: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str32] = mapped_column(default="message")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The identity it came from or goes to (email address, phone, visitor).
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    subject: Mapped[str | None] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    # RFC 5322 Message-ID of the email (ours for outbound), for threading.
    message_id_header: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    delivery_status: Mapped[str32] = mapped_column(default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Auto-replies, bounces, bulk mail: stored, flagged, never answered automatically.
    automated: Mapped[bool] = mapped_column(default=False)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_path: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[created_at]
    sent_at: Mapped[dt.datetime | None]

    attachments: Mapped[list[Attachment]] = relationship(back_populates="message", order_by="Attachment.id")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    # Files live on disk under ATTACHMENTS_DIR by SHA-256, so identical files are stored once.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at]

    message: Mapped[Message] = relationship(back_populates="attachments")
