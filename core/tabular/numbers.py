"""Numbers as people write them (1,234.5 / 1.234,5 / 1,5) and effort with an explicit unit."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable

from core.tabular.cells import Cell

HOURS_PER_DAY = 8.0
DAYS_PER_WEEK = 5
UNIT_WORDS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
}
"""Unit suffixes understood on effort values, and the time unit each one means."""
CACHE_SIZE = 100_000
CURRENCY = "$€£¥"
EFFORT, AMOUNT = "effort", "amount"

_GROUPING = re.compile(r"(?<=\d)[ '\u00a0\u202f](?=\d{3}(?!\d))")
_PLAIN = re.compile(r"^[-+]?(?:\d[\d.,]*|[.,]\d+)$")
_TERM = re.compile(r"\s*([-+]?(?:\d[\d.,]*|[.,]\d+))\s*([A-Za-z]+)\.?")
_DIGITS = re.compile(r"[-+]?[\d.,]*\d")
_AMOUNT = re.compile(rf"^([-+]?)\s*[{CURRENCY}]?\s*(\d[\d.,]*|[.,]\d+)\s*[{CURRENCY}]?$")


def time_unit(name: str) -> str | None:
    """The time unit a configured unit name means ("h", "Hours" -> "hours"); None otherwise."""
    return UNIT_WORDS.get(name.strip().lower())


def hours_per(unit: str, hours_per_day: float = HOURS_PER_DAY) -> float:
    """How many hours one `unit` (minutes, hours, days, weeks) is."""
    return {"minutes": 1 / 60, "hours": 1.0, "days": hours_per_day,
            "weeks": DAYS_PER_WEEK * hours_per_day}[unit]


def _separator_evidence(digits: str) -> bool | None:
    """True if the text shows a decimal comma, False a decimal point, None if it cannot tell."""
    comma, dot = digits.rfind(","), digits.rfind(".")
    if comma >= 0 and dot >= 0:
        return comma > dot
    sep = comma if comma >= 0 else dot
    if sep < 0 or digits.count(digits[sep]) > 1:
        return None
    head, tail = digits[:sep].lstrip("+-"), digits[sep + 1:]
    if len(tail) != 3 or head in ("", "0"):
        return sep == comma
    return None


class UnitError(ValueError):
    """A unit suffix that is unknown or cannot be converted into the table's unit."""


def _ungroup(text: str, sep: str) -> str:
    parts = text.split(sep)
    head = parts[0].lstrip("+-")
    if not 1 <= len(head) <= 3 or any(len(p) != 3 for p in parts[1:]):
        raise ValueError(text)
    return text.replace(sep, "")


def to_float(digits: str, decimal_comma: bool | None = None) -> float:
    """A number from digits with separators; `decimal_comma` settles a lone '1,234'.

    Args:
        digits: the number as written, without unit or currency.
        decimal_comma: whether the column writes decimal commas (None: unknown, read a lone
            comma followed by three digits as a thousands separator).

    Raises:
        ValueError: for text that is not a number (including bad digit grouping).
    """
    text = _GROUPING.sub("", digits)
    comma, dot = text.rfind(","), text.rfind(".")
    if comma >= 0 and dot >= 0:
        decimal, thousands = (",", ".") if comma > dot else (".", ",")
        whole, _, fraction = text.rpartition(decimal)
        text = _ungroup(whole, thousands) + "." + fraction
    elif comma >= 0 or dot >= 0:
        sep = "," if comma >= 0 else "."
        evidence = _separator_evidence(text)
        if text.count(sep) > 1:
            is_decimal = False
        elif evidence is not None:
            is_decimal = evidence == (sep == ",")
        else:
            is_decimal = (sep == ",") == bool(decimal_comma)
        text = text.replace(sep, ".") if is_decimal else _ungroup(text, sep)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(digits)
    return value


class NumberParser:
    """Parses one column's numbers, remembering whether the column writes decimal commas.

    Effort values may carry a time unit (`3h`, `2 d`, `1w 2d`, `90 min`), converted into the
    table's `unit` with `hours_per_day` hours a day and 5 days a week; a unit that cannot be
    converted (a time unit in a table counted in points, `3 pts`) is rejected. Amounts may
    carry a currency symbol and never a unit.

    Args:
        unit: the table's unit of effort (hours, days, ... or a non-time unit such as points).
        hours_per_day: hours in a day of effort.
        kind: EFFORT or AMOUNT.
    """

    def __init__(self, unit: str = "hours", hours_per_day: float = HOURS_PER_DAY,
                 kind: str = EFFORT) -> None:
        self.unit = unit
        self.target = time_unit(unit)
        self.hours_per_day = hours_per_day
        self.kind = kind
        self._decimal_comma: bool | None = None
        self._cache: dict[str, float] = {}

    @property
    def decimal_comma(self) -> bool | None:
        """Whether the column writes decimal commas (None: it has not shown it)."""
        return self._decimal_comma

    @decimal_comma.setter
    def decimal_comma(self, value: bool | None) -> None:
        self._decimal_comma = value
        self._cache.clear()

    def learn(self, values: Iterable[Cell]) -> bool | None:
        """Settle decimal comma vs point from the first value that shows it.

        Returns:
            True for decimal commas, False for points, None when the column never shows it.
        """
        for v in values:
            if isinstance(v, str) and ("," in v or "." in v):
                m = _DIGITS.search(_GROUPING.sub("", v))
                evidence = _separator_evidence(m.group(0)) if m else None
                if evidence is not None:
                    self.decimal_comma = evidence
                    break
        return self.decimal_comma

    def parse(self, value: Cell) -> float:
        """A float from a cell, in the table's unit.

        Raises:
            ValueError: "not a number: '...'" or a sentence about the unit.
        """
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        if isinstance(value, int | float):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"not a number: {value!r}")
            return number
        if isinstance(value, dt.timedelta | dt.time) and self.kind == EFFORT:
            hours = value.total_seconds() / 3600 if isinstance(value, dt.timedelta) else \
                value.hour + value.minute / 60 + value.second / 3600
            return self._convert(hours, "hours", str(value))
        if not isinstance(value, str):
            raise ValueError(f"not a number: {value!r}")
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        number = self._text(value.strip())
        if len(self._cache) < CACHE_SIZE:
            self._cache[value] = number
        return number

    def _text(self, text: str) -> float:
        try:
            if _PLAIN.match(_GROUPING.sub("", text)):
                return to_float(text, self.decimal_comma)
            if self.kind == AMOUNT:
                m = _AMOUNT.match(text)
                if m:
                    return to_float(m.group(1) + m.group(2), self.decimal_comma)
            else:
                return self._with_units(text)
        except UnitError:
            raise
        except ValueError:
            pass
        raise ValueError(f"not a number: {text!r}")

    def _with_units(self, text: str) -> float:
        total, end = 0.0, 0
        for m in _TERM.finditer(text):
            if m.start() != end:
                break
            end = m.end()
            number, word = to_float(m.group(1), self.decimal_comma), m.group(2)
            source = UNIT_WORDS.get(word.lower())
            if source is None:
                if word.lower() == self.unit.strip().lower():
                    total += number
                    continue
                raise UnitError(f"unit {word!r} in {text!r} is not a time unit "
                                 f"(known: h, d, w, min)")
            total += self._convert(number, source, text)
        if end != len(text) or end == 0:
            raise ValueError(text)
        return round(total, 9)

    def _convert(self, number: float, source: str, shown: str) -> float:
        if self.target is None:
            raise UnitError(f"unit of {shown!r} cannot be converted to {self.unit!r}")
        factor = hours_per(source, self.hours_per_day) / hours_per(self.target, self.hours_per_day)
        return round(number * factor, 9)


def parse_number(value: Cell, unit: str = "hours", hours_per_day: float = HOURS_PER_DAY) -> float:
    """One effort value outside a column: `1,234.5`, `1.234,5`, `1,5`, `3h`, `2 d` (in `unit`).

    Raises:
        ValueError: for a cell that is not a number, or a unit that cannot be converted.
    """
    return NumberParser(unit, hours_per_day).parse(value)
