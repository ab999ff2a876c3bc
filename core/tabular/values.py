"""Cell values: missing values, numbers and dates, and a column's guessed type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from core.tabular.cells import MISSING, Cell, cell_id, cell_text, is_missing
from core.tabular.dates import DateParser, parse_date
from core.tabular.numbers import NumberParser, parse_number

GUESS_SAMPLE = 200


def guess_type(values: Sequence[Cell]) -> str:
    """`date`, `number` or `string`: what a column's filled values all read as.

    Args:
        values: the column's cells (a sample is enough; missing cells are ignored).
    """
    filled = [v for v in values[:GUESS_SAMPLE] if not is_missing(v)]
    if not filled:
        return "string"
    if all(isinstance(v, dt.date) for v in filled):
        return "date"
    numbers = NumberParser()
    numbers.learn(filled)
    if all(_reads(numbers.parse, v) for v in filled):
        return "number"
    dates = DateParser()
    dates.learn(filled)
    if all(isinstance(v, str) and _reads(dates.parse, v) for v in filled):
        return "date"
    return "string"


def _reads(parse: Callable[[Cell], object], value: Cell) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


__all__ = ["MISSING", "Cell", "DateParser", "NumberParser", "cell_id", "cell_text", "guess_type",
           "is_missing", "parse_date", "parse_number"]
