"""Cell values as tables hold them, and which of them count as missing."""

from __future__ import annotations

import datetime as dt

Cell = str | int | float | dt.datetime | dt.date | dt.time | dt.timedelta | None
"""One cell: text from a CSV, or the typed values an XLSX or Sheets API returns."""

MISSING = frozenset({"", "\\n", "na", "n/a", "#n/a", "-", "--", "null", "nan"})
"""Text that means "no value" (compared trimmed and case-insensitively)."""


def is_missing(value: Cell) -> bool:
    """Whether a cell holds no value: None, NaN, blank, `NA`, `n/a`, `-`, `\\N`, `null`.

    Args:
        value: the cell.

    Returns:
        True when the cell is empty in meaning.
    """
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in MISSING
    return isinstance(value, float) and value != value


def cell_text(value: Cell) -> str:
    """A cell as the user wrote it, for raw payloads: '' for None, else `str(value)`."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def cell_id(value: Cell) -> str | None:
    """A cell as an item id: trimmed text, whole numbers without '.0'; None when missing."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def column_letter(position: int) -> str:
    """The spreadsheet letter of a 0-based column position: 0 -> A, 26 -> AA."""
    letters = ""
    n = position + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
