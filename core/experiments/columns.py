"""The columns of an experiment table read into arrays: labels, numbers, yes/no, days."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.errors import InputError
from core.tabular.cells import Cell, is_missing
from core.tabular.dates import DateParser
from core.tabular.header import normalise
from core.tabular.numbers import parse_number

BOOLEAN = {"yes": 1.0, "y": 1.0, "true": 1.0, "no": 0.0, "n": 0.0, "false": 0.0}
FIRST_ROW = 2  # the row number a spreadsheet user sees for the first data row


def columns(rows: Sequence[Sequence[Cell]], wanted: Sequence[str],
            source: str) -> dict[str, list[Cell]]:
    """The wanted columns of a table whose first non-blank row is the header.

    Raises:
        InputError: when the table has no data rows or a wanted column is missing (naming
            the columns there are).
    """
    rows = [r for r in rows if any(not is_missing(c) for c in r)]
    if len(rows) < 2:
        raise InputError(f"{source}: the file is empty (no data rows)")
    header = [normalise(str(c)) if c is not None else "" for c in rows[0]]
    missing = [c for c in dict.fromkeys(wanted) if normalise(c) not in header]
    if missing:
        shown = ", ".join(repr(str(c)) for c in rows[0][:30])
        raise InputError(f"{source}: missing column {', '.join(repr(c) for c in missing)}; "
                         f"the columns are: {shown}")
    out = {}
    for c in dict.fromkeys(wanted):
        i = header.index(normalise(c))
        out[c] = [r[i] if i < len(r) else None for r in rows[1:]]
    return out


def numbers(source: str, name: str, values: Sequence[Cell]) -> np.ndarray[Any, Any]:
    """A column of numbers (yes/no read as 1/0).

    Raises:
        InputError: naming the first row that is empty or not a number.
    """
    try:  # the common case, plain numbers, converted at C speed
        out: np.ndarray[Any, Any] = np.asarray(values, dtype=np.float64)
        if np.isfinite(out).all():
            return out
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if is_missing(v):
            raise InputError(f"{source} row {i + FIRST_ROW}: column '{name}' is empty")
        if isinstance(v, str) and v.strip().lower() in BOOLEAN:
            out[i] = BOOLEAN[v.strip().lower()]
            continue
        try:
            out[i] = parse_number(v)
        except ValueError:
            raise InputError(f"{source} row {i + FIRST_ROW}: column '{name}': not a number "
                             f"{v!r}") from None
    return out


def labels(values: Sequence[Cell]) -> list[str]:
    """Cells as trimmed text, '' for a missing one."""
    return [str(v).strip() if not is_missing(v) else "" for v in values]


def days(source: str, name: str, values: Sequence[Cell], timezone: str = "UTC") -> list[str]:
    """Each cell's calendar day (ISO, in UTC, as the store keeps dates); '' when missing.

    Raises:
        InputError: naming the first row whose value is not a date.
    """
    parser = DateParser(None, timezone)
    parser.learn(values)
    out = []
    for i, v in enumerate(values):
        if is_missing(v):
            out.append("")
            continue
        try:
            out.append(parser.parse(v).date().isoformat())
        except ValueError as exc:
            raise InputError(f"{source} row {i + FIRST_ROW}: column '{name}': {exc}") from None
    return out
