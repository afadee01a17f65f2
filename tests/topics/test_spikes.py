"""Spike alerts: the pure detector, one alert per episode, alert.created to supervisors, /api/v1/alerts."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy.stats import poisson

from app.services.spikes import (
    EpisodeTracker,
    SpikeSettings,
    Window,
    assess,
    assess_windows,
    band_exposure,
    baseline_days,
    baseline_windows,
    level_factor,
    robust_level,
    tail_probability,
)

UTC = dt.UTC
SETTINGS = SpikeSettings()


# The pure detector --------------------------------------------------------------------------------------


def test_with_a_long_history_and_no_dispersion_the_tail_is_poisson():
    assert tail_probability(30, 10_000_000, 1_000_000, 0.0) == pytest.approx(poisson.sf(29, 10), rel=1e-3)


def test_three_times_a_busy_topics_baseline_is_a_spike():
    verdict = assess(60, [19, 22, 20, 18], SETTINGS)
    assert verdict is not None
    assert verdict.anomalous
    assert verdict.expected == pytest.approx(79.5 / 4)
    assert verdict.ratio == pytest.approx(60 / verdict.expected)


def test_ordinary_wobble_is_not_a_spike():
    for observed in (12, 20, 27):
        verdict = assess(observed, [19, 22, 20, 18], SETTINGS)
        assert verdict is not None
        assert not verdict.anomalous


def test_a_quiet_topic_does_not_cry_wolf_below_the_minimum_count():
    settings = SpikeSettings(alpha=1e-3)
    verdict = assess(4, [0, 0, 0, 0], settings)
    assert verdict is not None
    assert verdict.p_value < settings.alpha  # improbable…
    assert not verdict.anomalous  # …but four conversations are no emergency


def test_a_small_relative_rise_on_a_huge_topic_is_not_a_spike():
    verdict = assess(1300, [1000, 1010, 990, 1000], SpikeSettings(dispersion=0.0))
    assert verdict is not None
    assert verdict.p_value < 1e-10
    assert not verdict.anomalous  # 1.3x is below min_ratio


def test_too_little_history_means_no_verdict():
    assert assess(50, [3], SETTINGS) is None


def test_a_long_window_needs_the_main_window_busy_too():
    quiet_night = [(60, 3, [0, 0, 0, 0]), (180, 9, [1, 0, 1, 0])]
    verdict = assess_windows(quiet_night, SETTINGS)
    assert verdict is not None
    assert not verdict.anomalous
    sustained = [(60, 12, [4, 3, 5, 4]), (180, 36, [12, 11, 13, 12])]
    verdict = assess_windows(sustained, SETTINGS)
    assert verdict is not None
    assert verdict.anomalous
    assert verdict.window_minutes == 180


def test_a_busy_day_raises_the_expectation():
    plain = assess(40, [12, 11, 13, 12], SETTINGS)
    busy = assess(40, [12, 11, 13, 12], SETTINGS, level=2.2)
    assert plain is not None
    assert busy is not None
    assert plain.anomalous
    assert not busy.anomalous


def test_baseline_windows_keep_the_local_wall_clock_across_dst():
    tz = ZoneInfo("Europe/Warsaw")
    now = dt.datetime(2024, 4, 2, 10, 0, tzinfo=tz)  # CEST
    windows = baseline_windows(now, SETTINGS, tz)
    assert len(windows) == SETTINGS.baseline_weeks
    for start, end in windows:
        assert end.astimezone(tz).hour == 10
        assert end - start == dt.timedelta(minutes=60)
    assert windows[0][1].utcoffset() == dt.timedelta(0)
    assert windows[0][1] == dt.datetime(2024, 3, 26, 9, 0, tzinfo=UTC)  # 10:00 CEST
    assert windows[1][1] == dt.datetime(2024, 3, 19, 9, 0, tzinfo=UTC)  # 10:00 CET


def test_an_episode_raises_one_alert_until_it_calms_down():
    tracker = EpisodeTracker(SETTINGS)
    t0 = dt.datetime(2024, 5, 6, 9, tzinfo=UTC)
    step = dt.timedelta(minutes=15)
    spike = assess(60, [20, 20, 20, 20], SETTINGS)
    high = assess(35, [20, 20, 20, 20], SETTINGS)
    calm = assess(20, [20, 20, 20, 20], SETTINGS)
    events = [
        tracker.step("late", t0 + i * step, v) for i, v in enumerate([spike, spike, high, calm, spike, calm, calm])
    ]
    assert events == ["opened", None, None, None, None, None, "closed"]
    assert tracker.step("late", t0 + 8 * step, spike) == "opened"


def test_settings_come_from_the_config():
    settings = SpikeSettings.from_config(
        {"SPIKE_ALPHA": "0.001", "SPIKE_MIN_COUNT": "8", "SPIKE_LONG_WINDOW_MINUTES": "0"}
    )
    assert settings.alpha == 0.001
    assert settings.min_count == 8
    assert settings.windows == (dt.timedelta(minutes=60), dt.timedelta(minutes=30))


def test_the_default_windows_double_from_the_main_one_up_to_the_long_one():
    minutes = [int(w.total_seconds() // 60) for w in SETTINGS.windows]
    assert minutes == [60, 30, 120, 240]
    odd = SpikeSettings(long_window_minutes=180)
    assert [int(w.total_seconds() // 60) for w in odd.windows] == [60, 30, 120, 180]


def test_another_topics_incident_does_not_move_todays_level():
    usual = [100.0, 100.0, 100.0, 100.0]
    assert robust_level([100, 100, 100, 400], usual, SETTINGS) == pytest.approx(1.0)
    # A plain pooled ratio would have read that as a day 70 % busier than usual.
    assert level_factor(700, 400, SETTINGS) > 1.6
    # A day that is busy everywhere is busy.
    assert robust_level([130, 125, 135, 128], usual, SETTINGS) == pytest.approx(568 / 450, rel=1e-6)


def test_a_band_predicts_the_window_by_its_share_of_the_traffic():
    # Two days whose 5-hour bands held 500 conversations each; the window usually holds 100 of them.
    exposure = band_exposure([500, 500], [100, 100], band_ratio=5.0)
    assert exposure == pytest.approx(10.0, rel=1e-2)
    # The topic had 20 + 20 conversations in those bands: a fifth of that is expected in the window.
    window = Window(60, 12, [20, 20], exposure)
    assert window.expected() == pytest.approx(40.5 / 10.0, rel=1e-2)
    # A silent night: no traffic anywhere still gives a finite, time-proportional exposure.
    assert band_exposure([0, 0], [0, 0], band_ratio=5.0) == pytest.approx(10.0)


def test_baseline_days_pool_every_day_of_the_baseline_weeks_at_the_same_wall_clock_time():
    tz = ZoneInfo("Europe/Warsaw")
    now = dt.datetime(2024, 4, 2, 10, 0, tzinfo=tz)  # CEST; four weeks back is CET
    days = baseline_days(now, SETTINGS, tz)
    assert [back for back, _ in days] == list(range(4, 32))
    assert all(end.astimezone(tz).hour == 10 for _, end in days)
    weekdays = baseline_days(now, SpikeSettings(share_days=1), tz)
    assert [back for back, _ in weekdays] == [7, 14, 21, 28]
    assert [end for _, end in weekdays] == [end for _, end in baseline_windows(now, SETTINGS, tz)]


def test_a_short_window_speaks_only_for_a_topic_busy_enough_to_fill_it():
    # Eight conversations in half an hour against ~1 usual: a burst, but a quiet topic's burst proves little.
    quiet = assess_windows([(60, 9, [2, 2, 2, 2]), (30, 8, [1, 1, 1, 1])], SETTINGS)
    assert quiet is not None
    assert not quiet.anomalous
    busy = assess_windows([(60, 40, [20, 20, 20, 20]), (30, 32, [10, 10, 10, 10])], SETTINGS)
    assert busy is not None
    assert busy.anomalous
    assert busy.window_minutes == 30


QUIET_RATE = 6.0  # conversations an hour for the quiet topic between 8:00 and 20:00, a fifth of that at night
OTHER_RATES = (20.0, 14.0, 9.0)


def _replay_a_day(spike: tuple[int, int] | None, seed: int = 11) -> list[tuple[dt.datetime, str]]:
    """Replay the detector every 10 minutes over one day after four weeks of history, as the worker does.

    Five-minute Poisson counts for a quiet topic and three others; ``spike`` = (from hour, to hour) triples
    the quiet topic's rate that day. Returns the quiet topic's episode events.
    """
    rng = np.random.default_rng(seed)
    tz = ZoneInfo("Europe/Warsaw")
    start = dt.datetime(2024, 5, 1, tzinfo=tz).astimezone(UTC)  # no DST change in the following 29 days
    step = dt.timedelta(minutes=5)
    bins = 29 * 288
    hours = np.array([(start + i * step).astimezone(tz).hour for i in range(bins)])
    profile = np.where((hours >= 8) & (hours < 20), 1.0, 0.2) / 12
    rates = np.outer(profile, (QUIET_RATE, *OTHER_RATES))
    if spike is not None:
        today = np.arange(bins) >= 28 * 288
        rates[today & (hours >= spike[0]) & (hours < spike[1]), 0] *= 3
    counts = rng.poisson(rates)
    cumulative = np.vstack([np.zeros(counts.shape[1], dtype=int), np.cumsum(counts, axis=0)])
    traffic = cumulative.sum(axis=1)

    def at(moment: dt.datetime) -> int:
        return int((moment - start) / step)

    settings = SETTINGS
    pad = dt.timedelta(minutes=settings.band_minutes)
    level_span = dt.timedelta(hours=settings.level_hours)
    tracker = EpisodeTracker(settings)
    events = []
    now = start + dt.timedelta(days=28, hours=8)
    while now < start + dt.timedelta(days=28, hours=20):
        days = baseline_days(now, settings, tz)
        weeks = [end for back, end in days if back % 7 == 0]
        observations = []
        for length in settings.windows:
            bands = [(at(end - length - pad), at(end + pad)) for _, end in days]
            observations.append(
                Window(
                    int(length.total_seconds() // 60),
                    int(cumulative[at(now), 0] - cumulative[at(now - length), 0]),
                    [int(cumulative[b, 0] - cumulative[a, 0]) for a, b in bands],
                    band_exposure(
                        [int(traffic[b] - traffic[a]) for a, b in bands],
                        [int(traffic[at(end)] - traffic[at(end - length)]) for end in weeks],
                        (length + 2 * pad) / length,
                    ),
                )
            )
        today = cumulative[at(now), 1:] - cumulative[at(now - level_span), 1:]
        usual = np.mean([cumulative[at(end), 1:] - cumulative[at(end - level_span), 1:] for end in weeks], axis=0)
        verdict = assess_windows(observations, settings, robust_level(today.tolist(), usual.tolist(), settings))
        if event := tracker.step("quiet", now, verdict):
            events.append((now.astimezone(tz), event))
        now += dt.timedelta(minutes=settings.every_minutes)
    return events


def test_a_quiet_topic_tripling_for_two_hours_is_alerted_once():
    events = _replay_a_day(spike=(11, 13))
    assert [event for _, event in events] == ["opened", "closed"]
    (opened, _), (closed, _) = events
    # Six conversations an hour becoming eighteen: flagged during the rise, one alert for the whole episode.
    assert dt.time(11) < opened.time() <= dt.time(13)
    assert closed.time() > dt.time(13)


def test_a_steady_quiet_topic_raises_nothing():
    assert _replay_a_day(spike=None) == []


# The worker job and the API -----------------------------------------------------------------------------


NOW = dt.datetime(2024, 5, 15, 11, 0, tzinfo=UTC)  # a Wednesday, 13:00 in Warsaw


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["ORG_TIMEZONE"] = "Europe/Warsaw"
    return app_config


@pytest.fixture
def history(app: Any, taxonomy: dict[str, int], make_conversation: Any) -> Any:
    """Four weeks in which "Late" gets ~8 tags and "Damaged" ~10 between 12:00 and 13:00 local every day."""
    from app.extensions import db
    from app.models import Topic

    for topic in db.session.query(Topic):
        topic.created_at = NOW - dt.timedelta(days=60)
    db.session.commit()

    def add_day(day: dt.datetime, late: int, damaged: int = 10) -> list[int]:
        ids = []
        for i in range(late):
            when = day - dt.timedelta(minutes=2 + i * 55 / max(late, 1))
            ids.append(make_conversation(when, topics=(taxonomy["Late"],)))
        for i in range(damaged):
            when = day - dt.timedelta(minutes=3 + i * 55 / max(damaged, 1))
            make_conversation(when, topics=(taxonomy["Damaged"],))
        return ids

    for week in range(1, 5):
        add_day(NOW - dt.timedelta(weeks=week), late=7 + week % 3)
    return add_day


def evaluate(now: dt.datetime) -> list[int]:
    from app.worker.jobs import evaluate_spikes

    return evaluate_spikes(now)


def test_a_spike_opens_one_alert_and_tells_supervisors(history, taxonomy, events):
    from app.extensions import db
    from app.models import Alert

    spike_ids = history(NOW, late=30)

    opened = evaluate(NOW)

    assert len(opened) == 1
    alert = db.session.get(Alert, opened[0])
    assert alert.topic_id == taxonomy["Late"]  # the subtopic speaks; its parent "Delivery" stays quiet
    assert alert.observed == 30
    assert alert.status == "open"
    created = [e for e in events if e.name == "alert.created"]
    assert len(created) == 1
    assert created[0].min_role == "supervisor"
    assert created[0].all_agents is False
    assert created[0].payload["alert"]["topic"]["name"] == "Late"
    assert created[0].payload["alert"]["conversations_url"] == f"/api/v1/alerts/{alert.id}/conversations"

    # Fifteen minutes later the window is still high: the same episode, no second alert.
    assert evaluate(NOW + dt.timedelta(minutes=15)) == []
    assert db.session.query(Alert).count() == 1
    assert len(spike_ids) == 30


def test_the_episode_closes_when_the_topic_calms_down(history, taxonomy):
    from app.extensions import db
    from app.models import Alert

    history(NOW, late=30)
    (alert_id,) = evaluate(NOW)
    later = NOW + dt.timedelta(hours=4)
    for week in range(5):  # back to normal: as many as usual at that hour
        history(later - dt.timedelta(weeks=week), late=8)
    evaluate(later)
    evaluate(later + dt.timedelta(minutes=15))
    alert = db.session.get(Alert, alert_id)
    db.session.refresh(alert)
    assert alert.status == "closed"
    assert alert.ended_at == later + dt.timedelta(minutes=15)


def test_an_ordinary_day_raises_nothing(history):
    history(NOW, late=9)
    assert evaluate(NOW) == []


def test_a_topic_without_enough_history_is_not_judged(app, taxonomy, make_conversation):
    for i in range(40):
        make_conversation(NOW - dt.timedelta(minutes=i + 1), topics=(taxonomy["Charged twice"],))
    assert evaluate(NOW) == []


def test_alerts_api_lists_and_links_the_conversations_behind_an_alert(
    history, supervisor_client, agent_client, taxonomy
):
    spike_ids = history(NOW, late=30)
    (alert_id,) = evaluate(NOW)

    listed = supervisor_client.get("/api/v1/alerts?status=open")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json["items"]] == [alert_id]
    item = listed.json["items"][0]
    assert item["topic_id"] == taxonomy["Late"]
    assert item["expected"] < 10
    assert item["ratio"] > 3
    assert supervisor_client.get("/api/v1/alerts?status=closed").json["items"] == []

    behind = supervisor_client.get(f"/api/v1/alerts/{alert_id}/conversations").json
    assert {c["id"] for c in behind["items"]} >= set(spike_ids)

    acked = supervisor_client.post(f"/api/v1/alerts/{alert_id}/acknowledge")
    assert acked.json["acknowledged_at"] is not None
    assert agent_client.get("/api/v1/alerts").status_code == 403


def test_alerts_show_as_spike_markers_in_the_report(history, supervisor_client):
    from app.worker.jobs import refresh_reports

    history(NOW, late=30)
    evaluate(NOW)
    refresh_reports(NOW)
    data = supervisor_client.get("/api/v1/reports/topics?from=2024-05-15&to=2024-05-16").json
    assert [a["topic"]["name"] for a in data["alerts"]] == ["Late"]
    assert math.isclose(sum(data["totals"]["counts"]), 40)


def test_the_database_holds_one_open_alert_per_topic(history, taxonomy):
    """Two workers evaluating at the same moment cannot both open an episode."""
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from app.models import Alert

    history(NOW, late=30)
    (alert_id,) = evaluate(NOW)
    original = db.session.get(Alert, alert_id)
    twin = Alert(
        topic_id=original.topic_id,
        status="open",
        window_start=original.window_start,
        window_end=original.window_end,
        detected_at=original.detected_at,
        last_evaluated_at=original.last_evaluated_at,
        observed=original.observed,
        expected=original.expected,
        p_value=original.p_value,
        peak_observed=original.peak_observed,
        baseline_windows=original.baseline_windows,
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_archiving_a_topic_closes_its_open_alert(history, taxonomy, admin_client):
    from app.extensions import db
    from app.models import Alert

    history(NOW, late=30)
    (alert_id,) = evaluate(NOW)
    admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"archived": True})
    evaluate(NOW + dt.timedelta(minutes=15))
    alert = db.session.get(Alert, alert_id)
    db.session.refresh(alert)
    assert alert.status == "closed"


@pytest.fixture
def quiet_days(app: Any, taxonomy: dict[str, int], make_conversation: Any) -> Any:
    """Every day of the past month "Late" gets 6 tags and "Damaged" 24 in the hour before 13:00 (Warsaw)."""
    from app.extensions import db
    from app.models import Topic

    for topic in db.session.query(Topic):
        topic.created_at = NOW - dt.timedelta(days=60)
    db.session.commit()

    def add_hour(end: dt.datetime, late: int, damaged: int = 24) -> None:
        for topic, count in ((taxonomy["Late"], late), (taxonomy["Damaged"], damaged)):
            for i in range(count):
                make_conversation(end - dt.timedelta(minutes=2 + i * 55 / count), topics=(topic,))

    for back in range(1, 32):
        add_hour(NOW - dt.timedelta(days=back), late=6)
    return add_hour


def test_a_quiet_topics_share_comes_from_every_day_of_the_baseline_weeks(quiet_days, taxonomy):
    from app.extensions import db
    from app.models import Alert

    quiet_days(NOW, late=21)
    (alert_id,) = evaluate(NOW)
    alert = db.session.get(Alert, alert_id)
    assert alert.topic_id == taxonomy["Late"]
    assert alert.expected == pytest.approx(6, rel=0.05)
    assert alert.baseline_windows == 28  # the topic's count around 13:00 on each of the last 28 days


def test_four_same_weekday_hours_alone_cannot_prove_a_quiet_topics_rise(quiet_days, app):
    app.config["SPIKE_SHARE_DAYS"] = 1
    quiet_days(NOW, late=21)
    assert evaluate(NOW) == []


def test_the_worker_runs_the_detector_at_its_cadence():
    from app.worker.jobs import spike_interval_seconds

    assert spike_interval_seconds({}) == 60 * SpikeSettings().every_minutes
    assert spike_interval_seconds({"SPIKE_EVERY_MINUTES": "5"}) == 300


def test_two_workers_evaluating_the_same_slot_count_one_calm_evaluation(history, taxonomy):
    from app.extensions import db
    from app.models import Alert

    history(NOW, late=30)
    (alert_id,) = evaluate(NOW)
    later = NOW + dt.timedelta(hours=4)
    for week in range(5):
        history(later - dt.timedelta(weeks=week), late=8)
    evaluate(later)
    evaluate(later + dt.timedelta(seconds=20))  # a second worker process, the same slot

    alert = db.session.get(Alert, alert_id)
    db.session.refresh(alert)
    assert alert.status == "open"
    assert alert.calm_evaluations == 1

    evaluate(later + dt.timedelta(minutes=10))  # the next slot
    db.session.refresh(alert)
    assert alert.status == "closed"
