"""Topics (a two-level taxonomy) and the topics tagged on conversations."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, intpk, str255


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[intpk]
    name: Mapped[str255]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    colour: Mapped[str] = mapped_column(String(7), default="#6b7280")
    # Archived topics keep their history in reports but are no longer offered to agents.
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at]

    parent: Mapped[Topic | None] = relationship(remote_side="Topic.id")


class ConversationTopic(Base):
    __tablename__ = "conversation_topics"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"), primary_key=True, index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Indexed: spike detection counts tags by the time they were added.
    created_at: Mapped[created_at] = mapped_column(index=True)
