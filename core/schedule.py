"""When a connection syncs: "every 15m" or a crontab line, and the time slot a run belongs to.

A slot names one scheduled run ("the 10:15 sync"): every worker computes the same slot for the
same moment, so a claim keyed by it lets exactly one of several workers run it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from core.errors import ConfigError

DEFAULT_SCHEDULE = "every 1h"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ACCEPTED = ("'every 15m' (a number and s, m, h or d; 'every' may be left out) "
            "or a 5-field crontab line in UTC such as '*/15 * * * *'")

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_INTERVAL = re.compile(r"^(?:every\s+)?(\d+)\s*([a-z]+)$")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# How far back to look for a crontab's previous fire time, shortest first (4 years and a day
# cover a 29 February that falls on a given weekday only rarely; beyond that, see `slot`).
_LOOKBACK = tuple(dt.timedelta(days=d) for d in (1 / 1440, 1 / 24, 1, 7, 32, 367, 1462, 2923))


def _weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms.

    Crontab counts 0 (and 7) as Sunday; APScheduler 3.x counts 0 as Monday. Names mean the same
    to both, so numbers, ranges and steps are turned into day names.
    """
    names = {n: i for i, n in enumerate(_DAYS)}
    days: set[int] = set()

    def day(token: str) -> int:
        if token.isdigit() and int(token) <= 7:
            return int(token)
        if token in names:
            return names[token]
        raise ValueError(f"day of week {token!r} is not 0-7 or sun-sat")

    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit():
            raise ValueError(f"day-of-week step {step_text!r} is not a number")
        step = int(step_text) if slash else 1
        if step < 1:
            raise ValueError("a day-of-week step must be at least 1")
        if span in ("*", "?"):
            first, last = 0, 6
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = day(a), day(b)
        else:
            first = day(span)
            last = 6 if slash else first
        if last < first:
            raise ValueError(f"day-of-week range {span!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_DAYS[d] for d in sorted(days))


def _cron_trigger(expr: str) -> CronTrigger:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, this one has {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_weekdays(weekday), timezone=dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Schedule:
    """A sync schedule: a fixed interval (aligned to the Unix epoch) or a UTC crontab line."""

    interval: dt.timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("a Schedule has either an interval or a crontab line")
        if self.interval is not None and self.interval <= dt.timedelta(0):
            raise ValueError("a Schedule's interval must be positive")

    def describe(self) -> str:
        """The schedule as a person reads it: 'every 15m', 'cron 0 9 * * 1-5 (UTC)'."""
        if self.cron is not None:
            return f"cron {self.cron} (UTC)"
        assert self.interval is not None
        seconds = self.interval.total_seconds()
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {int(seconds // size)}{unit}"
        return f"every {seconds:g}s"

    def cron_trigger(self) -> CronTrigger:
        """The APScheduler trigger of a crontab schedule (weekdays as crontab counts them)."""
        if self.cron is None:
            raise ValueError("not a crontab schedule")
        return _cron_trigger(self.cron)

    def slot(self, now: dt.datetime) -> str:
        """The time slot `now` falls in, as the UTC time it started ('2025-01-01T10:15:00Z').

        For an interval the slots are floor(epoch seconds / interval), so every worker agrees
        on them without talking to each other; for a crontab line the slot is its previous
        fire time (at or before `now`). Stable for every `now` inside one slot.
        """
        if now.tzinfo is None:
            raise ValueError("slot() needs a timezone-aware time")
        if self.interval is not None:
            index = (now - EPOCH) // self.interval  # exact: timedelta arithmetic, no floats
            return _stamp(EPOCH + index * self.interval)
        trigger = self.cron_trigger()
        for back in _LOOKBACK:
            fire: Any = trigger.get_next_fire_time(None, now - back)
            if fire is None or fire > now:
                continue
            while True:  # walk forward to the last fire time that is not after `now`
                later: Any = trigger.get_next_fire_time(None, fire + dt.timedelta(seconds=1))
                if later is None or later > now:
                    return _stamp(fire)
                fire = later
        # Fires less often than every 8 years: name the slot by the next fire instead, which is
        # just as stable until then.
        upcoming: Any = trigger.get_next_fire_time(None, now)
        return "before " + (_stamp(upcoming) if upcoming is not None else "never")


def parse_schedule(text: str | None) -> Schedule:
    """Read a schedule: 'every 15m', '2h', 'every 1d', 'every 30s' or a 5-field crontab line.

    Empty text means the default, every hour.

    Raises:
        ConfigError: naming the bad value and the accepted forms.
    """
    raw = (text or "").strip()
    if not raw:
        raw = DEFAULT_SCHEDULE
    lowered = " ".join(raw.lower().split())
    match = _INTERVAL.match(lowered)
    if match:
        number, unit = int(match.group(1)), match.group(2)
        if unit not in _UNITS:
            raise ConfigError(f"invalid schedule {raw!r}: unknown unit {unit!r}; use {ACCEPTED}")
        if number == 0:
            raise ConfigError(f"invalid schedule {raw!r}: the interval must be more than 0; "
                              f"use {ACCEPTED}")
        return Schedule(interval=dt.timedelta(seconds=number * _UNITS[unit]))
    fields = lowered.split()
    if len(fields) == 5 and not lowered.startswith("every"):
        expr = " ".join(fields)
        try:
            _cron_trigger(expr)
        except ValueError as exc:
            raise ConfigError(f"invalid schedule {raw!r}: {exc}; use {ACCEPTED}") from None
        return Schedule(cron=expr)
    raise ConfigError(f"invalid schedule {raw!r}; use {ACCEPTED}")
