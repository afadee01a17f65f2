"""GET /api/v1/reports/topics: volume by topic over local days/hours/weeks (DST-correct), filters, durations,
top movers, CSV, and the statistics staying fresh as conversations are tagged."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from typing import Any

import numpy as np
import pytest

UTC = dt.UTC


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["ORG_TIMEZONE"] = "Europe/Warsaw"
    return app_config


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def refresh(now: dt.datetime | None = None) -> Any:
    from app.worker.jobs import refresh_reports

    return refresh_reports(now or dt.datetime.now(UTC))


def report(client: Any, **params: Any) -> Any:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = client.get(f"/api/v1/reports/topics?{query}")
    assert response.status_code == 200, response.json
    return response.json


def counts_by_name(data: dict[str, Any]) -> dict[str, list[int]]:
    return {row["name"]: row["counts"] for row in data["topics"]}


def test_daily_buckets_are_local_days_across_the_spring_dst_change(supervisor_client, make_conversation, taxonomy):
    late = (taxonomy["Late"],)
    make_conversation(at(2024, 3, 30, 22, 30), topics=late)  # 23:30 CET, Saturday 30 March
    make_conversation(at(2024, 3, 30, 23, 30), topics=late)  # 00:30 CET, Sunday 31 March
    make_conversation(at(2024, 3, 31, 21, 30), topics=late)  # 23:30 CEST, still Sunday (a 23-hour day)
    make_conversation(at(2024, 3, 31, 22, 30))  # 00:30 CEST, Monday 1 April, untagged
    refresh()

    data = report(supervisor_client, **{"from": "2024-03-30", "to": "2024-04-02", "interval": "day"})

    assert data["timezone"] == "Europe/Warsaw"
    assert data["buckets"] == ["2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"]
    assert data["totals"]["counts"] == [1, 2, 1]
    counts = counts_by_name(data)
    assert counts["Late"] == [1, 2, 0]
    assert counts["Delivery"] == [1, 2, 0]  # a parent counts its subtopics' conversations
    assert counts["(no topic)"] == [0, 0, 1]


def test_hourly_report_has_23_hours_in_spring_and_25_in_autumn(supervisor_client, make_conversation):
    make_conversation(at(2024, 10, 27, 0, 30))  # 02:30 CEST
    make_conversation(at(2024, 10, 27, 1, 30))  # 02:30 CET: the repeated hour
    refresh()

    spring = report(supervisor_client, **{"from": "2024-03-31", "to": "2024-04-01", "interval": "hour"})
    assert len(spring["buckets"]) == 23
    assert "2024-03-31T02:00:00+01:00" not in spring["buckets"]

    autumn = report(supervisor_client, **{"from": "2024-10-27", "to": "2024-10-28", "interval": "hour"})
    assert len(autumn["buckets"]) == 25
    assert autumn["buckets"][2:4] == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
    assert autumn["totals"]["counts"][2:4] == [1, 1]


def test_weekly_buckets_start_on_monday(supervisor_client, make_conversation, taxonomy):
    make_conversation(at(2024, 5, 8, 10), topics=(taxonomy["Late"],))  # Wednesday
    make_conversation(at(2024, 5, 13, 10), topics=(taxonomy["Late"],))  # Monday
    make_conversation(at(2024, 5, 19, 20), topics=(taxonomy["Damaged"],))  # Sunday 22:00 local
    refresh()

    data = report(supervisor_client, **{"from": "2024-05-08", "to": "2024-05-20", "interval": "week"})

    assert data["buckets"] == ["2024-05-08T00:00:00+02:00", "2024-05-13T00:00:00+02:00"]
    assert data["totals"]["counts"] == [1, 2]
    assert counts_by_name(data)["Damaged"] == [0, 1]


def test_channel_and_team_filters(supervisor_client, admin_client, make_conversation, taxonomy, session):
    from app.services.channels import create_channel

    mail, _ = create_channel("email", "Mail", address="help@shop.example.com")
    sms, _ = create_channel("sms", "SMS", address="+48500100200")
    team = admin_client.post("/api/v1/teams", json={"name": "Billing"}).json["id"]
    day = at(2024, 5, 14, 9)
    make_conversation(day, topics=(taxonomy["Late"],), channel_id=mail.id, team_id=team)
    make_conversation(day, topics=(taxonomy["Late"],), channel_id=mail.id)
    make_conversation(day, topics=(taxonomy["Damaged"],), channel_id=sms.id, team_id=team)
    refresh()
    window = {"from": "2024-05-14", "to": "2024-05-15"}

    assert report(supervisor_client, **window)["totals"]["total"] == 3
    assert counts_by_name(report(supervisor_client, **window, channel=mail.id))["Late"] == [2]
    by_kind = report(supervisor_client, **window, channel="sms")
    assert by_kind["totals"]["total"] == 1
    assert counts_by_name(by_kind)["Damaged"] == [1]
    by_team = report(supervisor_client, **window, team=team)
    assert by_team["totals"]["total"] == 2
    assert report(supervisor_client, **window, team=team, channel=mail.id)["totals"]["total"] == 1
    assert report(supervisor_client, **window, team="none")["totals"]["total"] == 1
    assert report(supervisor_client, **window, channel="voice")["totals"]["total"] == 0


def test_median_and_p90_by_topic_channel_and_agent_are_within_the_sketch_error(
    supervisor_client, make_conversation, make_user, taxonomy
):
    from app.services.channels import create_channel

    mail, _ = create_channel("email", "Mail", address="help@shop.example.com")
    agents = [make_user("agent").id, make_user("agent").id]
    rng = random.Random(3)
    first_responses: dict[int, list[float]] = {agents[0]: [], agents[1]: []}
    resolutions: list[float] = []
    for i in range(120):
        agent = agents[i % 2]
        frt = rng.lognormvariate(7, 1.2)  # median ~18 minutes
        res = frt + rng.lognormvariate(10, 1)
        first_responses[agent].append(frt)
        resolutions.append(res)
        make_conversation(
            at(2024, 6, 3 + i % 5, 8) + dt.timedelta(minutes=i),
            first_response=frt,
            resolution=res,
            topics=(taxonomy["Card declined"],),
            channel_id=mail.id,
            assignee_id=agent,
        )
    make_conversation(at(2024, 6, 4, 12), topics=(taxonomy["Late"],))  # still waiting for a first response
    refresh()

    data = report(supervisor_client, **{"from": "2024-06-03", "to": "2024-06-10"})
    times = data["times"]

    def exact(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[int(q * (len(ordered) - 1))]

    def close(reported: float, truth: float) -> bool:
        return abs(reported - truth) <= 0.045 * truth + 0.5

    declined = next(row for row in times["by_topic"] if row["topic_id"] == taxonomy["Card declined"])
    assert declined["conversations"] == 120
    assert declined["resolution"]["count"] == 120
    assert close(declined["resolution"]["median_seconds"], exact(resolutions, 0.5))
    assert close(declined["resolution"]["p90_seconds"], exact(resolutions, 0.9))
    for row in times["by_agent"]:
        if row["agent_id"] is None:
            continue
        assert close(row["first_response"]["median_seconds"], exact(first_responses[row["agent_id"]], 0.5))
        assert close(row["first_response"]["p90_seconds"], exact(first_responses[row["agent_id"]], 0.9))
    channels = {row["channel_id"]: row for row in times["by_channel"]}
    assert channels[mail.id]["kind"] == "email"
    assert channels[mail.id]["conversations"] == 120
    assert channels[None]["first_response"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert times["overall"]["conversations"] == 121
    assert times["overall"]["first_response"]["count"] == 120


def test_sketch_quantiles_stay_within_the_relative_error_bound():
    from collections import Counter

    from app.services.reports import BIN_VALUES, bin_of, encode_sketch, merge_sketches, quantile

    rng = np.random.default_rng(5)
    values = rng.lognormal(8, 2, 5000)
    halves = [Counter(bin_of(v) for v in values[:2500]), Counter(bin_of(v) for v in values[2500:])]
    merged = merge_sketches([0, 0], [encode_sketch(h) for h in halves], 1)[0]
    ordered = np.sort(values)
    for q in (0.1, 0.5, 0.9, 0.99):
        truth = ordered[int(q * (len(values) - 1))]
        assert abs(quantile(merged, q) - truth) / truth <= 0.0434
    assert bin_of(0.2) == 0
    assert BIN_VALUES[0] == 0
    assert quantile(np.zeros(len(BIN_VALUES), dtype=np.int64), 0.5) is None


def test_hour_reports_take_durations_from_partial_days_too(supervisor_client, make_conversation):
    make_conversation(at(2024, 6, 3, 10), first_response=600)  # 12:00 local, inside the partial first day
    make_conversation(at(2024, 6, 4, 10), first_response=60)  # a whole day inside the range
    make_conversation(at(2024, 6, 5, 10), first_response=6000)  # after the range
    refresh()

    data = report(supervisor_client, **{"from": "2024-06-03T11:00:00", "to": "2024-06-05T00:00:00", "interval": "hour"})

    assert len(data["buckets"]) == 37
    assert data["totals"]["total"] == 2
    assert data["times"]["overall"]["first_response"]["count"] == 2


def test_top_movers_compare_with_the_previous_period(supervisor_client, make_conversation, taxonomy):
    for day in (1, 2, 3):
        make_conversation(at(2024, 7, day, 9), topics=(taxonomy["Late"],))
    for day in (4, 5, 6):
        for _ in range(4):
            make_conversation(at(2024, 7, day, 9), topics=(taxonomy["Charged twice"],))
    make_conversation(at(2024, 7, 5, 9), topics=(taxonomy["Late"],))
    refresh()

    data = report(supervisor_client, **{"from": "2024-07-04", "to": "2024-07-07"})

    assert data["previous_from"] == "2024-07-01T00:00:00+02:00"
    movers = {m["name"]: m for m in data["movers"]}
    assert movers["Charged twice"] | {"change": None} == {
        "topic_id": taxonomy["Charged twice"],
        "name": "Charged twice",
        "parent_id": taxonomy["Billing"],
        "colour": "#dc2626",
        "total": 12,
        "previous_total": 0,
        "delta": 12,
        "change": None,
    }
    assert movers["Late"]["delta"] == -2
    assert movers["Late"]["change"] == pytest.approx(-2 / 3, abs=1e-3)
    assert data["movers"][0]["name"] in ("Billing", "Charged twice")
    assert data["totals"]["previous_total"] == 3


def test_csv_export_carries_the_same_numbers(supervisor_client, make_conversation, taxonomy):
    make_conversation(at(2024, 8, 1, 9), topics=(taxonomy["Late"],), first_response=120, resolution=3600)
    make_conversation(at(2024, 8, 2, 9), topics=(taxonomy["Late"],))
    refresh()
    params = {"from": "2024-08-01", "to": "2024-08-03"}

    response = supervisor_client.get("/api/v1/reports/topics?from=2024-08-01&to=2024-08-03&format=csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    late = [r for r in rows if r["section"] == "volume" and r["topic"] == "Late"]
    assert [int(r["conversations"]) for r in late] == counts_by_name(report(supervisor_client, **params))["Late"]
    times = next(r for r in rows if r["section"] == "topic_times" and r["topic"] == "Late")
    assert times["first_response_count"] == "1"
    assert abs(int(times["resolution_median_seconds"]) - 3600) <= 0.045 * 3600
    assert {r["section"] for r in rows} == {"volume", "overall_times", "topic_times", "channel_times", "agent_times"}


def test_csv_cells_cannot_become_spreadsheet_formulas(supervisor_client, admin_client, make_conversation):
    topic = admin_client.post("/api/v1/topics", json={"name": "=HYPERLINK(1)"}).json["id"]
    make_conversation(at(2024, 8, 1, 9), topics=(topic,))
    refresh()
    body = supervisor_client.get("/api/v1/reports/topics?from=2024-08-01&to=2024-08-02&format=csv").get_data(
        as_text=True
    )
    assert "'=HYPERLINK(1)" in body
    assert ",=HYPERLINK" not in body


def test_tagging_queues_the_day_and_the_next_refresh_counts_it(
    supervisor_client, agent_client, make_conversation, taxonomy
):
    conversation = make_conversation(at(2024, 9, 2, 9))
    refresh()
    assert counts_by_name(report(supervisor_client, **{"from": "2024-09-02", "to": "2024-09-03"})) == {
        "(no topic)": [1]
    }

    agent_client.put(f"/api/v1/conversations/{conversation}/topics", json={"topic_ids": [taxonomy["Late"]]})
    result = refresh()

    assert not result.full
    counts = counts_by_name(report(supervisor_client, **{"from": "2024-09-02", "to": "2024-09-03"}))
    assert counts == {"Delivery": [1], "Late": [1]}


def test_moving_a_subtopic_rebuilds_the_parent_rollups(supervisor_client, admin_client, make_conversation, taxonomy):
    make_conversation(at(2024, 9, 2, 9), topics=(taxonomy["Late"],))
    refresh()
    admin_client.patch(f"/api/v1/topics/{taxonomy['Late']}", json={"parent_id": taxonomy["Billing"]})
    assert report(supervisor_client, **{"from": "2024-09-02", "to": "2024-09-03"})["stats"]["rebuilding"] is True
    assert refresh().full
    counts = counts_by_name(report(supervisor_client, **{"from": "2024-09-02", "to": "2024-09-03"}))
    assert counts == {"Billing": [1], "Late": [1]}


def test_a_new_org_time_zone_rebuilds_the_days(app, supervisor_client, make_conversation):
    make_conversation(at(2024, 9, 2, 23, 30))  # 01:30 on the 3rd in Warsaw, still the 2nd in UTC
    refresh()
    assert report(supervisor_client, **{"from": "2024-09-03", "to": "2024-09-04"})["totals"]["total"] == 1

    app.config["ORG_TIMEZONE"] = "UTC"
    assert report(supervisor_client, **{"from": "2024-09-03", "to": "2024-09-04"})["stats"]["rebuilding"] is True
    assert refresh().full
    assert report(supervisor_client, **{"from": "2024-09-02", "to": "2024-09-03"})["totals"]["total"] == 1


def test_reports_are_for_supervisors(agent_client, supervisor_client, admin_client):
    assert agent_client.get("/api/v1/reports/topics").status_code == 403
    assert supervisor_client.get("/api/v1/reports/topics").status_code == 200
    assert admin_client.get("/api/v1/reports/topics?interval=week").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("interval=minute", "interval"),
        ("from=yesterday", "from/to"),
        ("from=2024-01-10&to=2024-01-01", "to"),
        ("from=2024-01-01&to=2024-03-01&interval=hour", "to"),
        ("team=abc", "team"),
    ],
)
def test_bad_report_parameters_are_422(supervisor_client, query, field):
    response = supervisor_client.get(f"/api/v1/reports/topics?{query}")
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_moving_an_old_conversation_to_another_team_or_resolving_it_refreshes_its_day(
    supervisor_client, admin_client, agent_client, make_conversation, taxonomy
):
    team = admin_client.post("/api/v1/teams", json={"name": "Returns"}).json["id"]
    conversation = make_conversation(at(2024, 3, 4, 10), topics=(taxonomy["Late"],))
    refresh()
    window = {"from": "2024-03-04", "to": "2024-03-05"}
    assert report(supervisor_client, **window, team=team)["totals"]["total"] == 0

    moved = agent_client.patch(f"/api/v1/conversations/{conversation}", json={"team_id": team})
    assert moved.status_code == 200, moved.json
    refresh()

    assert report(supervisor_client, **window, team=team)["totals"]["total"] == 1
    assert report(supervisor_client, **window, team="none")["totals"]["total"] == 0

    resolved = agent_client.patch(f"/api/v1/conversations/{conversation}", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.json
    refresh()

    assert report(supervisor_client, **window)["times"]["overall"]["resolution"]["count"] == 1
