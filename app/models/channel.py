"""Channels: the addresses customers reach us at (a mailbox, a Twilio number, a widget site, a form, an API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, intpk, str32, str255
from app.models.user import Team


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("kind", "address"),)

    id: Mapped[intpk]
    kind: Mapped[str32]
    name: Mapped[str255]
    # Email address, E.164 number, widget site origin…; None for api/form channels.
    address: Mapped[str | None] = mapped_column(String(320))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Weekly schedule: {"timezone": "Europe/Warsaw", "days": {"mon": [["09:00", "17:00"]], …}}; None = always open.
    business_hours: Mapped[dict[str, Any] | None]
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    enabled: Mapped[bool] = mapped_column(default=True)
    # SHA-256 of the api channel's bearer token; the token itself is shown once and never stored.
    token_hash: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[created_at]

    team: Mapped[Team | None] = relationship()
