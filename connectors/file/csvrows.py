"""CSV text into rows, quarantining the rows the csv module reads wrongly or not at all."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from collections.abc import Sequence

from core.errors import InputError
from core.tabular import Cell, Flaw, Flaws

MAX_CELL = 131_072
"""Characters a cell may hold: the csv module's own default limit, so what read before reads."""
SHOWN = 200
"""Characters of an oversized cell kept in the quarantined row, for the person fixing it."""
WIDTH_LINES = 200
_QUOTED = re.compile(r'"[^"]*"')
# The csv module refuses fields over its limit for the whole file; we cap cells ourselves,
# per row, so one huge cell costs its row, not the table.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _delimiters(line: str, delimiter: str) -> int:
    return _QUOTED.sub("", line).count(delimiter)


def row_width(lines: Sequence[str], delimiter: str) -> int:
    """The number of cells most of the first lines hold (quoted text not counted)."""
    counts = Counter(_delimiters(ln, delimiter) for ln in lines[:WIDTH_LINES] if ln.strip())
    return counts.most_common(1)[0][0] + 1 if counts else 1


def _ends_inside_quote(lines: Sequence[str], delimiter: str) -> bool:
    """Whether these lines, parsed as CSV, end inside a quoted cell (strict parsing says so)."""
    try:
        for _ in csv.reader(iter(lines), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "end of data" in str(exc)
    return False


def _swallows(record: Sequence[str], lines: Sequence[str], at_end: bool, width: int,
              delimiter: str) -> bool:
    """Whether a record spanning several lines is an unclosed quote eating the rows after it.

    Either the file ends inside its quote, or its cell count is off while one of the lines it
    took in holds a whole row's worth of delimiters (a legitimate cell with line breaks in it
    leaves the row with the table's width).
    """
    if at_end and _ends_inside_quote(lines, delimiter):
        return True
    return width >= 3 and len(record) != width and any(
        _delimiters(ln, delimiter) >= width - 1 for ln in lines[1:])


def _oversized(record: list[str]) -> int | None:
    if max(map(len, record), default=0) <= MAX_CELL:
        return None
    return next(pos for pos, cell in enumerate(record) if len(cell) > MAX_CELL)


def _first_line(line: str, delimiter: str) -> list[Cell]:
    """The cells of one physical line alone, for showing an unclosed quote's row."""
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return [c.rstrip("\r\n") for c in cells]


def read_csv(text: str, delimiter: str, name: str) -> tuple[list[list[Cell]], Flaws]:
    """The rows of a CSV and the rows that could not be read as they were meant.

    A row whose quote is never closed is quarantined, and reading goes on at the line after
    it, so the rows the quote would have swallowed are read as rows; a row with a cell over
    MAX_CELL characters is quarantined with that cell cut short. Either keeps its row number.

    Raises:
        InputError: when the text is not CSV at all.
    """
    lines = io.StringIO(text, newline="").readlines()  # split where csv splits: \n, \r, \r\n
    width = row_width(lines, delimiter)
    rows: list[list[Cell]] = []
    flaws = Flaws()
    start: int | None = 0
    try:
        while start is not None and start < len(lines):
            reader = csv.reader(itertools.islice(lines, start, None), delimiter=delimiter)
            first, restart = start, None
            for record in reader:
                last = start + reader.line_num
                number = len(rows) + 1
                if last - first > 1 and _swallows(record, lines[first:last], last == len(lines),
                                                  width, delimiter):
                    rows.append(_first_line(lines[first], delimiter))
                    flaws.rows[number] = Flaw(
                        f"a quote (\") opened in this row is never closed, so the {last - first - 1}"
                        " lines after it would read as part of one cell; close the quote (write"
                        " a quote inside a quoted cell as \"\") in the file")
                    restart = first + 1
                    break
                pos = _oversized(record)
                if pos is not None:
                    size = len(record[pos])
                    record[pos] = record[pos][:SHOWN] + f"… ({size:,} characters)"
                    flaws.rows[number] = Flaw(f"{size:,} characters, more than the {MAX_CELL:,} "
                                              "a cell may hold; shorten it", pos)
                rows.append(list(record))
                first = last
            start = restart
    except csv.Error as exc:
        raise InputError(f"{name}: not a readable CSV ({exc})") from None
    return rows, flaws
