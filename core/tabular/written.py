"""learnloop's own columns in a table: their titles, safe cell values, and reading them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.tabular.cells import Cell, cell_id, cell_text
from core.tabular.header import find_header, normalise

COLUMNS = {
    "delta": "learnloop Δ",
    "forecast_p50": "learnloop P50",
    "forecast_p80": "learnloop P80",
    "forecast_p90": "learnloop P90",
    "forecast_finish_p80": "learnloop finish P80",
    "effort_factor": "learnloop factor",
    "insight": "learnloop insight",
}
"""Write-back payload key -> the title of the column it goes to, in column order."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Text starting with these is run as a formula by spreadsheet apps (CSV injection)."""
OWN_SUFFIX = " (learnloop)"

Written = dict[str, dict[str, Cell]]
"""Item id -> payload key -> the cell value written."""


def our_titles(user_columns: Sequence[str]) -> dict[str, str]:
    """Payload key -> our column title, suffixed so it never takes the name of a user column.

    Args:
        user_columns: the table's own column names.
    """
    taken = {normalise(n) for n in user_columns}
    titles = {}
    for key, title in COLUMNS.items():
        while normalise(title) in taken:
            title += OWN_SUFFIX
        titles[key] = title
    return titles


def cell_value(value: Any, plain_text: bool) -> Cell:
    """A payload value as a cell: None stays empty, numbers stay numbers, the rest is text.

    Args:
        value: the payload value.
        plain_text: the table is plain text (CSV): numbers become text, and text a spreadsheet
            app would run as a formula gets a leading `'`. Typed tables (XLSX, Sheets) must
            instead store text cells as strings.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return cell_text(value) if plain_text else value
    text = str(value)
    if plain_text and text.startswith(FORMULA_START):
        return "'" + text
    return text


def read_written(rows: Sequence[Sequence[Cell]], id_column: str,
                 titles: Mapping[str, str]) -> Written:
    """Our values already in a table (a previous copy), by item id; the first row of an id wins.

    Args:
        rows: the table as read back.
        id_column: the name of the id column.
        titles: payload key -> our column title, as `our_titles` gave them.
    """
    header = find_header(rows, id_column)
    if header is None:
        return {}
    id_pos = header.find(id_column)[0]
    ours = {k: header.find(t)[-1] for k, t in titles.items() if header.find(t)}
    written: Written = {}
    for row in rows[header.row_number:]:
        ext = cell_id(row[id_pos]) if id_pos < len(row) else None
        if ext is None or ext in written:
            continue
        written[ext] = {k: row[p] for k, p in ours.items()
                        if p < len(row) and row[p] is not None and row[p] != ""}
    return written


def item_rows(rows: Sequence[Sequence[Cell]], header_row: int, id_pos: int) -> dict[str, int]:
    """Item id -> 0-based index of the row that is the item (its first row below the header)."""
    found: dict[str, int] = {}
    for n in range(header_row, len(rows)):
        row = rows[n]
        ext = cell_id(row[id_pos]) if id_pos < len(row) else None
        if ext is not None and ext not in found:
            found[ext] = n
    return found


def with_columns(rows: Sequence[Sequence[Cell]], header_row: int, id_pos: int,
                 titles: Mapping[str, str], written: Written) -> list[list[Cell]]:
    """The table with our columns appended after its widest row: titles on the header row,
    each item's values on its own row, empty cells elsewhere.

    Args:
        rows: the user's table, unchanged.
        header_row: the 1-based header row.
        id_pos: the id column's 0-based position.
        titles: payload key -> our column title.
        written: item id -> payload key -> cell value.
    """
    width = max((len(r) for r in rows), default=0)
    where = {n: ext for ext, n in item_rows(rows, header_row, id_pos).items()}
    out: list[list[Cell]] = []
    for n, row in enumerate(rows):
        cells: list[Cell] = [*row, *([None] * (width - len(row)))]
        if n == header_row - 1:
            cells += titles.values()
        elif n in where:
            values = written.get(where[n], {})
            cells += [values.get(k) for k in titles]
        else:
            cells += [None] * len(titles)
        out.append(cells)
    return out
