"""Business hours: whether a channel is open at a given moment (voice routing, the chat widget, auto-replies).

A schedule is ``{"timezone": "Europe/Warsaw", "days": {"mon": [["09:00", "17:00"]], …}, "dates": {…}}``:
- ``days`` maps mon…sun to lists of [start, end) ranges in local time; a missing day is closed; "24:00" ends at
  midnight; a range whose end is before its start runs past midnight into the next day;
- ``dates`` (optional) overrides whole days by ISO date, e.g. ``{"2025-12-24": [["09:00", "13:00"]],
  "2025-12-25": []}`` for holidays;
- ``None`` (no schedule) means always open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class InvalidSchedule(ValueError):
    """A business-hours schedule that cannot be evaluated."""


def _minutes(value: str) -> int:
    try:
        hours, minutes = value.split(":")
        total = int(hours) * 60 + int(minutes)
    except (AttributeError, ValueError):
        raise InvalidSchedule(f"not a HH:MM time: {value!r}") from None
    if not 0 <= int(minutes) < 60 or not 0 <= total <= 24 * 60:
        raise InvalidSchedule(f"not a HH:MM time: {value!r}")
    return total


def _ranges(value: Any) -> list[tuple[int, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSchedule("a day's hours must be a list of [start, end] pairs")
    ranges = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidSchedule("a day's hours must be a list of [start, end] pairs")
        ranges.append((_minutes(pair[0]), _minutes(pair[1])))
    return ranges


def _zone(schedule: Mapping[str, Any]) -> ZoneInfo:
    name = schedule.get("timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown time zone {name!r}") from None


def validate_schedule(schedule: Mapping[str, Any] | None) -> None:
    """Raise InvalidSchedule when ``schedule`` is malformed (for admin input)."""
    if schedule is None:
        return
    if not isinstance(schedule, Mapping):
        raise InvalidSchedule("business hours must be an object")
    _zone(schedule)
    days = schedule.get("days") or {}
    if not isinstance(days, Mapping):
        raise InvalidSchedule("'days' must map mon…sun to hour ranges")
    for key, value in days.items():
        if key not in DAY_KEYS:
            raise InvalidSchedule(f"unknown day {key!r}; use {', '.join(DAY_KEYS)}")
        _ranges(value)
    dates = schedule.get("dates") or {}
    if not isinstance(dates, Mapping):
        raise InvalidSchedule("'dates' must map ISO dates to hour ranges")
    for key, value in dates.items():
        try:
            dt.date.fromisoformat(str(key))
        except ValueError:
            raise InvalidSchedule(f"not an ISO date: {key!r}") from None
        _ranges(value)


def _day_ranges(schedule: Mapping[str, Any], day: dt.date) -> list[tuple[int, int]]:
    dates = schedule.get("dates") or {}
    if day.isoformat() in dates:
        return _ranges(dates[day.isoformat()])
    return _ranges((schedule.get("days") or {}).get(DAY_KEYS[day.weekday()]))


def is_open(schedule: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    """Return whether the schedule is open at ``now`` (an aware datetime); no schedule means always open."""
    if schedule is None:
        return True
    if now.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass a timezone-aware datetime")
    local = now.astimezone(_zone(schedule))
    minute = local.hour * 60 + local.minute
    for start, end in _day_ranges(schedule, local.date()):
        if start < end and start <= minute < end:
            return True
        if end < start and minute >= start:  # runs past midnight
            return True
    # The tail of yesterday's overnight range.
    for start, end in _day_ranges(schedule, local.date() - dt.timedelta(days=1)):
        if end < start and minute < end:
            return True
    return False
