"""Spike alerts: the pure detector, one alert per episode, alert.created to supervisors, /api/v1/alerts."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scipy.stats import poisson

from app.services.spikes import (
    EpisodeTracker,
    SpikeSettings,
    assess,
    assess_windows,
    baseline_windows,
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
