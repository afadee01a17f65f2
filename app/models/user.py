"""Staff: agents, supervisors and admins, and the teams they work in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.models.base import Base, BigId, created_at, intpk, str32, str255

ROLES: tuple[str, ...] = ("agent", "supervisor", "admin")
# Each role includes the powers of the roles before it.
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

team_members = Table(
    "team_members",
    Base.metadata,
    Column("team_id", BigId, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    email: Mapped[str255] = mapped_column(unique=True)
    name: Mapped[str255]
    password_hash: Mapped[str255]
    role: Mapped[str32] = mapped_column(default="agent")
    active: Mapped[bool] = mapped_column(default=True)
    # Where voice calls ring this agent: a phone number in E.164 and/or a Twilio Client identity.
    phone: Mapped[str | None] = mapped_column(String(32))
    client_identity: Mapped[str | None] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    # Presence: whether the agent takes new conversations and calls right now.
    available: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[dt.datetime | None]
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]

    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[intpk]
    name: Mapped[str255] = mapped_column(unique=True)
    # Team-wide rules, e.g. {"topic_required": true} (a conversation needs a topic before it is resolved).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]

    members: Mapped[list[User]] = relationship(secondary=team_members, back_populates="teams")
