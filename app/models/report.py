"""Pre-aggregated report statistics, rebuilt per local day from conversations by app.services.reports.

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


class ReportCell(Base):
    """One cell of the report cube: conversations created in one local day or week, with duration sketches.

    ``period`` is ``day`` (``start`` = that date) or ``week`` (``start`` = its Monday; the merge of its seven
    days, so a long report reads a dozen weeks instead of ninety days). ``dim`` says what ``key`` is: ``topic``
    (a topic id, 0 = untagged; a parent topic counts its subtopics' conversations too), ``agent`` (the assignee
    id, 0 = unassigned) or ``all`` (key 0). ``channel_id``/``team_id`` hold a real id, NONE, or ANY for the
    rollup, so every filter combination reads a contiguous slice of the primary key. ``first_response`` and
    ``resolution`` are sparse log-scale histograms of seconds from creation (app.services.reports).
    """

    __tablename__ = "report_cells"
    __table_args__ = (
        Index("ix_report_cells_period_start", "period", "start"),
        # Covers the volume query (counts per day), so it never reads the wide rows with their sketches.
        Index("ix_report_cells_volume", "dim", "channel_id", "team_id", "period", "start", "key", "conversations"),
    )

    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    team_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    period: Mapped[str] = mapped_column(String(4), primary_key=True)
    start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    conversations: Mapped[int] = mapped_column(Integer)
    first_response: Mapped[bytes] = mapped_column(LargeBinary)
    resolution: Mapped[bytes] = mapped_column(LargeBinary)


class ReportHourly(Base):
    """Conversations created per local hour: per topic (``dim`` topic) and in all (``dim`` all, key 0).

    The same cube as ReportCell (channel/team ids, NONE, or the ANY rollup), keyed so that one filter
    combination over a range of hours is one contiguous primary-key slice.
    """

    __tablename__ = "report_hourly"
    __table_args__ = (Index("ix_report_hourly_day", "day"),)

    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    team_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # The UTC instant the local hour starts (a half-hour zone's hours start at :30 UTC; DST is exact).
    hour_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # The local day the hour belongs to, so a day's rebuild replaces exactly its hours.
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
