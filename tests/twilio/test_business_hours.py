"""Business hours (shared by voice routing and the chat widget)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.services.hours import InvalidSchedule, is_open, validate_schedule

WARSAW = ZoneInfo("Europe/Warsaw")
SCHEDULE = {
    "timezone": "Europe/Warsaw",
    "days": {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "12:00"], ["13:00", "17:00"]],
        "fri": [["22:00", "02:00"]],
        "sun": [["00:00", "24:00"]],
    },
    "dates": {"2025-01-06": [], "2025-01-07": [["10:00", "11:00"]]},
}


def _at(day: int, hour: int, minute: int = 0, month: int = 1) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=WARSAW)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (_at(13, 9, 0), True),  # Monday opening minute
        (_at(13, 16, 59), True),
        (_at(13, 17, 0), False),  # the end is exclusive
        (_at(13, 8, 59), False),
        (_at(14, 12, 30), False),  # Tuesday lunch break
        (_at(14, 13, 0), True),
        (_at(15, 10, 0), False),  # Wednesday has no hours
        (_at(17, 23, 0), True),  # Friday night, overnight range
        (_at(18, 1, 59), True),  # …into Saturday morning
        (_at(18, 2, 0), False),
        (_at(19, 0, 0), True),  # Sunday all day
        (_at(19, 23, 59), True),
        (_at(6, 10, 0), False),  # a holiday override on a Monday
        (_at(7, 10, 30), True),  # a short day override on a Tuesday
        (_at(7, 14, 0), False),
    ],
)
def test_is_open(moment: dt.datetime, expected: bool) -> None:
    assert is_open(SCHEDULE, moment) is expected


def test_time_zone_is_applied_to_utc_moments() -> None:
    # 08:30 UTC in July is 10:30 in Warsaw (CEST): open on a Monday.
    assert is_open(SCHEDULE, dt.datetime(2025, 7, 14, 8, 30, tzinfo=dt.UTC))
    assert not is_open(SCHEDULE, dt.datetime(2025, 7, 14, 15, 30, tzinfo=dt.UTC))


def test_no_schedule_is_always_open_and_empty_days_always_closed() -> None:
    assert is_open(None, dt.datetime(2025, 1, 1, 3, tzinfo=dt.UTC))
    assert not is_open({"timezone": "UTC", "days": {}}, dt.datetime(2025, 1, 1, 3, tzinfo=dt.UTC))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        is_open(SCHEDULE, dt.datetime(2025, 1, 13, 10))


@pytest.mark.parametrize(
    "schedule",
    [
        {"timezone": "Mars/Olympus"},
        {"days": {"monday": [["09:00", "17:00"]]}},
        {"days": {"mon": [["9", "17:00"]]}},
        {"days": {"mon": [["09:00", "25:00"]]}},
        {"days": {"mon": ["09:00-17:00"]}},
        {"dates": {"24/12": []}},
    ],
)
def test_malformed_schedules_are_refused(schedule: dict) -> None:
    with pytest.raises(InvalidSchedule):
        validate_schedule(schedule)


def test_valid_schedule_passes_validation() -> None:
    validate_schedule(SCHEDULE)
    validate_schedule(None)
