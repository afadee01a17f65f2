"""Topic spike alerts: one row per episode of a topic running well above its baseline."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, intpk


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One open episode per topic, even with several workers evaluating at once.
        Index(
            "uq_alerts_open_topic",
            "topic_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_alerts_detected", "detected_at", "id"),
    )

    id: Mapped[intpk]
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"), index=True)
    # open while the topic stays elevated; closed once it has been calm for a few evaluations.
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The window whose count raised the alert.
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    detected_at: Mapped[dt.datetime]
    last_evaluated_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    observed: Mapped[int]
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    peak_observed: Mapped[int]
    baseline_windows: Mapped[int]
    calm_evaluations: Mapped[int] = mapped_column(default=0)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
