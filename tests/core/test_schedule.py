"""Sync schedules: what is accepted, what is refused with which message, and stable slots."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import ConfigError
from core.schedule import DEFAULT_SCHEDULE, Schedule, parse_schedule

UTC = dt.UTC


@pytest.mark.parametrize(("text", "seconds", "described"), [
    ("every 15m", 900, "every 15m"),
    ("15m", 900, "every 15m"),
    ("every 2h", 7200, "every 2h"),
    ("every 1d", 86400, "every 1d"),
    ("every 30s", 30, "every 30s"),
    ("  Every  90 minutes ", 5400, "every 90m"),
    ("every 120m", 7200, "every 2h"),
])
def test_intervals(text: str, seconds: int, described: str) -> None:
    schedule = parse_schedule(text)
    assert schedule.interval == dt.timedelta(seconds=seconds) and schedule.cron is None
    assert schedule.describe() == described


def test_default_is_hourly() -> None:
    assert DEFAULT_SCHEDULE == "every 1h"
    assert parse_schedule("").interval == dt.timedelta(hours=1)


def test_crontab() -> None:
    schedule = parse_schedule("*/15  9-17 * * mon-fri")
    assert schedule.cron == "*/15 9-17 * * mon-fri" and schedule.interval is None
    assert schedule.describe() == "cron */15 9-17 * * mon-fri (UTC)"


@pytest.mark.parametrize("bad", [
    "every 15x", "every 0m", "every 1.5h", "sometimes", "every", "* * *", "61 * * * *",
    "0 9 * * 8", "* * * * 5-1",
])
def test_bad_schedule_names_value_and_accepted_forms(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_schedule(bad)
    message = str(info.value)
    assert f"invalid schedule {bad.strip()!r}" in message
    assert "every 15m" in message and "crontab" in message
    assert "\n" not in message


def test_interval_slot_is_stable_within_and_changes_across() -> None:
    every15 = parse_schedule("every 15m")
    start = dt.datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
    slots = {every15.slot(start + dt.timedelta(seconds=s)) for s in (0, 1, 450, 899)}
    assert slots == {"2025-03-04T10:15:00Z"}
    assert every15.slot(start + dt.timedelta(seconds=900)) == "2025-03-04T10:30:00Z"
    assert every15.slot(start - dt.timedelta(microseconds=1)) == "2025-03-04T10:00:00Z"
    # floor(epoch / interval): the same in any time zone the caller happens to use
    cet = dt.timezone(dt.timedelta(hours=1))
    assert every15.slot(start.astimezone(cet)) == "2025-03-04T10:15:00Z"
    # a new instance (another worker) agrees
    assert parse_schedule("15m").slot(start + dt.timedelta(minutes=7)) == "2025-03-04T10:15:00Z"


def test_cron_slot_is_previous_fire_time() -> None:
    hourly = parse_schedule("0 * * * *")
    at = dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    assert hourly.slot(at) == "2025-03-04T10:00:00Z"
    assert hourly.slot(at + dt.timedelta(minutes=59, seconds=59)) == "2025-03-04T10:00:00Z"
    assert hourly.slot(at - dt.timedelta(seconds=1)) == "2025-03-04T09:00:00Z"
    # weekly: a Wednesday falls in the slot of the Monday 09:00 before it
    weekly = parse_schedule("0 9 * * 1")
    assert weekly.slot(dt.datetime(2025, 3, 5, 12, tzinfo=UTC)) == "2025-03-03T09:00:00Z"
    yearly = parse_schedule("30 6 1 1 *")
    assert yearly.slot(dt.datetime(2025, 12, 31, tzinfo=UTC)) == "2025-01-01T06:30:00Z"


@pytest.mark.parametrize(("weekday", "fires_on"), [
    ("1", {"Monday"}), ("0", {"Sunday"}), ("7", {"Sunday"}), ("sun", {"Sunday"}),
    ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
    ("0,6", {"Saturday", "Sunday"}), ("5-7", {"Friday", "Saturday", "Sunday"}),
    ("*/2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
])
def test_cron_weekdays_count_as_crontab_does(weekday: str, fires_on: set[str]) -> None:
    """APScheduler 3 counts 0 as Monday; a crontab line means Sunday, and so do we."""
    trigger = parse_schedule(f"0 9 * * {weekday}").cron_trigger()
    fire = dt.datetime(2025, 3, 1, tzinfo=UTC)  # a Saturday
    days = set()
    for _ in range(14):
        fire = trigger.get_next_fire_time(None, fire + dt.timedelta(seconds=1))
        days.add(fire.strftime("%A"))
    assert days == fires_on


def test_schedule_needs_one_of_interval_or_cron() -> None:
    with pytest.raises(ValueError):
        Schedule()
    with pytest.raises(ValueError):
        Schedule(interval=dt.timedelta(0))
    with pytest.raises(ValueError):
        parse_schedule("every 1h").slot(dt.datetime(2025, 1, 1))  # naive: ambiguous
