"""Pre-aggregated report statistics, rebuilt per day from conversations by app.services.reports.

Days are local dates in the organisation's time zone (ORG_TIMEZONE); ``report_state`` remembers which zone
the rows were built for, so a change of zone triggers a rebuild instead of silently shifted days.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Index, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, intpk

# Sentinel ids in the channel_id / team_id columns of the aggregate tables.
ANY = -1  # the rollup over every channel (team)
NONE = 0  # conversations without a channel (team, assignee, topic)


class ReportDaily(Base):
    """One cell of the daily cube: conversations created that local day, with duration sketches.

    ``dim`` says what ``key`` is: ``topic`` (a topic id, 0 = untagged; a parent topic counts its subtopics'
    conversations too), ``agent`` (the assignee id, 0 = unassigned) or ``all`` (key 0: every conversation).
    ``channel_id``/``team_id`` hold a real id, NONE, or ANY for the rollup, so every filter combination reads
    a contiguous slice of the primary key. ``first_response``/``resolution`` are sparse log-scale histograms
    (see app.services.reports.Sketch) of seconds from creation.
    """

    __tablename__ = "report_daily"

    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    team_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    conversations: Mapped[int] = mapped_column(Integer)
    first_response: Mapped[bytes] = mapped_column(LargeBinary)
    resolution: Mapped[bytes] = mapped_column(LargeBinary)


class ReportHourly(Base):
    """Conversations created per local hour, topic (``dim`` topic) or in all (``dim`` all, key 0)."""

    __tablename__ = "report_hourly"
    __table_args__ = (Index("ix_report_hourly_day", "day"),)

    # The UTC instant the local hour starts (a half-hour zone's hours start at :30 UTC; DST is exact).
    hour_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    team_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(Date)
    conversations: Mapped[int] = mapped_column(Integer)


class ReportDirtyDay(Base):
    """A local day whose statistics must be rebuilt (queued by services, drained by the worker)."""

    __tablename__ = "report_dirty_days"

    id: Mapped[intpk]
    day: Mapped[dt.date] = mapped_column(Date, index=True)


class ReportState(Base):
    """The single row that says for which zone the statistics were built and how fresh they are."""

    __tablename__ = "report_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))
    # Conversations active since this instant have not been folded in yet.
    watermark: Mapped[dt.datetime | None]
    refreshed_at: Mapped[dt.datetime | None]
    # Set when the taxonomy or zone changed: every day must be rebuilt.
    rebuild: Mapped[bool] = mapped_column(default=False)
