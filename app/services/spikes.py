"""Topic spike detection: is a topic's count in the recent window more than its baseline can explain?

The detector is pure (``assess``, ``assess_windows``, ``EpisodeTracker``) so ``bench/spikes.py`` can replay
weeks of data through it; ``evaluate_spikes`` is the worker job that feeds it from the database and stores alerts.

Model. Every ``every_minutes`` each topic's count in the main window (60 min), a short one (30 min, for busy
topics) and a long one (180 min, for sustained rises in quieter topics) is compared with the same windows (same
local weekday and wall-clock time, so DST-safe) in each of the previous ``baseline_weeks`` weeks, skipping weeks
that were themselves inside an alert episode. With ``S`` conversations over ``K`` baseline windows the rate has
a Gamma(S + 1/2, K) posterior, so the window's count is negative binomial; ``dispersion`` widens it for the
week-to-week wobble real traffic has beyond Poisson noise, and a ``level`` factor (how busy the last
``level_hours`` were across the *other* topics, against the same hours in the baseline weeks) follows busy and
quiet days. A window is a spike when its upper-tail probability is below ``alpha`` (split between the windows),
the main window holds at least ``min_count`` conversations, and the count is at least ``min_ratio`` times the
expectation. An episode opens one alert and stays open while the topic stays elevated; it closes after
``end_after`` calm evaluations.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
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
    # A shorter window flags a busy topic's jump sooner; a longer one catches sustained rises in quieter
    # topics that one window cannot prove (0 = off). Alpha is split between the windows tested.
    short_window_minutes: int = 30
    long_window_minutes: int = 180
    every_minutes: int = 15
    baseline_weeks: int = 4
    min_baseline_weeks: int = 2
    alpha: float = 1e-4
    end_alpha: float = 0.05
    min_count: int = 5
    min_ratio: float = 1.5
    dispersion: float = 0.03
    end_after: int = 2
    # Today's business across the other topics scales each baseline; measured over this many hours and
    # shrunk towards 1 by ``level_prior`` pseudo-conversations (0 hours = off).
    level_hours: int = 6
    level_prior: float = 50.0

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.window_minutes)

    @property
    def windows(self) -> tuple[dt.timedelta, ...]:
        """The window lengths tested at each evaluation, the main window first."""
        lengths = [self.window_minutes]
        if 0 < self.short_window_minutes < self.window_minutes:
            lengths.append(self.short_window_minutes)
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


def tail_probability(
    observed: int, baseline_total: float, baseline_windows: int, dispersion: float, level: float = 1.0
) -> float:
    """Return P(X ≥ observed) for the next window given ``baseline_total`` over ``baseline_windows`` windows.

    ``level`` scales the expectation by how busy the day is across the other topics.
    """
    # Imported here: web processes serialise alerts from this module but never test for spikes.
    from scipy.stats import nbinom

    if observed <= 0:
        return 1.0
    shape_posterior = baseline_total + PRIOR_SHAPE
    mean = level * shape_posterior / baseline_windows
    # Negative binomial with variance mean + mean²·(1/shape + dispersion): rate uncertainty plus overdispersion.
    size = 1.0 / (1.0 / shape_posterior + dispersion)
    prob = size / (size + mean)
    return float(nbinom.sf(observed - 1, size, prob))


def level_factor(observed_total: float, expected_total: float, settings: SpikeSettings) -> float:
    """Return how busy today is compared with the baseline weeks, shrunk towards 1 when counts are few."""
    prior = settings.level_prior
    return (observed_total + prior) / (expected_total + prior)


def assess(
    observed: int, baseline: Sequence[int], settings: SpikeSettings, tests: int = 1, level: float = 1.0
) -> Assessment | None:
    """Judge ``observed`` against the ``baseline`` window counts; None when history is too short to judge.

    ``tests`` is how many windows are tested at once; alpha is split between them (Bonferroni). ``level``
    (see ``level_factor``) scales the baseline by today's overall business.
    """
    if len(baseline) < settings.min_baseline_weeks:
        return None
    total = float(sum(baseline))
    expected = level * (total + PRIOR_SHAPE) / len(baseline)
    p_value = tail_probability(observed, total, len(baseline), settings.dispersion, level)
    anomalous = (
        p_value < settings.alpha / tests
        and observed >= settings.min_count
        and observed >= settings.min_ratio * expected
    )
    elevated = p_value < settings.end_alpha and observed > expected
    return Assessment(observed, expected, p_value, len(baseline), anomalous, elevated)


def assess_windows(
    observations: Sequence[tuple[int, int, Sequence[int]]], settings: SpikeSettings, level: float = 1.0
) -> Assessment | None:
    """Judge several windows at once, each ``(minutes, observed, baseline)``, the main window first.

    An anomalous window wins (the main one first, whose numbers read most naturally); otherwise the most
    elevated one, so an open episode stays open while any window is still high.
    """
    verdicts = []
    for minutes, observed, baseline in observations:
        verdict = assess(observed, baseline, settings, len(observations), level)
        if verdict is not None:
            verdicts.append(replace(verdict, window_minutes=minutes))
    if not verdicts:
        return None
    # The main window itself must be busy: a long window adding up a quiet night's stragglers is no spike.
    if observations[0][1] >= settings.min_count:
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
    lengths = [int(w.total_seconds() // 60) for w in settings.windows]
    span = dt.timedelta(minutes=max(*lengths, settings.level_hours * 60))

    recent = _Tags(tag_times(session, now - span, now, parent_of))
    baselines = [end for _, end in baseline_windows(now, settings, tz)]
    history = [_Tags(tag_times(session, end - span, end, parent_of)) for end in baselines]
    past = _alert_ranges(session, baselines[-1] - span, now)
    level_span = dt.timedelta(hours=settings.level_hours)

    verdicts: dict[int, Assessment | None] = {}
    for topic in active:
        observations = []
        usable_weeks = [
            i
            for i, end in enumerate(baselines)
            if end - span >= topic.created_at
            and not _overlaps(past.get(topic.id, ()), (end - dt.timedelta(minutes=max(lengths)), end))
        ]
        for minutes in lengths:
            length = dt.timedelta(minutes=minutes)
            observed = recent.count(topic.id, now - length)
            baseline = [history[i].count(topic.id, baselines[i] - length) for i in usable_weeks]
            observations.append((minutes, observed, baseline))
        level = 1.0
        if settings.level_hours and usable_weeks:
            # Leave the topic itself (and its family) out, so its own spike cannot raise its expectation.
            family = {topic.id, *children.get(topic.id, ()), *([parent_of[topic.id]] if topic.id in parent_of else [])}
            observed_total = recent.total(now - level_span, exclude=family)
            usual = [history[i].total(baselines[i] - level_span, exclude=family) for i in usable_weeks]
            level = level_factor(observed_total, sum(usual) / len(usual), settings)
        verdicts[topic.id] = assess_windows(observations, settings, level)

    open_alerts = {a.topic_id: a for a in session.scalars(select(Alert).where(Alert.status == "open"))}
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
    """Tag rows of one time range, counted per topic (distinct conversations) over any suffix of it."""

    def __init__(self, rows: list[tuple[int, int, dt.datetime]]) -> None:
        self.rows = rows
        self.by_topic: dict[int, list[tuple[dt.datetime, int]]] = {}
        for conversation_id, topic_id, at in rows:
            self.by_topic.setdefault(topic_id, []).append((at, conversation_id))

    def count(self, topic_id: int, since: dt.datetime) -> int:
        return len({cid for at, cid in self.by_topic.get(topic_id, ()) if at >= since})

    def total(self, since: dt.datetime, exclude: set[int]) -> int:
        everyone = {cid for cid, _tid, at in self.rows if at >= since}
        family = {cid for tid in exclude for at, cid in self.by_topic.get(tid, ()) if at >= since}
        return len(everyone - family)


def tag_times(
    session: DbSession, start: dt.datetime, end: dt.datetime, parent_of: Mapping[int, int]
) -> list[tuple[int, int, dt.datetime]]:
    """Return (conversation, topic, tagged at) for tags added in [start, end); parents get a row too.

    Tag time, not conversation creation time: agents tag at wrap-up, so the newest conversations carry no
    topic yet, and counting by creation time would make every recent window look quiet.
    """
    from app.models.topic import ConversationTopic

    rows = session.execute(
        select(ConversationTopic.conversation_id, ConversationTopic.topic_id, ConversationTopic.created_at).where(
            ConversationTopic.created_at >= start, ConversationTopic.created_at < end
        )
    ).all()
    result = []
    for conversation_id, topic_id, at in rows:
        result.append((conversation_id, topic_id, at))
        if (parent := parent_of.get(topic_id)) is not None:
            result.append((conversation_id, parent, at))
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
