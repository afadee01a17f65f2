"""Supervisor reports: conversation volume by topic over time, first-response and resolution times.

Reading a 90-day report from a million conversations must take milliseconds, so reports never scan
conversations. ``refresh_stats`` (the worker, every minute) rebuilds the statistics of each local day that
changed into two tables:

- ``report_cells``: a cube of (dim, channel, team, period, start, key) cells, where dim/key is a topic, an agent
  or "all", channel/team also take the value ANY (the rollup), and period is a local day or week (the merge of
  its days). Any filter combination reads contiguous primary-key slices: volume from day cells through a
  covering index, durations from whole-week cells plus the days left over. Each cell holds the conversation
  count and two sparse log-scale histograms of seconds (first response, resolution); merging histograms gives
  the median and p90 within 4.4 % (DDSketch's bound) without keeping every value.
- ``report_hourly``: counts per local hour, topic, channel and team, for hour-interval reports.

Days and hours are those of the organisation's time zone (ORG_TIMEZONE), DST-correct: a day runs from local
midnight to local midnight (23 or 25 hours on change days), a week starts on Monday. Conversations count on
the day they were created, and their durations are attributed to that day too (a cohort view: "of the
conversations created this week, how fast were they answered and resolved").
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
from sqlalchemy import String, and_, delete, func, insert, literal, select, text, type_coerce, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from app.extensions import db
from app.models import (
    Alert,
    Channel,
    Conversation,
    ConversationTopic,
    ReportCell,
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

# Services take the request's scoped session or a plain one (tests, scripts).
DbSession = Session | scoped_session[Session]

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


def dense_to_sketch(histogram: np.ndarray) -> bytes:
    """Pack a dense histogram (N_BINS counts) into the stored sparse bytes."""
    bins = np.flatnonzero(histogram)
    packed = np.empty(len(bins), dtype=SKETCH)
    packed["bin"] = bins
    packed["count"] = histogram[bins]
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
    return quantiles(histogram[None, :], q)[0]


def quantiles(histograms: np.ndarray, q: float) -> list[float | None]:
    """Return the ``q`` quantile of each row of a (groups, N_BINS) histogram array (None for empty rows)."""
    cumulative = np.cumsum(histograms, axis=1)
    totals = cumulative[:, -1] if histograms.shape[1] else np.zeros(len(histograms))
    rank = q * (totals - 1)
    index = np.minimum((cumulative > rank[:, None]).argmax(axis=1), N_BINS - 1)
    values = BIN_VALUES[index]
    return [None if total == 0 else float(value) for total, value in zip(totals, values, strict=True)]


def duration_summaries(histograms: np.ndarray) -> list[dict[str, Any]]:
    """Return count, median and p90 (seconds, rounded) of each row of a histogram array."""
    medians, p90s = quantiles(histograms, 0.5), quantiles(histograms, 0.9)
    counts = histograms.sum(axis=1)
    return [
        {
            "count": int(count),
            "median_seconds": None if median is None else round(median),
            "p90_seconds": None if p90 is None else round(p90),
        }
        for count, median, p90 in zip(counts, medians, p90s, strict=True)
    ]


def duration_summary(histogram: np.ndarray) -> dict[str, Any]:
    """Return count, median and p90 (seconds, rounded) of a histogram."""
    return duration_summaries(histogram[None, :])[0]


# ---------------------------------------------------------------------------------------------------------
# Keeping the statistics fresh


def mark_stale(session: DbSession, conversations: Iterable[Conversation]) -> None:
    """Queue the days of ``conversations`` for a statistics rebuild (committed with the caller's change)."""
    tz = org_timezone()
    days = {local_day(conversation.created_at, tz) for conversation in conversations if conversation.created_at}
    for day in sorted(days):
        session.add(ReportDirtyDay(day=day))


def request_full_rebuild(session: DbSession) -> None:
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
    state = _ensure_state(session, tz)
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
    for monday in sorted({week_of(day) for day in days}):
        _rebuild_week(session, monday)
    if max_dirty is not None:
        session.execute(delete(ReportDirtyDay).where(ReportDirtyDay.id <= max_dirty))
    fresh = session.get(ReportState, STATE_ID, populate_existing=True)
    assert fresh is not None
    fresh.watermark = started
    state = fresh
    state.refreshed_at = utcnow()
    session.commit()
    return result


def _ensure_state(session: DbSession, tz: ZoneInfo) -> ReportState:
    """Return the state row, creating it (marked for a full rebuild) the first time."""
    state = session.get(ReportState, STATE_ID)
    if state is None:
        try:
            session.add(ReportState(id=STATE_ID, timezone=tz.key, rebuild=True))
            session.commit()
        except IntegrityError:  # another worker created it a moment ago
            session.rollback()
        state = session.get(ReportState, STATE_ID, populate_existing=True)
        assert state is not None
    return state


def rebuild_all(now: dt.datetime | None = None) -> RefreshResult:
    """Rebuild the statistics of every day from the first conversation to today."""
    session = db.session
    now = now or utcnow()
    tz = org_timezone()
    _ensure_state(session, tz)
    max_dirty = session.scalar(select(func.max(ReportDirtyDay.id)))
    first = session.scalar(select(func.min(Conversation.created_at)))
    result = RefreshResult(full=True)
    session.execute(delete(ReportCell))
    session.execute(delete(ReportHourly))
    session.commit()
    if first is not None:
        topic_parent = _topic_parents(session)
        # Only days that can hold conversations: a local day lies within a day of its UTC date (the database's
        # date() may use its session zone, hence the margin too).
        dates = {
            value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
            for value in session.scalars(select(func.date(Conversation.created_at)).distinct())
        }
        days = sorted({date + dt.timedelta(days=shift) for date in dates for shift in (-1, 0, 1)})
        # Each day and week still replaces its own rows under its lock: two workers rebuilding at once (both
        # saw the zone change) then write the same result instead of colliding.
        for day in days:
            result.conversations += _rebuild_day(session, day, tz, topic_parent)
            result.days += 1
        for monday in sorted({week_of(day) for day in days}):
            _rebuild_week(session, monday)
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


def _topic_parents(session: DbSession) -> dict[int, int | None]:
    return dict(session.execute(select(Topic.id, Topic.parent_id)).tuples().all())


@dataclass
class _Cell:
    conversations: int = 0
    first_response: Counter[int] = field(default_factory=Counter)
    resolution: Counter[int] = field(default_factory=Counter)


def _rebuild_day(session: DbSession, day: dt.date, tz: ZoneInfo, topic_parent: dict[int, int | None]) -> int:
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
        for cube_channel, cube_team in ((channel, team), (channel, ANY), (ANY, team), (ANY, ANY)):
            hourly[(hour, "all", NONE, cube_channel, cube_team)] += 1
            for topic in topics:
                hourly[(hour, "topic", topic, cube_channel, cube_team)] += 1

    session.execute(delete(ReportCell).where(ReportCell.period == "day", ReportCell.start == day))
    session.execute(delete(ReportHourly).where(ReportHourly.day == day))
    if daily:
        session.execute(
            insert(ReportCell),
            [
                {
                    "dim": dim,
                    "channel_id": channel,
                    "team_id": team,
                    "period": "day",
                    "start": day,
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


def week_of(day: dt.date) -> dt.date:
    """Return the Monday of ``day``'s week."""
    return day - dt.timedelta(days=day.weekday())


def _rebuild_week(session: DbSession, monday: dt.date) -> None:
    """Recompute a week's cells as the merge of its day cells, in one transaction."""
    if db.dialect == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :day)"), {"ns": PG_LOCK_KEY, "day": -monday.toordinal()}
        )
    table = ReportCell.__table__.c
    rows = (
        session.connection()
        .execute(
            select(
                table.dim,
                table.channel_id,
                table.team_id,
                table.key,
                table.conversations,
                table.first_response,
                table.resolution,
            ).where(table.period == "day", table.start >= monday, table.start < monday + dt.timedelta(days=7))
        )
        .all()
    )
    session.execute(delete(ReportCell).where(ReportCell.period == "week", ReportCell.start == monday))
    if rows:
        cells: dict[tuple[str, int, int, int], int] = {}
        owners = [cells.setdefault((dim, channel, team, key), len(cells)) for dim, channel, team, key, *_ in rows]
        conversations = np.bincount(owners, weights=[row[4] for row in rows], minlength=len(cells))
        first_response = merge_sketches(owners, [row[5] for row in rows], len(cells))
        resolution = merge_sketches(owners, [row[6] for row in rows], len(cells))
        session.execute(
            insert(ReportCell),
            [
                {
                    "dim": dim,
                    "channel_id": channel,
                    "team_id": team,
                    "period": "week",
                    "start": monday,
                    "key": key,
                    "conversations": int(conversations[i]),
                    "first_response": dense_to_sketch(first_response[i]),
                    "resolution": dense_to_sketch(resolution[i]),
                }
                for (dim, channel, team, key), i in cells.items()
            ],
        )
    session.commit()


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


def resolve_channel_filter(session: DbSession, value: str | None) -> tuple[int, ...] | None:
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
    cube = _Cube(query.channel_ids, query.team_id)
    buckets = _buckets(start, end, query.interval, tz)
    bucket_index = {key: i for i, (key, _) in enumerate(buckets)}

    if query.interval == "hour":
        previous_start = start - (end - start)
        # Hours come back as the driver gives them (text on SQLite, a datetime on PostgreSQL): map both forms.
        hour_bucket: dict[Any, int] = {}
        for key, i in bucket_index.items():
            hour_bucket[key] = i
            hour_bucket[key.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")] = i
        volume = [
            (dim, key, hour_bucket[hour], n)
            for hour, dim, key, n in _hourly_volume(session, start, end, cube)
            if hour in hour_bucket
        ]
        previous_rows = _hourly_totals(session, previous_start, start, cube)
        # Durations come from the whole local days inside the range, plus raw conversations at the edges.
        first_full = local_day(start, tz)
        if day_start(first_full, tz) < start:
            first_full += dt.timedelta(days=1)
        end_full = local_day(end, tz)
        if end_full <= first_full:
            first_full = end_full
            edges = [(start, end)]
        else:
            edges = [(start, day_start(first_full, tz)), (day_start(end_full, tz), end)]
    else:
        first_full, end_full = local_day(start, tz), local_day(end, tz)
        previous_start = day_start(first_full - (end_full - first_full), tz)
        day_bucket: dict[Any, int] = {}
        day = first_full
        while day < end_full:
            i = bucket_index[_bucket_key(day, first_full, query.interval)]
            day_bucket[day] = day_bucket[day.isoformat()] = i
            day += dt.timedelta(days=1)
        volume = [
            (dim, key, day_bucket[day], n) for dim, day, key, n in _day_volume(session, first_full, end_full, cube)
        ]
        previous_rows = _day_totals(session, local_day(previous_start, tz), first_full, cube)
        edges = []

    # One matrix row per series (row 0: all conversations), filled in one vectorised pass.
    series_of: dict[tuple[str, int], int] = {("all", NONE): 0}
    rows = [series_of.setdefault((dim, key), len(series_of)) for dim, key, _i, _n in volume]
    matrix = np.zeros((len(series_of), len(buckets)), dtype=np.int64)
    if volume:
        np.add.at(matrix, (np.array(rows), np.array([v[2] for v in volume])), np.array([v[3] for v in volume]))
    totals = matrix[0]
    counts = {key: matrix[i] for (dim, key), i in series_of.items() if dim == "topic"}
    previous: Counter[int] = Counter()
    previous_total = 0
    for dim, key, n in previous_rows:
        if dim == "all":
            previous_total += n
        else:
            previous[key] += n

    topics = {
        row.id: row
        for row in session.execute(select(Topic.id, Topic.name, Topic.parent_id, Topic.colour, Topic.archived))
    }
    times = _durations(session, first_full, end_full, edges, query, cube, topics)
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


CELLS = ReportCell.__table__.c


@dataclass(frozen=True)
class _Cube:
    """Which cube cells a filter reads: the channel rollup unless channels are given, likewise teams."""

    channel_ids: tuple[int, ...] | None
    team_id: int | None

    def where(self, *, every_channel: Sequence[int] | None = None) -> list[Any]:
        """Filter clauses; ``every_channel`` (all channel ids) reads each channel's own cells, not the rollup."""
        ids = self.channel_ids if self.channel_ids is not None else every_channel
        if ids is not None:
            # Equalities, never "!= ANY": each id is then a primary-key range of its own.
            channel = CELLS.channel_id == ids[0] if len(ids) == 1 else CELLS.channel_id.in_(ids)
        else:
            channel = CELLS.channel_id == ANY
        return [channel, CELLS.team_id == (self.team_id if self.team_id is not None else ANY)]


def _periods(first_day: dt.date, end_day: dt.date) -> tuple[tuple[dt.date, dt.date] | None, list[dt.date]]:
    """Split [first_day, end_day) into whole weeks (Monday range) and the days left over at either end."""
    first_monday = first_day + dt.timedelta(days=(7 - first_day.weekday()) % 7)
    end_monday = end_day - dt.timedelta(days=end_day.weekday())
    if end_monday <= first_monday:
        return None, [first_day + dt.timedelta(days=i) for i in range((end_day - first_day).days)]
    days = [first_day + dt.timedelta(days=i) for i in range((first_monday - first_day).days)]
    days += [end_monday + dt.timedelta(days=i) for i in range((end_day - end_monday).days)]
    return (first_monday, end_monday), days


def _day_volume(
    session: DbSession, first_day: dt.date, end_day: dt.date, cube: _Cube
) -> list[tuple[str, Any, int, int]]:
    """Return (dim, day, key, conversations) of topic and "all" day cells (day: a date, or ISO text)."""
    if end_day <= first_day:
        return []
    # Core rows, not ORM: thousands of cells come back, and ORM row handling would cost more than the query.
    result = session.connection().execute(
        # The date as the driver gives it (text on SQLite): parsing thousands of dates would cost more than the
        # query; buckets are looked up by either form.
        select(CELLS.dim, type_coerce(CELLS.start, String), CELLS.key, CELLS.conversations).where(
            CELLS.dim.in_(("topic", "all")),
            *cube.where(),
            CELLS.period == "day",
            CELLS.start >= first_day,
            CELLS.start < end_day,
        )
    )
    return result.all()  # type: ignore[return-value]


def _day_totals(session: DbSession, first_day: dt.date, end_day: dt.date, cube: _Cube) -> list[tuple[str, int, int]]:
    result = session.connection().execute(
        select(CELLS.dim, CELLS.key, func.sum(CELLS.conversations))
        .where(
            CELLS.dim.in_(("topic", "all")),
            *cube.where(),
            CELLS.period == "day",
            CELLS.start >= first_day,
            CELLS.start < end_day,
        )
        .group_by(CELLS.dim, CELLS.key)
    )
    return [(dim, key, int(n)) for dim, key, n in result]


def _sketch_rows(
    session: DbSession, first_day: dt.date, end_day: dt.date, cube: _Cube
) -> list[tuple[str, int, int, bytes, bytes]]:
    """Return (dim, key, conversations, first_response, resolution) for topic, agent, "all" and per-channel
    cells covering [first_day, end_day): week cells for whole weeks, day cells for the rest.

    Per-channel cells come back with dim "channel" and the channel id as key.
    """
    if end_day <= first_day:
        return []
    weeks, days = _periods(first_day, end_day)
    spans = []
    if weeks is not None:
        spans.append(and_(CELLS.period == "week", CELLS.start >= weeks[0], CELLS.start < weeks[1]))
    if days:
        spans.append(and_(CELLS.period == "day", CELLS.start.in_(days)))
    every_channel = [NONE, *session.scalars(select(Channel.id).order_by(Channel.id))]
    branches = []
    for span in spans:
        branches.append(
            select(CELLS.dim, CELLS.key, CELLS.conversations, CELLS.first_response, CELLS.resolution).where(
                CELLS.dim.in_(("topic", "agent", "all")), *cube.where(), span
            )
        )
        branches.append(
            select(
                literal("channel", String),
                CELLS.channel_id,
                CELLS.conversations,
                CELLS.first_response,
                CELLS.resolution,
            ).where(CELLS.dim == "all", *cube.where(every_channel=every_channel), span)
        )
    # One round trip; each branch is a primary-key range of its own.
    return session.connection().execute(union_all(*branches)).all()  # type: ignore[return-value]


def _hourly_filter(cube: _Cube) -> list[Any]:
    hours = ReportHourly.__table__.c
    if cube.channel_ids is not None:
        ids = cube.channel_ids
        channel = hours.channel_id == ids[0] if len(ids) == 1 else hours.channel_id.in_(ids)
    else:
        channel = hours.channel_id == ANY
    return [channel, hours.team_id == (cube.team_id if cube.team_id is not None else ANY)]


def _hourly_volume(
    session: DbSession, start: dt.datetime, end: dt.datetime, cube: _Cube
) -> list[tuple[Any, str, int, int]]:
    """Return (hour start as the driver gives it, dim, key, conversations) per hour in [start, end)."""
    hours = ReportHourly.__table__.c
    result = session.connection().execute(
        select(type_coerce(hours.hour_start, String), hours.dim, hours.key, func.sum(hours.conversations))
        .where(*_hourly_filter(cube), hours.hour_start >= start, hours.hour_start < end)
        .group_by(hours.hour_start, hours.dim, hours.key)
    )
    return [(hour, dim, key, int(n)) for hour, dim, key, n in result]


def _hourly_totals(session: DbSession, start: dt.datetime, end: dt.datetime, cube: _Cube) -> list[tuple[str, int, int]]:
    hours = ReportHourly.__table__.c
    result = session.connection().execute(
        select(hours.dim, hours.key, func.sum(hours.conversations))
        .where(*_hourly_filter(cube), hours.hour_start >= start, hours.hour_start < end)
        .group_by(hours.dim, hours.key)
    )
    return [(dim, key, int(n)) for dim, key, n in result]


def _durations(
    session: DbSession,
    first_day: dt.date,
    end_day: dt.date,
    edges: list[tuple[dt.datetime, dt.datetime]],
    query: ReportQuery,
    cube: _Cube,
    topics: dict[int, Any],
) -> dict[str, Any]:
    """Merge the duration sketches by topic, agent and channel (plus raw conversations at partial-day edges)."""
    rows = _sketch_rows(session, first_day, end_day, cube)
    groups: dict[tuple[str, int], int] = {}
    owners = [groups.setdefault((row[0], row[1]), len(groups)) for row in rows]
    raw: list[tuple[tuple[str, int], int | None, int | None]] = []
    for edge_start, edge_end in edges:
        if edge_end > edge_start:
            raw.extend(_raw_cells(session, edge_start, edge_end, query))
    for group, _frt, _res in raw:
        groups.setdefault(group, len(groups))

    n_groups = len(groups)
    conversations = np.bincount(owners, weights=[row[2] for row in rows], minlength=n_groups).astype(np.int64)
    frt_hist = merge_sketches(owners, [row[3] for row in rows], n_groups)
    res_hist = merge_sketches(owners, [row[4] for row in rows], n_groups)
    for group, frt, res in raw:
        index = groups[group]
        conversations[index] += 1
        if frt is not None:
            frt_hist[index, frt] += 1
        if res is not None:
            res_hist[index, res] += 1

    names = _names(session, groups, topics)
    first_responses = duration_summaries(frt_hist)
    resolutions = duration_summaries(res_hist)

    def entry(index: int) -> dict[str, Any]:
        return {
            "conversations": int(conversations[index]),
            "first_response": first_responses[index],
            "resolution": resolutions[index],
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
    for group, index in sorted(groups.items(), key=lambda item: (-conversations[item[1]], item[0])):
        dim, key = group
        if dim == "all":
            result["overall"] = entry(index)
        elif dim == "topic":
            result["by_topic"].append({"topic_id": key or None, "name": names.get(group, "(no topic)"), **entry(index)})
        elif dim == "agent":
            result["by_agent"].append(
                {"agent_id": key or None, "name": names.get(group, "(unassigned)"), **entry(index)}
            )
        elif dim == "channel":
            channel_name, kind = names.get(group, ("(no channel)", None))
            result["by_channel"].append({"channel_id": key or None, "name": channel_name, "kind": kind, **entry(index)})
    return result


def _raw_cells(
    session: DbSession, start: dt.datetime, end: dt.datetime, query: ReportQuery
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
    cells: list[tuple[tuple[str, int], int | None, int | None]] = []
    for conversation_id, channel_id, assignee_id, created, first_response, resolved in rows:
        frt = bin_of((first_response - created).total_seconds()) if first_response else None
        res = bin_of((resolved - created).total_seconds()) if resolved else None
        groups = [("all", NONE), ("agent", assignee_id or NONE), ("channel", channel_id or NONE)]
        groups += [("topic", topic) for topic in tags.get(conversation_id) or {NONE}]
        cells.extend((group, frt, res) for group in groups)
    return cells


def _expanded_tags(
    session: DbSession, conditions: list[Any], parents: dict[int, int | None] | None = None
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


def _names(session: DbSession, groups: Iterable[tuple[str, int]], topics: dict[int, Any]) -> dict[tuple[str, int], Any]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for dim, key in groups:
        if key:
            wanted[dim].add(key)
    names: dict[tuple[str, int], Any] = {}
    for topic_id in wanted["topic"]:
        if topic_id in topics:
            names[("topic", topic_id)] = topics[topic_id].name
    if wanted["agent"]:
        for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(wanted["agent"]))):
            names[("agent", user_id)] = name
    if wanted["channel"]:
        for channel_id, name, kind in session.execute(
            select(Channel.id, Channel.name, Channel.kind).where(Channel.id.in_(wanted["channel"]))
        ):
            names[("channel", channel_id)] = (name, kind)
    return names


def _alerts_between(session: DbSession, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    from app.services.spikes import alert_payload

    alerts = session.scalars(
        select(Alert)
        .where(Alert.window_start < end, (Alert.ended_at.is_(None)) | (Alert.ended_at >= start))
        .order_by(Alert.window_start, Alert.id)
        .limit(500)
    )
    return [alert_payload(session, alert) for alert in alerts]


def _stats_state(session: DbSession) -> dict[str, Any]:
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
