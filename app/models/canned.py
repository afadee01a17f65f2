"""Canned responses: admin-managed reply snippets with placeholders such as ``{{customer.first_name}}``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, intpk, str255


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id: Mapped[intpk]
    # What an agent types after "/" in the reply box to find it, e.g. "refund".
    shortcut: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str255]
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime | None]
