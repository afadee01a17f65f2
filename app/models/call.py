"""Phone calls: one row per call, shown as one live-updating item in the timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, intpk, str32

# ringing → in-progress → completed | missed | busy | failed | no-answer | voicemail
CALL_STATUSES: tuple[str, ...] = (
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "missed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
    "voicemail",
)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(3))
    status: Mapped[str32] = mapped_column(default="ringing")
    from_number: Mapped[str | None] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[created_at]
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    duration: Mapped[int | None]
    recording_url: Mapped[str | None] = mapped_column(String(1024))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_duration: Mapped[int | None]
    voicemail: Mapped[bool] = mapped_column(default=False)
    transcription: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
