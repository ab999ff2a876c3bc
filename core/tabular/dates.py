"""Dates in the formats people and spreadsheet exports write them, returned as aware UTC."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError
from core.tabular.cells import Cell

CACHE_SIZE = 100_000
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
SERIAL_RANGE = (18264.0, 109574.0)  # 1950-01-01 .. 2200-01-01 as spreadsheet serial days
MONTHS = {
    name: number
    for number, names in enumerate(
        (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")),
        start=1,
    )
    for name in names
}

_WEEKDAY = r"(?:[A-Za-z]{3,9}\.?,?\s+)?"
_TIME = (r"(?:(?:\s+|T|,\s*)(?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2})(?:\.\d+)?)?"
         r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?")
_NUMERIC = re.compile(
    rf"^{_WEEKDAY}(?P<a>\d{{1,4}})(?P<sep>[/.\-])(?P<b>\d{{1,2}})(?P=sep)(?P<c>\d{{2,4}}){_TIME}$")
_DAY_MONTH = re.compile(
    rf"^{_WEEKDAY}(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[\s\-/.]+(?P<mon>[A-Za-z]{{3,9}})\.?"
    rf"[\s\-/.,]+(?P<y>\d{{4}}|\d{{2}}){_TIME}$")
_MONTH_DAY = re.compile(
    rf"^{_WEEKDAY}(?P<mon>[A-Za-z]{{3,9}})\.?[\s\-/.]+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?"
    rf"[\s\-/.]+(?P<y>\d{{4}}|\d{{2}}){_TIME}$")
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")
_ORDER_EVIDENCE = re.compile(r"^\D*?(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}\b")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`.

    Raises:
        ConfigError: naming the unknown zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name like "
                          "'Europe/Berlin' or 'UTC')") from None


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 69 else 1900)  # the pivot Python's %y uses
    return year


class DateParser:
    """Parses one column's dates, remembering what the column showed about its format.

    Numeric dates (03/04/2025) are read day-first or month-first: `dayfirst` forces the order;
    None infers it from the column (`learn`): a first number above 12 means day-first, a second
    number above 12 means month-first. A column that never shows it takes `fallback` (the
    table's other date columns, else month-first), except dates written with dots
    (03.04.2025), which are day-first wherever they are used.

    Args:
        dayfirst: force the order of numeric dates; None to infer it.
        timezone: IANA zone of values without an offset; results are always aware UTC.
    """

    def __init__(self, dayfirst: bool | None = None, timezone: str = "UTC") -> None:
        self.dayfirst = dayfirst
        self._fallback = False
        self.zone = dt.UTC if timezone.upper() == "UTC" else zone(timezone)
        self._branches = [self._iso, self._numeric, self._named, self._serial_text]
        self._cache: dict[str, dt.datetime] = {}

    @property
    def fallback(self) -> bool:
        """The order used for numeric dates when neither config nor column settles it."""
        return self._fallback

    @fallback.setter
    def fallback(self, value: bool) -> None:
        self._fallback = value
        self._cache.clear()

    def learn(self, values: Iterable[Cell]) -> bool | None:
        """Settle day-first vs month-first from the first value that shows it.

        Returns:
            The order now known (True day-first, False month-first), or None if still open.
        """
        if self.dayfirst is not None:
            return self.dayfirst
        for v in values:
            if not isinstance(v, str):
                continue
            m = _ORDER_EVIDENCE.match(v.strip())
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if a > 12 >= b:
                    self.dayfirst = True
                    break
                if b > 12 >= a:
                    self.dayfirst = False
                    break
        self._cache.clear()
        return self.dayfirst

    def parse(self, value: Cell) -> dt.datetime:
        """An aware UTC datetime from a cell.

        Raises:
            ValueError: "unparseable date '...'" for anything that is not a date.
        """
        if isinstance(value, dt.datetime):
            return self._aware(value)
        if isinstance(value, dt.date):
            return self._aware(dt.datetime(value.year, value.month, value.day))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._serial(float(value), value)
        if not isinstance(value, str):
            raise ValueError(f"unparseable date {value!r}")
        parsed = self._cache.get(value)
        if parsed is not None:
            return parsed
        text = value.strip()
        try:
            parsed = self._text(text)
        except (ValueError, OverflowError):
            parsed = None
        if parsed is None:
            raise ValueError(f"unparseable date {text!r}")
        if len(self._cache) < CACHE_SIZE:
            self._cache[value] = parsed
        return parsed

    def _aware(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def _serial(self, days: float, shown: Cell) -> dt.datetime:
        if not SERIAL_RANGE[0] <= days < SERIAL_RANGE[1]:
            raise ValueError(f"unparseable date {shown!r} (a number, but not a date serial)")
        return self._aware(EXCEL_EPOCH + dt.timedelta(days=days))

    def _text(self, text: str) -> dt.datetime | None:
        for i, branch in enumerate(self._branches):
            parsed = branch(text)
            if parsed is not None:
                if i:  # the format that worked goes first: a column is usually uniform
                    self._branches.insert(0, self._branches.pop(i))
                return parsed
        return None

    def _iso(self, text: str) -> dt.datetime | None:
        if len(text) < 8 or not text[:4].isdigit() or text[4:5] == "/":
            return None
        try:
            return self._aware(dt.datetime.fromisoformat(text))
        except ValueError:
            return None

    def _numeric(self, text: str) -> dt.datetime | None:
        m = _NUMERIC.match(text)
        if m is None:
            return None
        a, b, c = m["a"], m["b"], m["c"]
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        elif len(a) <= 2:
            first = self.dayfirst
            if first is None:
                first = True if m["sep"] == "." else self.fallback
            day, month = (int(a), int(b)) if first else (int(b), int(a))
            year = _year(c)
        else:
            return None
        return self._build(year, month, day, m)

    def _named(self, text: str) -> dt.datetime | None:
        m = _DAY_MONTH.match(text) or _MONTH_DAY.match(text)
        if m is None:
            return None
        month = MONTHS.get(m["mon"].lower())
        if month is None:
            raise ValueError(text)
        return self._build(_year(m["y"]), month, int(m["d"]), m)

    def _serial_text(self, text: str) -> dt.datetime | None:
        if not _SERIAL.match(text):
            return None
        return self._serial(float(text), text)

    def _build(self, year: int, month: int, day: int, m: re.Match[str]) -> dt.datetime:
        hour = int(m["hh"]) if m["hh"] else 0
        if m["ampm"]:
            if not 1 <= hour <= 12:
                raise ValueError(m.string)
            hour = hour % 12 + (12 if m["ampm"][0] in "Pp" else 0)
        value = dt.datetime(year, month, day, hour, int(m["mi"] or 0), int(m["ss"] or 0))
        tz = m["tz"]
        if tz and tz not in ("Z", "UTC", "GMT"):
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return value.replace(tzinfo=dt.timezone(sign * offset)).astimezone(dt.UTC)
        if tz:
            return value.replace(tzinfo=dt.UTC)
        return self._aware(value)


def parse_date(value: Cell, dayfirst: bool | None = None, timezone: str = "UTC") -> dt.datetime:
    """One date outside a column (month-first when the order is unknown); see DateParser.

    Raises:
        ValueError: for anything that is not a date.
    """
    return DateParser(dayfirst, timezone).parse(value)

