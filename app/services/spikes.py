"""Topic spike detection: is a topic's count in the recent windows more than its baseline can explain?

The detector is pure (``assess``, ``assess_windows``, ``robust_level``, ``EpisodeTracker``) so
``bench/spikes.py`` can replay weeks of data through it; ``evaluate_spikes`` is the worker job that feeds it
from the database and stores alerts.

Model. Every ``every_minutes`` (10) each topic's count is tested in a ladder of windows ending now: the main
window (60 min), a short one (30 min) for topics busy enough to fill it, and doublings of the main one up to
``long_window_minutes`` (120, 240 min), which add up a quiet topic's sustained rise that one hour cannot prove.
Each window's count is compared with

    expected = share x traffic x level

- ``share``: the topic's share of all tagged conversations around the same local time of day (the window
  widened by ``band_minutes`` on each side, wall-clock time, so DST-safe) on the days of the previous
  ``baseline_weeks`` weeks. By default every day counts (``share_days`` = 7): a topic's share of the traffic
  varies far less between weekdays than the volume does, and four weeks of days pin a quiet topic's share
  down where four same-weekday windows cannot (``share_days`` = 1 uses the same weekday only).
- ``traffic``: all tagged conversations in the same window on the same weekday of the previous weeks (the
  median, so one week's incident in another topic does not inflate it).
- ``level``: how busy today is. Over the last ``level_hours`` every other topic's count is set against the
  same hours of the baseline weeks; topics whose own count the common level cannot explain are left out
  (``level_outlier_alpha``), so a spike elsewhere, today or in a baseline week, cannot hide this one; the
  rest are pooled and shrunk towards 1 by ``level_prior`` pseudo-conversations.

With S of the topic's conversations in the baseline bands the share has a Gamma(S + 1/2, ·) posterior, so the
window's count is negative binomial; ``dispersion`` widens it for the day-to-day wobble a topic has beyond
Poisson noise. A window is a spike when its upper-tail probability is below ``alpha`` split between the
windows tested (Bonferroni), the main window holds at least ``min_count`` conversations, and the count is at
least ``min_ratio`` times the expectation. Baseline days inside an earlier alert episode of the topic are
skipped. An episode opens one alert and stays open while any window is elevated (p < ``end_alpha``); it
closes after ``end_after`` calm evaluations.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import statistics
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger(__name__)

# Services take the request's scoped session or a plain one (tests, scripts).
DbSession = Session | scoped_session[Session]

# Shape of the Gamma prior on a topic's rate (Jeffreys-like); keeps a zero baseline from meaning "never".
PRIOR_SHAPE = 0.5


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    """Thresholds of the detector; every field can be set from the app config (``SPIKE_*``)."""

    window_minutes: int = 60
    # Besides the main window: a shorter one flags a busy topic's jump sooner (tested only when the topic
    # normally fills it with ``min_count``); longer ones, doubling from the main one up to
    # ``long_window_minutes``, add up a quiet topic's sustained rise (0 = off). Alpha is split between them.
    short_window_minutes: int = 30
    long_window_minutes: int = 240
    every_minutes: int = 10
    baseline_weeks: int = 4
    min_baseline_weeks: int = 2
    # The topic's share of the traffic is counted over the window widened by this much on each side, on
    # ``share_days`` days of each baseline week (7 = every day, 1 = the same weekday only).
    band_minutes: int = 120
    share_days: int = 7
    alpha: float = 1e-4
    end_alpha: float = 0.05
    min_count: int = 7
    min_ratio: float = 1.5
    dispersion: float = 0.02
    end_after: int = 2
    # Today's business across the other topics scales each baseline; measured over this many hours, leaving
    # out topics that are themselves off (two-sided test at ``level_outlier_alpha``), and shrunk towards 1
    # by ``level_prior`` pseudo-conversations (0 hours = off).
    level_hours: int = 6
    level_prior: float = 50.0
    level_outlier_alpha: float = 0.01

    @property
    def every(self) -> dt.timedelta:
        """How often the worker evaluates."""
        return dt.timedelta(minutes=self.every_minutes)

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.window_minutes)

    @property
    def windows(self) -> tuple[dt.timedelta, ...]:
        """The window lengths tested at each evaluation, the main window first."""
        lengths = [self.window_minutes]
        if 0 < self.short_window_minutes < self.window_minutes:
            lengths.append(self.short_window_minutes)
        longer = 2 * self.window_minutes
        while longer < self.long_window_minutes:
            lengths.append(longer)
            longer *= 2
        if self.long_window_minutes > self.window_minutes:
            lengths.append(self.long_window_minutes)
        return tuple(dt.timedelta(minutes=m) for m in lengths)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SpikeSettings:
        """Read ``SPIKE_WINDOW_MINUTES``, ``SPIKE_ALPHA``… from the Flask config or else the environment."""
        defaults = cls()
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = "SPIKE_" + item.name.upper()
            raw = config.get(name, os.environ.get(name))
            if raw is not None and raw != "":
                values[item.name] = type(getattr(defaults, item.name))(raw)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one window of one topic."""

    observed: int
    expected: float
    p_value: float
    baseline_windows: int
    anomalous: bool
    elevated: bool
    window_minutes: int = 0

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Window:
    """One window of one topic to judge: its count now and what the baseline counted for it.

    ``baseline`` holds the topic's count in each baseline day's band (or each baseline week's window);
    ``exposure`` is how many windows' worth of traffic those counts cover (see ``band_exposure``), by
    default one per count.
    """

    minutes: int
    observed: int
    baseline: Sequence[int]
    exposure: float | None = None

    def expected(self, level: float = 1.0) -> float:
        """The window's expected count: the posterior mean rate per window, scaled by today's level."""
        windows = self.exposure if self.exposure is not None else float(len(self.baseline))
        return level * (sum(self.baseline) + PRIOR_SHAPE) / windows if windows > 0 else math.inf


def _nb_upper_tail(observed: float, mean: float, size: float) -> float:
    """P(X ≥ observed) for a negative binomial with this mean and size (shape)."""
    # Imported here: web processes serialise alerts from this module but never test for spikes.
    from scipy.special import betainc

    if observed <= 0:
        return 1.0
    # P(X ≥ k) of NB(size, p) is the regularised incomplete beta I_{1-p}(k, size), 1 - p = mean/(size+mean).
    return float(betainc(observed, size, mean / (size + mean)))


def tail_probability(
    observed: int, baseline_total: float, baseline_windows: float, dispersion: float, level: float = 1.0
) -> float:
    """Return P(X ≥ observed) for the next window given ``baseline_total`` over ``baseline_windows`` windows.

    ``baseline_windows`` may be fractional (bands holding 41.7 windows' worth of traffic); ``level`` scales
    the expectation by how busy the day is across the other topics.
    """
    shape_posterior = baseline_total + PRIOR_SHAPE
    mean = level * shape_posterior / baseline_windows
    # Negative binomial with variance mean + mean²·(1/shape + dispersion): rate uncertainty plus overdispersion.
    size = 1.0 / (1.0 / shape_posterior + dispersion)
    return _nb_upper_tail(observed, mean, size)


def band_exposure(band_traffic: Sequence[int], window_traffic: Sequence[int], band_ratio: float) -> float:
    """Return how many windows' worth of traffic the baseline bands hold.

    ``band_traffic`` is all topics' conversations in each baseline day's band, ``window_traffic`` those in the
    window on each baseline week's same weekday (the median is the window's usual traffic): a topic counted
    over the bands then predicts the window by its share of the traffic. A tenth of a conversation per day,
    spread evenly over time (``band_ratio`` = band length / window length), keeps a silent night finite.
    """
    usual = statistics.median(window_traffic) if window_traffic else 0.0
    return (sum(band_traffic) + 0.1 * len(band_traffic) * band_ratio) / (usual + 0.1)


def level_factor(observed_total: float, expected_total: float, settings: SpikeSettings) -> float:
    """Return how busy today is compared with the baseline weeks, shrunk towards 1 when counts are few."""
    prior = settings.level_prior
    return (observed_total + prior) / (expected_total + prior)


def robust_level(today: Sequence[float], usual: Sequence[float], settings: SpikeSettings) -> float:
    """Return today's level from other topics' counts over the level span against their usual counts then.

    A topic whose own count the pooled level cannot explain (two-sided negative-binomial test at
    ``level_outlier_alpha``) is left out and the level pooled again: another topic's incident, today or in a
    baseline week, says nothing about how busy the day is.
    """
    import numpy as np
    from scipy.special import betainc

    counts, normal = np.asarray(today, dtype=float), np.asarray(usual, dtype=float)
    size = 1.0 / max(settings.dispersion, 1e-6)
    keep = np.ones(len(counts), dtype=bool)
    for _ in range(2):
        level = level_factor(counts[keep].sum(), normal[keep].sum(), settings)
        mean = np.maximum(level * normal, 1e-9)
        # P(X ≥ k) = I_{1-p}(k, size) as in ``_nb_upper_tail``; P(X ≤ k) = 1 - P(X ≥ k + 1).
        upper = np.where(counts > 0, betainc(np.maximum(counts, 1e-9), size, mean / (size + mean)), 1.0)
        lower = 1.0 - betainc(counts + 1, size, mean / (size + mean))
        keep = np.minimum(upper, lower) >= settings.level_outlier_alpha
    return level_factor(float(counts[keep].sum()), float(normal[keep].sum()), settings)


def assess(
    observed: int,
    baseline: Sequence[int],
    settings: SpikeSettings,
    tests: int = 1,
    level: float = 1.0,
    exposure: float | None = None,
) -> Assessment | None:
    """Judge ``observed`` against the ``baseline`` counts; None when history is too short to judge.

    ``tests`` is how many windows are tested at once; alpha is split between them (Bonferroni). ``level``
    (see ``robust_level``) scales the baseline by today's overall business. ``exposure`` is how many windows'
    worth of traffic the baseline counts cover (default: one per count).
    """
    if len(baseline) < settings.min_baseline_weeks:
        return None
    total = float(sum(baseline))
    windows = exposure if exposure is not None else float(len(baseline))
    expected = level * (total + PRIOR_SHAPE) / windows
    p_value = tail_probability(observed, total, windows, settings.dispersion, level)
    anomalous = (
        p_value < settings.alpha / tests
        and observed >= settings.min_count
        and observed >= settings.min_ratio * expected
    )
    elevated = p_value < settings.end_alpha and observed > expected
    return Assessment(observed, expected, p_value, len(baseline), anomalous, elevated)


def assess_windows(
    observations: Sequence[Window | tuple[int, int, Sequence[int]]], settings: SpikeSettings, level: float = 1.0
) -> Assessment | None:
    """Judge several windows at once (``Window`` or ``(minutes, observed, baseline)``), the main window first.

    An anomalous window wins (the main one first, whose numbers read most naturally); otherwise the most
    elevated one, so an open episode stays open while any window is still high.
    """
    windows = [w if isinstance(w, Window) else Window(*w) for w in observations]
    main = windows[0]
    # A window shorter than the main one speaks only for a topic that normally fills it: for a quiet topic
    # it could only add chance bursts of a few conversations.
    tested = [
        w
        for w in windows
        if w.minutes >= main.minutes
        or (len(w.baseline) >= settings.min_baseline_weeks and w.expected(level) >= settings.min_count)
    ]
    verdicts = []
    for window in tested:
        verdict = assess(window.observed, window.baseline, settings, len(tested), level, window.exposure)
        if verdict is not None:
            verdicts.append(replace(verdict, window_minutes=window.minutes))
    if not verdicts:
        return None
    # The main window itself must be busy: a long window adding up a quiet night's stragglers is no spike.
    if main.observed >= settings.min_count:
        for verdict in verdicts:
            if verdict.anomalous:
                return verdict
    quiet = [replace(v, anomalous=False) for v in verdicts]
    return min(quiet, key=lambda v: v.p_value)


@dataclass(slots=True)
class Episode:
    """An open run of anomalous windows for one topic."""

    started_at: dt.datetime
    first: Assessment
    peak: Assessment
    calm: int = 0


@dataclass(slots=True)
class EpisodeTracker:
    """Turn per-window assessments into one alert per episode (pure; the worker mirrors it with Alert rows)."""

    settings: SpikeSettings
    open: dict[Any, Episode] = field(default_factory=dict)

    def step(self, key: Any, now: dt.datetime, verdict: Assessment | None) -> str | None:
        """Feed one evaluation; return "opened", "closed" or None."""
        episode = self.open.get(key)
        if episode is None:
            if verdict is not None and verdict.anomalous:
                self.open[key] = Episode(now - self.settings.window, verdict, verdict)
                return "opened"
            return None
        if verdict is not None and (verdict.elevated or verdict.anomalous):
            episode.calm = 0
            if verdict.observed > episode.peak.observed:
                episode.peak = verdict
            return None
        episode.calm += 1
        if episode.calm >= self.settings.end_after:
            del self.open[key]
            return "closed"
        return None


def baseline_windows(
    window_end: dt.datetime, settings: SpikeSettings, tz: ZoneInfo, length: dt.timedelta | None = None
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Return the same local-time window in each of the previous weeks, as UTC (start, end) pairs."""
    length = length or settings.window
    local_end = window_end.astimezone(tz)
    windows = []
    for week in range(1, settings.baseline_weeks + 1):
        # Wall-clock arithmetic in the org's zone, so 9:00 stays 9:00 across a DST change.
        end = (local_end - dt.timedelta(days=7 * week)).replace(tzinfo=None)
        end_utc = _localize(end, tz)
        windows.append((end_utc - length, end_utc))
    return windows


def baseline_days(window_end: dt.datetime, settings: SpikeSettings, tz: ZoneInfo) -> list[tuple[int, dt.datetime]]:
    """Return (days back, UTC time) of the same local time on the days whose traffic share is pooled.

    These are the same weekday of each baseline week and the days around it, ``share_days`` in all per week
    (7 = every day of the baseline weeks); a multiple of seven days back is the same weekday.
    """
    local_end = window_end.astimezone(tz).replace(tzinfo=None)
    width = min(max(settings.share_days, 1), 7)
    offsets = range(-(width // 2), width - width // 2)
    backs = sorted({7 * week + offset for week in range(1, settings.baseline_weeks + 1) for offset in offsets})
    # Wall-clock arithmetic in the org's zone, so 9:00 stays 9:00 across a DST change.
    return [(back, _localize(local_end - dt.timedelta(days=back), tz)) for back in backs]


def _localize(naive_local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Attach ``tz`` to a wall-clock time; a time skipped by DST moves forward, a repeated one takes fold 0."""
    aware = naive_local.replace(tzinfo=tz)
    roundtrip = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive_local:  # in a spring-forward gap
        aware = (naive_local + dt.timedelta(hours=1)).replace(tzinfo=tz)
    return aware.astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------------------
# The worker job: read counts from the database, keep one Alert per episode, publish alert.created.


def evaluate_spikes(session: DbSession, now: dt.datetime, settings: SpikeSettings, tz: ZoneInfo) -> list[int]:
    """Assess every active topic for the windows ending at ``now``; return the ids of alerts opened.

    Counts are of conversations tagged in each window (see ``tag_times``); a parent topic counts its
    subtopics' conversations too. Open alerts stay open while their topic is elevated and close after
    ``end_after`` calm evaluations.
    """
    from app.events import ALERT_CREATED, Event, publish
    from app.models.alert import Alert
    from app.models.topic import Topic

    topics = session.execute(select(Topic.id, Topic.parent_id, Topic.created_at, Topic.archived)).all()
    if not topics:
        return []
    parent_of = {t.id: t.parent_id for t in topics if t.parent_id is not None}
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    archived = {t.id for t in topics if t.archived}
    active = [t for t in topics if t.id not in archived and parent_of.get(t.id) not in archived]
    # The level compares leaf topics (a parent would count its subtopics twice).
    leaves = [t.id for t in topics if t.id not in children]
    lengths = [dt.timedelta(minutes=int(w.total_seconds() // 60)) for w in settings.windows]
    pad = dt.timedelta(minutes=settings.band_minutes)
    longest = max(lengths)
    level_span = dt.timedelta(hours=settings.level_hours)
    reach = max(longest + pad, level_span)

    recent = _Tags(tag_times(session, [(now - reach, now)], parent_of))
    days = baseline_days(now, settings, tz)
    # One read for every baseline day, each around the same local time, reaching ``pad`` past the window's end.
    history = _Tags(tag_times(session, [(end - reach, end + pad) for _, end in days], parent_of))
    weeks = [i for i, (back, _) in enumerate(days) if back % 7 == 0]
    past = _alert_ranges(session, (days[-1][1] if days else now) - reach, now)

    # All topics' traffic in each baseline day's band and each baseline week's window, per window length.
    band_traffic = {n: [history.total(end - n - pad, end + pad) for _, end in days] for n in lengths}
    window_traffic = {n: {i: history.total(days[i][1] - n, days[i][1]) for i in weeks} for n in lengths}
    leaf_today = {leaf: recent.count(leaf, now - level_span, now) for leaf in leaves}
    leaf_usual = {leaf: {i: history.count(leaf, days[i][1] - level_span, days[i][1]) for i in weeks} for leaf in leaves}

    verdicts: dict[int, Assessment | None] = {}
    for topic in active:
        usable = [
            i
            for i, (_, end) in enumerate(days)
            if end - longest - pad >= topic.created_at
            and not _overlaps(past.get(topic.id, ()), (end - longest - pad, end + pad))
        ]
        usable_weeks = [i for i in usable if days[i][0] % 7 == 0]
        if not usable_weeks or len(usable_weeks) < settings.min_baseline_weeks:
            verdicts[topic.id] = None
            continue
        observations = [
            Window(
                int(n.total_seconds() // 60),
                recent.count(topic.id, now - n, now),
                [history.count(topic.id, days[i][1] - n - pad, days[i][1] + pad) for i in usable],
                band_exposure(
                    [band_traffic[n][i] for i in usable],
                    [window_traffic[n][i] for i in usable_weeks],
                    (n + 2 * pad) / n,
                ),
            )
            for n in lengths
        ]
        level = 1.0
        if settings.level_hours:
            # Leave the topic's own family out, so its own spike cannot raise its expectation.
            family = {topic.id, *children.get(topic.id, ()), parent_of.get(topic.id)}
            others = [leaf for leaf in leaves if leaf not in family]
            level = robust_level(
                [leaf_today[leaf] for leaf in others],
                [sum(leaf_usual[leaf][i] for i in usable_weeks) / len(usable_weeks) for leaf in others],
                settings,
            )
        verdicts[topic.id] = assess_windows(observations, settings, level)

    # Locked, so that with several workers one evaluates an episode at a time, and a second one in the same
    # slot (see below) sees the first one's evaluation instead of counting its own.
    open_alerts = {
        a.topic_id: a for a in session.scalars(select(Alert).where(Alert.status == "open").with_for_update())
    }
    opened: list[Alert] = []
    for topic in active:
        verdict = verdicts[topic.id]
        alert = open_alerts.get(topic.id)
        if alert is None:
            if verdict is None or not verdict.anomalous:
                continue
            # A parent whose subtopic is spiking says nothing new: let the subtopic's alert speak.
            if any(
                ((v := verdicts.get(child)) is not None and v.anomalous) or child in open_alerts
                for child in children.get(topic.id, ())
            ):
                continue
            alert = Alert(
                topic_id=topic.id,
                status="open",
                window_start=now - dt.timedelta(minutes=verdict.window_minutes),
                window_end=now,
                detected_at=now,
                last_evaluated_at=now,
                observed=verdict.observed,
                expected=round(verdict.expected, 3),
                p_value=verdict.p_value,
                peak_observed=verdict.observed,
                baseline_windows=verdict.baseline_windows,
                calm_evaluations=0,
            )
            try:
                with session.begin_nested():
                    session.add(alert)
            except IntegrityError:  # another worker opened this episode a moment ago
                continue
            opened.append(alert)
            continue
        if alert.last_evaluated_at is not None and now - alert.last_evaluated_at < settings.every / 2:
            continue  # another worker already evaluated this episode in this slot: one calm count per slot
        alert.last_evaluated_at = now
        if verdict is not None and (verdict.elevated or verdict.anomalous):
            alert.calm_evaluations = 0
            if verdict.window_minutes == settings.window_minutes or verdict.observed > alert.peak_observed:
                alert.peak_observed = max(alert.peak_observed, verdict.observed)
        else:
            alert.calm_evaluations += 1
            if alert.calm_evaluations >= settings.end_after:
                alert.status = "closed"
                alert.ended_at = now
    active_ids = {topic.id for topic in active}
    for topic_id, alert in open_alerts.items():
        if topic_id not in active_ids:  # archived meanwhile: nothing will ever evaluate it again
            alert.status = "closed"
            alert.ended_at = now
    session.flush()
    for alert in opened:
        publish(
            session,
            Event(
                name=ALERT_CREATED,
                payload={"alert": alert_payload(session, alert)},
                all_agents=False,
                min_role="supervisor",
                private=True,
            ),
        )
    session.commit()
    return [a.id for a in opened]


class _Tags:
    """Tag rows of some time ranges, counted as distinct conversations per topic, or over all topics."""

    def __init__(self, rows: Iterable[tuple[int, int, dt.datetime]]) -> None:
        # Each conversation counts once per topic, and once in the traffic, at its first tag in the rows.
        first: dict[tuple[int, int], dt.datetime] = {}
        anywhere: dict[int, dt.datetime] = {}
        for conversation_id, topic_id, at in rows:
            key = (conversation_id, topic_id)
            if key not in first or at < first[key]:
                first[key] = at
            if conversation_id not in anywhere or at < anywhere[conversation_id]:
                anywhere[conversation_id] = at
        self.by_topic: dict[int, list[dt.datetime]] = {}
        for (_, topic_id), at in first.items():
            self.by_topic.setdefault(topic_id, []).append(at)
        for times in self.by_topic.values():
            times.sort()
        self.everyone = sorted(anywhere.values())

    def count(self, topic_id: int, start: dt.datetime, end: dt.datetime) -> int:
        """Conversations of the topic tagged in [start, end)."""
        return _between(self.by_topic.get(topic_id, []), start, end)

    def total(self, start: dt.datetime, end: dt.datetime) -> int:
        """Conversations of any topic tagged in [start, end)."""
        return _between(self.everyone, start, end)


def _between(times: list[dt.datetime], start: dt.datetime, end: dt.datetime) -> int:
    return bisect_left(times, end) - bisect_left(times, start)


def tag_times(
    session: DbSession, ranges: Sequence[tuple[dt.datetime, dt.datetime]], parent_of: Mapping[int, int]
) -> list[tuple[int, int, dt.datetime]]:
    """Return (conversation, topic, tagged at) for tags added in any [start, end) of ``ranges``.

    Parents get a row too. Tag time, not conversation creation time: agents tag at wrap-up, so the newest
    conversations carry no topic yet, and counting by creation time would make every recent window look quiet.
    """
    from app.models.topic import ConversationTopic

    if not ranges:
        return []
    at = ConversationTopic.created_at
    rows = session.execute(
        select(ConversationTopic.conversation_id, ConversationTopic.topic_id, at).where(
            or_(*(and_(at >= start, at < end) for start, end in ranges))
        )
    ).all()
    result = []
    for conversation_id, topic_id, tagged in rows:
        result.append((conversation_id, topic_id, tagged))
        if (parent := parent_of.get(topic_id)) is not None:
            result.append((conversation_id, parent, tagged))
    return result


def _alert_ranges(
    session: DbSession, since: dt.datetime, until: dt.datetime
) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
    from app.models.alert import Alert

    rows = session.execute(
        select(Alert.topic_id, Alert.window_start, Alert.ended_at).where(
            Alert.window_start < until, or_(Alert.ended_at.is_(None), and_(Alert.ended_at >= since))
        )
    ).all()
    ranges: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for topic_id, start, ended in rows:
        ranges.setdefault(topic_id, []).append((start, ended or until))
    return ranges


def _overlaps(ranges: Iterable[tuple[dt.datetime, dt.datetime]], window: tuple[dt.datetime, dt.datetime]) -> bool:
    return any(start < window[1] and window[0] < end for start, end in ranges)


def alert_payload(session: DbSession, alert: Any) -> dict[str, Any]:
    """Serialise an alert for the API and the ``alert.created`` event."""
    from app.models.topic import Topic

    topic = session.get(Topic, alert.topic_id)
    return {
        "id": alert.id,
        "topic_id": alert.topic_id,
        "topic": None
        if topic is None
        else {"id": topic.id, "name": topic.name, "parent_id": topic.parent_id, "colour": topic.colour},
        "status": alert.status,
        "window_start": _iso(alert.window_start),
        "window_end": _iso(alert.window_end),
        "detected_at": _iso(alert.detected_at),
        "ended_at": _iso(alert.ended_at),
        "observed": alert.observed,
        "expected": alert.expected,
        "ratio": round(alert.observed / alert.expected, 2) if alert.expected else None,
        "p_value": alert.p_value,
        "peak_observed": alert.peak_observed,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by_id": alert.acknowledged_by_id,
        "conversations_url": f"/api/v1/alerts/{alert.id}/conversations",
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
