"""Mail accepted over SMTP and waiting to be (or already) turned into a message: the inbound spool.

The SMTP server answers 250 once the raw mail is on disk and this row is committed; the worker parses and
ingests it afterwards. Parsing is most of the cost of a mail, so the sending MTA is not kept waiting for it,
and a mail that cannot be processed yet (a parser bug, the database briefly down) stays here to be retried
instead of being refused back to the sender.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, intpk, str32

# queued → processing → stored | rejected (a deliberate, logged refusal) | failed (gave up after retries).
SPOOL_STATUSES: tuple[str, ...] = ("queued", "processing", "stored", "rejected", "failed")


class InboundMail(Base):
    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_mail_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    received_at: Mapped[created_at]
    mail_from: Mapped[str | None] = mapped_column(String(998))  # the envelope sender ("<>" for bounces)
    recipients: Mapped[list[Any]] = mapped_column(default=list)  # envelope recipients that are ours
    raw_sha256: Mapped[str] = mapped_column(String(64))  # the raw source in the file store
    size: Mapped[int]
    status: Mapped[str32] = mapped_column(default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    # What became of it: the stored message, the bounce it recorded, or why it was refused or failed.
    outcome: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    processed_at: Mapped[dt.datetime | None]
