"""Supervisor reports: conversation volume by topic over time, first-response and resolution times.

Reading a 90-day report from a million conversations must take milliseconds, so reports never scan
conversations. ``refresh_stats`` (the worker, every minute) rebuilds the statistics of each local day that
changed into two tables:

- ``report_daily``: a cube of (dim, channel, team, day, key) cells, where dim/key is a topic, an agent or "all",
  and channel/team also take the value ANY (the rollup). Any filter combination therefore reads one contiguous
  primary-key slice of about (topics + agents) x days rows. Each cell holds the conversation count and two
  sparse log-scale histograms of seconds (first response, resolution); merging histograms gives the median and
  p90 within 4.4 % (a DDSketch-style bound) without keeping every value.
- ``report_hourly``: counts per local hour, topic, channel and team, for hour-interval reports.

Days and hours are those of the organisation's time zone (ORG_TIMEZONE), DST-correct: a day is local midnight
to local midnight (23 or 25 hours on change days), a week starts on Monday. Conversations count on the day they
were created; their durations are attributed to that day too (a cohort view: "of the conversations created
this week, how fast were they answered and resolved").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from flask import current_app
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import (
    Alert,
    Channel,
    Conversation,
    ConversationTopic,
    ReportDaily,
    ReportDirtyDay,
    ReportHourly,
    ReportState,
    Topic,
    User,
    utcnow,
)
from app.models.report import ANY, NONE
from app.services.errors import ValidationFailed

log = logging.getLogger(__name__)

INTERVALS = ("hour", "day", "week")
# Longest report per interval, so one request cannot ask for a million buckets.
MAX_SPAN = {"hour": dt.timedelta(days=31), "day": dt.timedelta(days=732), "week": dt.timedelta(days=3 * 366)}
STATE_ID = 1
PG_LOCK_KEY = 0x5B0A_7E90  # pg_advisory_xact_lock namespace for rebuilding one day


# ---------------------------------------------------------------------------------------------------------
# Time zone helpers


def org_timezone() -> ZoneInfo:
    """Return the organisation's time zone (ORG_TIMEZONE)."""
    name = current_app.config.get("ORG_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"ORG_TIMEZONE {name!r} is not a known time zone") from None


def localize(naive_local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Return the UTC instant of a wall-clock time; a time skipped by DST moves forward, a repeated one is the first."""
    aware = naive_local.replace(tzinfo=tz, fold=0)
    if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive_local:  # in a spring-forward gap
        aware = (naive_local + dt.timedelta(hours=1)).replace(tzinfo=tz)
    return aware.astimezone(dt.UTC)


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Return the UTC instant local ``day`` begins."""
    return localize(dt.datetime.combine(day, dt.time()), tz)


def local_day(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def hour_start(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Return the UTC instant of the start of the local hour holding ``instant``."""
    local = instant.astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------------------
# Duration sketches: sparse log-scale histograms, 8 bins per doubling (relative error ≤ 4.4 %).

BINS_PER_DOUBLING = 8
N_BINS = 256  # bin 0 holds durations under a second; bin 255 reaches 2^31.75 seconds (68 years)
SKETCH = np.dtype([("bin", "<u2"), ("count", "<u4")])
_GAMMA = 2 ** (1 / BINS_PER_DOUBLING)
# Each bin reports the value whose relative distance to both edges is equal (DDSketch's estimator).
BIN_VALUES = np.array(
    [0.0] + [2 * _GAMMA ** (b - 1) * _GAMMA**b / (_GAMMA ** (b - 1) + _GAMMA**b) for b in range(1, N_BINS)]
)


def bin_of(seconds: float) -> int:
    """Return the histogram bin of a duration."""
    if seconds < 1:
        return 0
    return min(N_BINS - 1, 1 + math.floor(math.log2(seconds) * BINS_PER_DOUBLING))


def encode_sketch(counts: Counter[int]) -> bytes:
    """Pack bin counts into the stored bytes (bin uint16, count uint32, little-endian, sorted by bin)."""
    if not counts:
        return b""
    array = np.array(sorted(counts.items()), dtype=np.int64)
    packed = np.empty(len(array), dtype=SKETCH)
    packed["bin"] = array[:, 0]
    packed["count"] = array[:, 1]
    return packed.tobytes()


def merge_sketches(groups: Sequence[int], blobs: Sequence[bytes], n_groups: int) -> np.ndarray:
    """Sum the sketches of many cells into one dense histogram per group: shape (n_groups, N_BINS)."""
    if not blobs:
        return np.zeros((n_groups, N_BINS), dtype=np.int64)
    joined = np.frombuffer(b"".join(blobs), dtype=SKETCH)
    lengths = np.fromiter((len(blob) // SKETCH.itemsize for blob in blobs), dtype=np.int64, count=len(blobs))
    owner = np.repeat(np.asarray(groups, dtype=np.int64), lengths)
    flat = np.bincount(
        owner * N_BINS + joined["bin"].astype(np.int64), weights=joined["count"], minlength=n_groups * N_BINS
    )
    return flat.reshape(n_groups, N_BINS).astype(np.int64)


def quantile(histogram: np.ndarray, q: float) -> float | None:
    """Return the ``q`` quantile of a dense histogram (None when it is empty)."""
    total = int(histogram.sum())
    if total == 0:
        return None
    rank = q * (total - 1)
    index = int(np.searchsorted(np.cumsum(histogram), rank, side="right"))
    return float(BIN_VALUES[min(index, N_BINS - 1)])


def duration_summary(histogram: np.ndarray) -> dict[str, Any]:
    """Return count, median and p90 (seconds, rounded) of a histogram."""
    median, p90 = quantile(histogram, 0.5), quantile(histogram, 0.9)
    return {
        "count": int(histogram.sum()),
        "median_seconds": None if median is None else round(median),
        "p90_seconds": None if p90 is None else round(p90),
    }


# ---------------------------------------------------------------------------------------------------------
# Keeping the statistics fresh


def mark_stale(session: Session, conversations: Iterable[Conversation]) -> None:
    """Queue the days of ``conversations`` for a statistics rebuild (committed with the caller's change)."""
    tz = org_timezone()
    days = {local_day(conversation.created_at, tz) for conversation in conversations if conversation.created_at}
    for day in sorted(days):
        session.add(ReportDirtyDay(day=day))


def request_full_rebuild(session: Session) -> None:
    """Ask the next refresh to rebuild every day (after a change to the topic tree)."""
    state = session.get(ReportState, STATE_ID)
    if state is not None:
        state.rebuild = True


@dataclass
class RefreshResult:
    days: int = 0
    conversations: int = 0
    full: bool = False


def refresh_stats(now: dt.datetime | None = None) -> RefreshResult:
    """Rebuild the statistics of every day that changed since the last refresh; return what was done.

    A day is rebuilt when a service queued it (tagging, resolving), when one of its conversations has been
    active since the last refresh, and always for today and yesterday (new conversations, first responses).
    A change of ORG_TIMEZONE or of the topic tree rebuilds everything.
    """
    session = db.session
    now = now or utcnow()
    tz = org_timezone()
    state = session.get(ReportState, STATE_ID)
    if state is None:
        state = ReportState(id=STATE_ID, timezone=tz.key, watermark=None, rebuild=True)
        session.add(state)
        session.commit()
    if state.rebuild or state.timezone != tz.key:
        result = rebuild_all(now)
        return result

    started = now
    max_dirty = session.scalar(select(func.max(ReportDirtyDay.id)))
    days: set[dt.date] = set()
    if max_dirty is not None:
        days.update(session.scalars(select(ReportDirtyDay.day).where(ReportDirtyDay.id <= max_dirty)))
    today = local_day(now, tz)
    days.update({today, today - dt.timedelta(days=1)})
    if state.watermark is not None:
        # A few seconds of overlap: a transaction that began before the last refresh may have committed after it.
        since = state.watermark - dt.timedelta(seconds=30)
        for (created,) in session.execute(
            select(Conversation.created_at).where(Conversation.last_activity_at >= since)
        ):
            days.add(local_day(created, tz))
    session.commit()

    result = RefreshResult()
    topic_parent = _topic_parents(session)
    for day in sorted(days):
        result.conversations += _rebuild_day(session, day, tz, topic_parent)
        result.days += 1
    if max_dirty is not None:
        session.execute(delete(ReportDirtyDay).where(ReportDirtyDay.id <= max_dirty))
    state = session.get(ReportState, STATE_ID, populate_existing=True)
    assert state is not None
    state.watermark = started
    state.refreshed_at = utcnow()
    session.commit()
    return result


def rebuild_all(now: dt.datetime | None = None) -> RefreshResult:
    """Rebuild the statistics of every day from the first conversation to today."""
    session = db.session
    now = now or utcnow()
    tz = org_timezone()
    state = session.get(ReportState, STATE_ID)
    if state is None:
        state = ReportState(id=STATE_ID, timezone=tz.key, rebuild=True)
        session.add(state)
    max_dirty = session.scalar(select(func.max(ReportDirtyDay.id)))
    first = session.scalar(select(func.min(Conversation.created_at)))
    result = RefreshResult(full=True)
    session.execute(delete(ReportDaily))
    session.execute(delete(ReportHourly))
    session.commit()
    if first is not None:
        topic_parent = _topic_parents(session)
        day = local_day(first, tz)
        last = local_day(now, tz)
        while day <= last:
            result.conversations += _rebuild_day(session, day, tz, topic_parent, fresh=True)
            result.days += 1
            day += dt.timedelta(days=1)
    if max_dirty is not None:
        session.execute(delete(ReportDirtyDay).where(ReportDirtyDay.id <= max_dirty))
    state = session.get(ReportState, STATE_ID, populate_existing=True)
    assert state is not None
    state.timezone = tz.key
    state.rebuild = False
    state.watermark = now
    state.refreshed_at = utcnow()
    session.commit()
    log.info("report statistics rebuilt: %d days, %d conversations", result.days, result.conversations)
    return result


def _topic_parents(session: Session) -> dict[int, int | None]:
    return dict(session.execute(select(Topic.id, Topic.parent_id)).tuples().all())


@dataclass
class _Cell:
    conversations: int = 0
    first_response: Counter[int] = field(default_factory=Counter)
    resolution: Counter[int] = field(default_factory=Counter)


def _rebuild_day(
    session: Session, day: dt.date, tz: ZoneInfo, topic_parent: dict[int, int | None], *, fresh: bool = False
) -> int:
    """Recompute one local day's cells from its conversations, in one transaction; return the conversations."""
    start, end = day_start(day, tz), day_start(day + dt.timedelta(days=1), tz)
    if db.dialect == "postgresql":
        # Two workers rebuilding the same day would collide on the primary keys they both insert.
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :day)"), {"ns": PG_LOCK_KEY, "day": day.toordinal()})
    rows = session.execute(
        select(
            Conversation.id,
            Conversation.channel_id,
            Conversation.team_id,
            Conversation.assignee_id,
            Conversation.created_at,
            Conversation.first_response_at,
            Conversation.resolved_at,
        ).where(Conversation.created_at >= start, Conversation.created_at < end)
    ).all()
    tags = _expanded_tags(session, [Conversation.created_at >= start, Conversation.created_at < end], topic_parent)

    daily: dict[tuple[str, int, int, int], _Cell] = defaultdict(_Cell)
    hourly: Counter[tuple[dt.datetime, str, int, int, int]] = Counter()
    for conversation_id, channel_id, team_id, assignee_id, created, first_response, resolved in rows:
        channel = channel_id or NONE
        team = team_id or NONE
        topics = tags.get(conversation_id) or {NONE}
        frt = bin_of((first_response - created).total_seconds()) if first_response else None
        res = bin_of((resolved - created).total_seconds()) if resolved else None
        keys = [("all", NONE), ("agent", assignee_id or NONE)] + [("topic", topic) for topic in topics]
        for cube_channel, cube_team in ((channel, team), (channel, ANY), (ANY, team), (ANY, ANY)):
            for dim, key in keys:
                cell = daily[(dim, cube_channel, cube_team, key)]
                cell.conversations += 1
                if frt is not None:
                    cell.first_response[frt] += 1
                if res is not None:
                    cell.resolution[res] += 1
        hour = hour_start(created, tz)
        hourly[(hour, "all", NONE, channel, team)] += 1
        for topic in topics:
            hourly[(hour, "topic", topic, channel, team)] += 1

    if not fresh:
        session.execute(delete(ReportDaily).where(ReportDaily.day == day))
        session.execute(delete(ReportHourly).where(ReportHourly.day == day))
    if daily:
        session.execute(
            insert(ReportDaily),
            [
                {
                    "dim": dim,
                    "channel_id": channel,
                    "team_id": team,
                    "day": day,
                    "key": key,
                    "conversations": cell.conversations,
                    "first_response": encode_sketch(cell.first_response),
                    "resolution": encode_sketch(cell.resolution),
                }
                for (dim, channel, team, key), cell in daily.items()
            ],
        )
    if hourly:
        session.execute(
            insert(ReportHourly),
            [
                {
                    "hour_start": hour,
                    "dim": dim,
                    "key": key,
                    "channel_id": channel,
                    "team_id": team,
                    "day": day,
                    "conversations": n,
                }
                for (hour, dim, key, channel, team), n in hourly.items()
            ],
        )
    session.commit()
    return len(rows)


# ---------------------------------------------------------------------------------------------------------
# Reading reports


@dataclass(frozen=True)
class ReportQuery:
    """What a report covers: [start, end) in UTC, bucketed by ``interval``, optionally filtered."""

    start: dt.datetime
    end: dt.datetime
    interval: str = "day"
    channel_ids: tuple[int, ...] | None = None
    team_id: int | None = None  # NONE (0) = conversations without a team


def parse_bound(value: str | None, tz: ZoneInfo, *, default: dt.datetime) -> dt.datetime:
    """Parse a report bound: a date (local midnight) or an ISO datetime (naive = local time)."""
    if not value:
        return default
    value = value.strip()
    try:
        if len(value) == 10:
            return day_start(dt.date.fromisoformat(value), tz)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{value!r} is not a date or datetime", fields={"from/to": "YYYY-MM-DD or ISO 8601"}
        ) from None
    if parsed.tzinfo is None:
        return localize(parsed, tz)
    return parsed.astimezone(dt.UTC)


def resolve_channel_filter(session: Session, value: str | None) -> tuple[int, ...] | None:
    """Turn ``channel=`` (an id or a kind such as ``email``) into channel ids; None means every channel."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return (int(value),)
    ids = tuple(session.scalars(select(Channel.id).where(Channel.kind == value).order_by(Channel.id)))
    return ids or (-2,)  # a kind with no channel matches nothing rather than everything


def _snap(query: ReportQuery, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Widen [start, end) to whole buckets: hours for hour reports, local days otherwise."""
    if query.interval == "hour":
        start = hour_start(query.start, tz)
        end = hour_start(query.end, tz)
        if end < query.end:
            end += dt.timedelta(hours=1)
        return start, end
    first = local_day(query.start, tz)
    last = local_day(query.end, tz)
    if day_start(last, tz) < query.end:
        last += dt.timedelta(days=1)
    return day_start(first, tz), day_start(last, tz)


def topic_report(query: ReportQuery) -> dict[str, Any]:
    """Return the topic report: volume per topic and bucket, top movers, durations, spike alerts."""
    if query.interval not in INTERVALS:
        raise ValidationFailed("unknown interval", fields={"interval": "one of hour, day, week"})
    tz = org_timezone()
    start, end = _snap(query, tz)
    if end <= start:
        raise ValidationFailed("the report ends before it starts", fields={"to": "must be after from"})
    if end - start > MAX_SPAN[query.interval]:
        raise ValidationFailed(
            "the report is too long for this interval",
            fields={"to": f"at most {MAX_SPAN[query.interval].days} days for interval={query.interval}"},
        )
    session = db.session
    channel_values = list(query.channel_ids) if query.channel_ids is not None else [ANY]
    team_value = query.team_id if query.team_id is not None else ANY
    buckets = _buckets(start, end, query.interval, tz)
    bucket_index = {key: i for i, (key, _) in enumerate(buckets)}
    counts: dict[int, np.ndarray] = {}
    totals = np.zeros(len(buckets), dtype=np.int64)
    previous: Counter[int] = Counter()
    previous_total = 0

    def count(dim: str, key: int, i: int, n: int) -> None:
        nonlocal totals
        if dim == "all":
            totals[i] += n
        elif dim == "topic":
            counts.setdefault(key, np.zeros(len(buckets), dtype=np.int64))[i] += n

    if query.interval == "hour":
        previous_start = start - (end - start)
        for hour, dim, key, n in _hourly_volume(session, start, end, query):
            if (i := bucket_index.get(hour)) is not None:
                count(dim, key, i, n)
        previous_rows = _hourly_totals(session, previous_start, start, query)
        # Durations come from the whole local days inside the range, plus raw conversations at the edges.
        first_full = local_day(start, tz)
        if day_start(first_full, tz) < start:
            first_full += dt.timedelta(days=1)
        end_full = local_day(end, tz)
        if end_full <= first_full:
            first_full = end_full = local_day(start, tz)
            edges = [(start, end)]
        else:
            edges = [(start, day_start(first_full, tz)), (day_start(end_full, tz), end)]
        time_rows = _daily_rows(session, first_full, end_full, channel_values, team_value)
    else:
        first_day, end_day = local_day(start, tz), local_day(end, tz)
        previous_start = day_start(first_day - (end_day - first_day), tz)
        time_rows = _daily_rows(session, first_day, end_day, channel_values, team_value)
        for dim, day, key, n, _frt, _res in time_rows:
            count(dim, key, bucket_index[_bucket_key(day, first_day, query.interval)], n)
        previous_rows = _daily_totals(session, local_day(previous_start, tz), first_day, channel_values, team_value)
        first_full, end_full, edges = first_day, end_day, []
    for dim, key, n in previous_rows:
        if dim == "all":
            previous_total += n
        else:
            previous[key] += n

    channel_rows = _channel_rows(session, first_full, end_full, query.channel_ids, team_value)
    times = _durations(session, time_rows, channel_rows, edges, query)
    topics = {topic.id: topic for topic in session.scalars(select(Topic))}
    topic_rows = []
    for key in sorted(set(counts) | {k for k, v in previous.items() if v}):
        series = counts.get(key, np.zeros(len(buckets), dtype=np.int64))
        topic = topics.get(key)
        total = int(series.sum())
        before = int(previous.get(key, 0))
        topic_rows.append(
            {
                "id": key or None,
                "name": topic.name if topic else "(no topic)",
                "parent_id": topic.parent_id if topic else None,
                "colour": topic.colour if topic else "#9ca3af",
                "archived": bool(topic.archived) if topic else False,
                "counts": series.tolist(),
                "total": total,
                "previous_total": before,
                "change": _change(total, before),
            }
        )
    topic_rows.sort(key=lambda row: (-row["total"], row["name"]))
    movers = sorted(
        (row for row in topic_rows if row["id"] is not None),
        key=lambda row: (-abs(row["total"] - row["previous_total"]), row["name"]),
    )[:10]
    grand_total = int(totals.sum())
    return {
        "from": _iso_local(start, tz),
        "to": _iso_local(end, tz),
        "previous_from": _iso_local(previous_start, tz),
        "interval": query.interval,
        "timezone": tz.key,
        "filters": {"channel_ids": list(query.channel_ids) if query.channel_ids else None, "team_id": query.team_id},
        "buckets": [_iso_local(instant, tz) for _, instant in buckets],
        "totals": {
            "counts": totals.tolist(),
            "total": grand_total,
            "previous_total": previous_total,
            "change": _change(grand_total, previous_total),
        },
        "topics": topic_rows,
        "movers": [
            {
                "topic_id": row["id"],
                "name": row["name"],
                "parent_id": row["parent_id"],
                "colour": row["colour"],
                "total": row["total"],
                "previous_total": row["previous_total"],
                "delta": row["total"] - row["previous_total"],
                "change": row["change"],
            }
            for row in movers
        ],
        "times": times,
        "alerts": _alerts_between(session, start, end),
        "stats": _stats_state(session),
    }


def _change(total: int, before: int) -> float | None:
    return None if before == 0 else round((total - before) / before, 4)


def _iso_local(instant: dt.datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).isoformat()


def _bucket_key(day: dt.date, first_day: dt.date, interval: str) -> Any:
    if interval == "week":
        return max(first_day, day - dt.timedelta(days=day.weekday()))
    return day


def _buckets(start: dt.datetime, end: dt.datetime, interval: str, tz: ZoneInfo) -> list[tuple[Any, dt.datetime]]:
    """Return (key, start instant) per bucket: UTC hour starts, or local dates (the first day of each week)."""
    buckets: list[tuple[Any, dt.datetime]] = []
    if interval == "hour":
        instant = start
        while instant < end:
            buckets.append((instant, instant))
            instant = hour_start(instant + dt.timedelta(hours=1), tz)
        return buckets
    first_day, end_day = local_day(start, tz), local_day(end, tz)
    day = first_day
    while day < end_day:
        key = _bucket_key(day, first_day, interval)
        if not buckets or buckets[-1][0] != key:
            buckets.append((key, day_start(key, tz)))
        day += dt.timedelta(days=1)
    return buckets


def _cell_filter(model: Any, channel_values: list[int], team_value: int) -> list[Any]:
    channel = (
        model.channel_id == channel_values[0] if len(channel_values) == 1 else model.channel_id.in_(channel_values)
    )
    return [channel, model.team_id == team_value]


DailyRow = tuple[str, dt.date, int, int, bytes, bytes]


def _daily_rows(
    session: Session, first_day: dt.date, end_day: dt.date, channel_values: list[int], team_value: int
) -> list[DailyRow]:
    """Return (dim, day, key, conversations, first_response, resolution) for topic, agent and "all" cells."""
    if end_day <= first_day:
        return []
    result = session.execute(
        select(
            ReportDaily.dim,
            ReportDaily.day,
            ReportDaily.key,
            ReportDaily.conversations,
            ReportDaily.first_response,
            ReportDaily.resolution,
        ).where(
            ReportDaily.dim.in_(("topic", "agent", "all")),
            *_cell_filter(ReportDaily, channel_values, team_value),
            ReportDaily.day >= first_day,
            ReportDaily.day < end_day,
        )
    )
    return [tuple(row) for row in result]  # type: ignore[misc]


def _channel_rows(
    session: Session, first_day: dt.date, end_day: dt.date, channel_ids: tuple[int, ...] | None, team_value: int
) -> list[tuple[int, int, bytes, bytes]]:
    """Return (channel_id, conversations, first_response, resolution) of each channel's "all" cells."""
    if end_day <= first_day:
        return []
    channel = ReportDaily.channel_id.in_(channel_ids) if channel_ids is not None else ReportDaily.channel_id != ANY
    result = session.execute(
        select(
            ReportDaily.channel_id, ReportDaily.conversations, ReportDaily.first_response, ReportDaily.resolution
        ).where(
            ReportDaily.dim == "all",
            ReportDaily.team_id == team_value,
            channel,
            ReportDaily.day >= first_day,
            ReportDaily.day < end_day,
        )
    )
    return [tuple(row) for row in result]  # type: ignore[misc]


def _daily_totals(
    session: Session, first_day: dt.date, end_day: dt.date, channel_values: list[int], team_value: int
) -> list[tuple[str, int, int]]:
    return [
        (dim, key, int(n))
        for dim, key, n in session.execute(
            select(ReportDaily.dim, ReportDaily.key, func.sum(ReportDaily.conversations))
            .where(
                ReportDaily.dim.in_(("topic", "all")),
                *_cell_filter(ReportDaily, channel_values, team_value),
                ReportDaily.day >= first_day,
                ReportDaily.day < end_day,
            )
            .group_by(ReportDaily.dim, ReportDaily.key)
        )
    ]


def _hourly_filter(query: ReportQuery) -> list[Any]:
    clauses = []
    if query.channel_ids is not None:
        clauses.append(ReportHourly.channel_id.in_(query.channel_ids))
    if query.team_id is not None:
        clauses.append(ReportHourly.team_id == query.team_id)
    return clauses


def _hourly_volume(
    session: Session, start: dt.datetime, end: dt.datetime, query: ReportQuery
) -> list[tuple[dt.datetime, str, int, int]]:
    return [
        (hour, dim, key, int(n))
        for hour, dim, key, n in session.execute(
            select(ReportHourly.hour_start, ReportHourly.dim, ReportHourly.key, func.sum(ReportHourly.conversations))
            .where(ReportHourly.hour_start >= start, ReportHourly.hour_start < end, *_hourly_filter(query))
            .group_by(ReportHourly.hour_start, ReportHourly.dim, ReportHourly.key)
        )
    ]


def _hourly_totals(
    session: Session, start: dt.datetime, end: dt.datetime, query: ReportQuery
) -> list[tuple[str, int, int]]:
    return [
        (dim, key, int(n))
        for dim, key, n in session.execute(
            select(ReportHourly.dim, ReportHourly.key, func.sum(ReportHourly.conversations))
            .where(ReportHourly.hour_start >= start, ReportHourly.hour_start < end, *_hourly_filter(query))
            .group_by(ReportHourly.dim, ReportHourly.key)
        )
    ]


def _durations(
    session: Session,
    rows: list[DailyRow],
    channel_rows: list[tuple[int, int, bytes, bytes]],
    edges: list[tuple[dt.datetime, dt.datetime]],
    query: ReportQuery,
) -> dict[str, Any]:
    """Merge the duration sketches by topic, agent and channel (plus raw conversations at partial-day edges)."""
    groups: dict[tuple[str, int], int] = {}
    owners: list[int] = []
    frt_blobs: list[bytes] = []
    res_blobs: list[bytes] = []
    conversations: Counter[tuple[str, int]] = Counter()

    def add(group: tuple[str, int], n: int, frt: bytes, res: bytes) -> None:
        index = groups.setdefault(group, len(groups))
        conversations[group] += n
        owners.append(index)
        frt_blobs.append(frt)
        res_blobs.append(res)

    for dim, _day, key, n, frt, res in rows:
        add((dim, key), n, frt, res)
    for channel_id, n, frt, res in channel_rows:
        add(("channel", channel_id), n, frt, res)

    raw: list[tuple[tuple[str, int], int | None, int | None]] = []
    for edge_start, edge_end in edges:
        if edge_end > edge_start:
            raw.extend(_raw_cells(session, edge_start, edge_end, query))
    for group, _frt, _res in raw:
        groups.setdefault(group, len(groups))
        conversations[group] += 1

    n_groups = len(groups)
    frt_hist = merge_sketches(owners, frt_blobs, n_groups)
    res_hist = merge_sketches(owners, res_blobs, n_groups)
    for group, frt, res in raw:
        if frt is not None:
            frt_hist[groups[group], frt] += 1
        if res is not None:
            res_hist[groups[group], res] += 1

    names = _names(session, groups)

    def entry(group: tuple[str, int]) -> dict[str, Any]:
        index = groups[group]
        return {
            "conversations": int(conversations[group]),
            "first_response": duration_summary(frt_hist[index]),
            "resolution": duration_summary(res_hist[index]),
        }

    empty = np.zeros(N_BINS, dtype=np.int64)
    result: dict[str, Any] = {
        "overall": {
            "conversations": 0,
            "first_response": duration_summary(empty),
            "resolution": duration_summary(empty),
        },
        "by_topic": [],
        "by_channel": [],
        "by_agent": [],
    }
    for group in sorted(groups, key=lambda g: (-conversations[g], g)):
        dim, key = group
        if dim == "all":
            result["overall"] = entry(group)
        elif dim == "topic":
            result["by_topic"].append({"topic_id": key or None, "name": names.get(group, "(no topic)"), **entry(group)})
        elif dim == "agent":
            result["by_agent"].append(
                {"agent_id": key or None, "name": names.get(group, "(unassigned)"), **entry(group)}
            )
        elif dim == "channel":
            channel_name, kind = names.get(group, ("(no channel)", None))
            result["by_channel"].append({"channel_id": key or None, "name": channel_name, "kind": kind, **entry(group)})
    return result


def _raw_cells(
    session: Session, start: dt.datetime, end: dt.datetime, query: ReportQuery
) -> list[tuple[tuple[str, int], int | None, int | None]]:
    """Return (group, first-response bin, resolution bin) per conversation and group, created in [start, end)."""
    conditions = [Conversation.created_at >= start, Conversation.created_at < end]
    if query.channel_ids is not None:
        conditions.append(Conversation.channel_id.in_(query.channel_ids))
    if query.team_id is not None:
        conditions.append(
            Conversation.team_id.is_(None) if query.team_id == NONE else Conversation.team_id == query.team_id
        )
    rows = session.execute(
        select(
            Conversation.id,
            Conversation.channel_id,
            Conversation.assignee_id,
            Conversation.created_at,
            Conversation.first_response_at,
            Conversation.resolved_at,
        ).where(*conditions)
    ).all()
    if not rows:
        return []
    tags = _expanded_tags(session, conditions)
    cells = []
    for conversation_id, channel_id, assignee_id, created, first_response, resolved in rows:
        frt = bin_of((first_response - created).total_seconds()) if first_response else None
        res = bin_of((resolved - created).total_seconds()) if resolved else None
        groups = [("all", NONE), ("agent", assignee_id or NONE), ("channel", channel_id or NONE)]
        groups += [("topic", topic) for topic in tags.get(conversation_id) or {NONE}]
        cells.extend((group, frt, res) for group in groups)
    return cells


def _expanded_tags(
    session: Session, conditions: list[Any], parents: dict[int, int | None] | None = None
) -> dict[int, set[int]]:
    """Return each matching conversation's topics plus their parents."""
    parents = parents if parents is not None else _topic_parents(session)
    tags: dict[int, set[int]] = defaultdict(set)
    for conversation_id, topic_id in session.execute(
        select(ConversationTopic.conversation_id, ConversationTopic.topic_id)
        .join(Conversation, Conversation.id == ConversationTopic.conversation_id)
        .where(*conditions)
    ):
        tags[conversation_id].add(topic_id)
        parent = parents.get(topic_id)
        if parent is not None:
            tags[conversation_id].add(parent)
    return tags


def _names(session: Session, groups: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for dim, key in groups:
        if key:
            wanted[dim].add(key)
    names: dict[tuple[str, int], Any] = {}
    if wanted["topic"]:
        for topic_id, name in session.execute(select(Topic.id, Topic.name).where(Topic.id.in_(wanted["topic"]))):
            names[("topic", topic_id)] = name
    if wanted["agent"]:
        for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(wanted["agent"]))):
            names[("agent", user_id)] = name
    if wanted["channel"]:
        for channel_id, name, kind in session.execute(
            select(Channel.id, Channel.name, Channel.kind).where(Channel.id.in_(wanted["channel"]))
        ):
            names[("channel", channel_id)] = (name, kind)
    return names


def _alerts_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    from app.services.spikes import alert_payload

    alerts = session.scalars(
        select(Alert)
        .where(Alert.window_start < end, (Alert.ended_at.is_(None)) | (Alert.ended_at >= start))
        .order_by(Alert.window_start, Alert.id)
        .limit(500)
    )
    return [alert_payload(session, alert) for alert in alerts]


def _stats_state(session: Session) -> dict[str, Any]:
    state = session.get(ReportState, STATE_ID)
    if state is None:
        return {"timezone": None, "refreshed_at": None, "rebuilding": True}
    refreshed = state.refreshed_at
    return {
        "timezone": state.timezone,
        "refreshed_at": None if refreshed is None else refreshed.isoformat().replace("+00:00", "Z"),
        "rebuilding": bool(state.rebuild) or state.timezone != org_timezone().key,
    }


# ---------------------------------------------------------------------------------------------------------
# CSV export

CSV_COLUMNS = (
    "section",
    "bucket_start",
    "topic_id",
    "topic",
    "channel_id",
    "channel",
    "agent_id",
    "agent",
    "conversations",
    "first_response_count",
    "first_response_median_seconds",
    "first_response_p90_seconds",
    "resolution_count",
    "resolution_median_seconds",
    "resolution_p90_seconds",
)


def report_csv(report: dict[str, Any]) -> str:
    """Flatten a topic report into one tidy CSV: a ``section`` column says which table each row belongs to.

    Sections: ``volume`` (one row per topic and bucket; topic empty = all conversations), ``topic_times``,
    ``channel_times``, ``agent_times`` and ``overall_times``.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    blank = dict.fromkeys(CSV_COLUMNS, "")
    for i, bucket in enumerate(report["buckets"]):
        writer.writerow(
            _csv_row(
                blank, section="volume", bucket_start=bucket, topic="(all)", conversations=report["totals"]["counts"][i]
            )
        )
        for topic in report["topics"]:
            writer.writerow(
                _csv_row(
                    blank,
                    section="volume",
                    bucket_start=bucket,
                    topic_id=topic["id"] or "",
                    topic=topic["name"],
                    conversations=topic["counts"][i],
                )
            )
    times = report["times"]
    writer.writerow(_csv_row(blank, section="overall_times", **_csv_durations(times["overall"])))
    for row in times["by_topic"]:
        writer.writerow(
            _csv_row(
                blank, section="topic_times", topic_id=row["topic_id"] or "", topic=row["name"], **_csv_durations(row)
            )
        )
    for row in times["by_channel"]:
        writer.writerow(
            _csv_row(
                blank,
                section="channel_times",
                channel_id=row["channel_id"] or "",
                channel=row["name"],
                **_csv_durations(row),
            )
        )
    for row in times["by_agent"]:
        writer.writerow(
            _csv_row(
                blank, section="agent_times", agent_id=row["agent_id"] or "", agent=row["name"], **_csv_durations(row)
            )
        )
    return out.getvalue()


def _csv_durations(entry: dict[str, Any]) -> dict[str, Any]:
    frt, res = entry["first_response"], entry["resolution"]
    return {
        "conversations": entry["conversations"],
        "first_response_count": frt["count"],
        "first_response_median_seconds": _blank(frt["median_seconds"]),
        "first_response_p90_seconds": _blank(frt["p90_seconds"]),
        "resolution_count": res["count"],
        "resolution_median_seconds": _blank(res["median_seconds"]),
        "resolution_p90_seconds": _blank(res["p90_seconds"]),
    }


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _csv_row(blank: dict[str, Any], **values: Any) -> list[Any]:
    row = {**blank, **values}
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection); quote it as text.
    return [
        f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in (row[c] for c in CSV_COLUMNS)
    ]
