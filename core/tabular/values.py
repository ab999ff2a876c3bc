"""Cell values: numbers in the common notations and dates in the common formats."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

MISSING = frozenset({"", "\\n", "na", "n/a", "null", "none", "-", "--", "nan", "#n/a"})
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_NUM_UNIT = re.compile(r"^\s*([-+]?[\d.,\s]*\d)\s*([a-zA-Z]*)\s*$")
UNIT_FACTORS = {"": 1.0}

Cell = str | int | float | dt.datetime | dt.date | None


def is_missing(value: Cell) -> bool:
    """Whether a cell holds no value (blank, NA, \\N, -, ...)."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING


def parse_number(value: Cell) -> float:
    """A number from a cell: 1234.5, "1,234.5", "1.234,5", "1,5" (decimal comma), "12 h".

    A unit suffix is accepted only when it is a plain word (h, hours, d, pts); the number is
    returned as written, in the table's unit.

    Raises:
        ValueError: naming the text that is not a number.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a number: {value!r}")
    m = _NUM_UNIT.match(value)
    if not m:
        raise ValueError(f"not a number: {value.strip()!r}")
    text = m.group(1).replace(" ", "")
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else \
            text.replace(".", "").replace(",", ".")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        # "1,234" is a thousands separator; "1,5" and "12,25" are decimal commas.
        text = text.replace(",", "") if len(tail) == 3 and head.lstrip("+-").isdigit() else \
            text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {value.strip()!r}") from None


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NUMERIC = re.compile(r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{2,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_TEXT_FORMATS = ("%d-%b-%y", "%d-%b-%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y",
                 "%b %d %Y", "%d %b %y", "%Y/%m/%d", "%d-%B-%Y")


class DateParser:
    """Parses one column's dates; remembers whether the column is day-first once it can tell.

    Args:
        dayfirst: True or False to force the order of numeric dates (01/02/2024); None to
            infer it per column from a day above 12 (until then, month-first is assumed for
            '/' and day-first for '.' and '-').
        timezone: the zone naive values are in; results are aware UTC.
    """

    def __init__(self, dayfirst: bool | None = None, timezone: str = "UTC") -> None:
        self.dayfirst = dayfirst
        self.zone = ZoneInfo(timezone)

    def _aware(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    def learn(self, values: list[Cell]) -> None:
        """Settle day-first vs month-first from a column's values when they show it."""
        if self.dayfirst is not None:
            return
        for v in values:
            if isinstance(v, str):
                m = _NUMERIC.match(v.strip())
                if m and len(m.group(1)) <= 2:
                    a, b = int(m.group(1)), int(m.group(2))
                    if a > 12 >= b:
                        self.dayfirst = True
                        return
                    if b > 12 >= a:
                        self.dayfirst = False
                        return

    def parse(self, value: Cell) -> dt.datetime:
        """An aware UTC datetime from a cell.

        Raises:
            ValueError: naming the text that is not a date.
        """
        if isinstance(value, dt.datetime):
            return self._aware(value)
        if isinstance(value, dt.date):
            return self._aware(dt.datetime(value.year, value.month, value.day))
        if isinstance(value, int | float) and not isinstance(value, bool):
            if 1 <= value < 2958466:  # an Excel/Sheets serial day number
                return self._aware(EXCEL_EPOCH + dt.timedelta(days=float(value)))
            raise ValueError(f"not a date: {value!r}")
        if not isinstance(value, str):
            raise ValueError(f"not a date: {value!r}")
        text = value.strip()
        try:
            if _ISO.match(text):
                return self._aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
            m = _NUMERIC.match(text)
            if m:
                return self._aware(self._numeric(m))
            for fmt in _TEXT_FORMATS:
                try:
                    return self._aware(dt.datetime.strptime(text, fmt))
                except ValueError:
                    continue
        except ValueError:
            pass
        raise ValueError(f"unparseable date {text!r}")

    def _numeric(self, m: re.Match[str]) -> dt.datetime:
        a, b, c = m.group(1), m.group(2), m.group(3)
        hh, mm, ss = (int(x) if x else 0 for x in (m.group(4), m.group(5), m.group(6)))
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        else:
            sep_dayfirst = self.dayfirst if self.dayfirst is not None else "/" not in m.group(0)
            first, second = int(a), int(b)
            day, month = (first, second) if sep_dayfirst else (second, first)
            year = int(c) + (2000 if int(c) < 70 else 1900) if len(c) == 2 else int(c)
        return dt.datetime(year, month, day, hh, mm, ss)


def cell_id(value: Cell) -> str | None:
    """A cell as an item id: trimmed text, whole floats without '.0'; None when blank."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
