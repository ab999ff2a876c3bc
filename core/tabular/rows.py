"""Turn a table's rows into items, and every row that cannot be one into a Problem."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from core.contract import ItemRecord, Problem
from core.errors import InputError
from core.tabular.cells import Cell, cell_id, cell_text, column_letter, is_missing
from core.tabular.dates import DateParser
from core.tabular.flaws import Flaws
from core.tabular.header import Header, find_header
from core.tabular.mapping import (
    AMOUNT_FIELDS,
    DATE_FIELDS,
    NUMBER_FIELDS,
    PROBABILITY_FIELDS,
    TEXT_FIELDS,
    TableMapping,
    TableOptions,
)
from core.tabular.numbers import AMOUNT, EFFORT, NumberParser

LEARN_ROWS = 20_000
"""Rows looked at to learn a column's date order and decimal mark (it stops at the first clue)."""


def table_header(rows: Sequence[Sequence[Cell]], mapping: TableMapping,
                 options: TableOptions) -> Header:
    """The header row of a table for this mapping.

    Raises:
        InputError: when no row holds the id column (or the configured row does not exist).
    """
    header = find_header(rows, mapping.id_column, options.header_row)
    if header is None:
        if options.header_row is not None:
            raise InputError(f"{options.source}: header_row {options.header_row} is past the "
                             f"end of the table ({len(rows)} rows)")
        raise InputError(f"{options.source}: no header row with the id column "
                         f"'{mapping.id_column}' in the first 30 rows"
                         + ("" if rows else " (the table is empty)"))
    return header


def map_table(rows: Sequence[Sequence[Cell]], mapping: TableMapping,
              options: TableOptions) -> Iterator[ItemRecord | Problem]:
    """Find the header, then map every row below it (see `rows_to_records`).

    Raises:
        InputError: when there is no header or a mapped column is missing.
    """
    header = table_header(rows, mapping, options)
    return rows_to_records(header, rows[header.row_number:], mapping, options)


def rows_to_records(
    header: Header,
    rows: Sequence[Sequence[Cell]],
    mapping: TableMapping,
    options: TableOptions,
    first_row_number: int | None = None,
    flaws: Flaws | None = None,
) -> Iterator[ItemRecord | Problem]:
    """Turn data rows into ItemRecords; a row that cannot be read becomes a Problem.

    Blank rows are skipped. A row is a Problem when its id is blank, when it repeats the id of
    an earlier good row (the first is named), when a mapped date or number does not parse, when
    its estimate is zero or negative, or when its actual effort is negative. Problems carry the
    row number a spreadsheet user sees and the row as header -> text.

    Args:
        header: the header row.
        rows: the data rows (below the header).
        mapping: which column holds what.
        options: how to read values.
        first_row_number: the 1-based row number of rows[0] (default: the row below the header).
        flaws: what the reader could not read faithfully, by row number: a flawed row, or a
            row with a mapped cell that only reads as blank, is a Problem naming the column.

    Returns:
        An iterator of ItemRecord per good row and Problem per bad one, in table order.

    Raises:
        InputError: when a mapped column is missing (raised before anything is yielded).
    """
    reader = _RowReader(header, rows, mapping, options, flaws or Flaws())
    return reader.records(first_row_number or header.row_number + 1)


class _RowReader:
    def __init__(self, header: Header, rows: Sequence[Sequence[Cell]], mapping: TableMapping,
                 options: TableOptions, flaws: Flaws) -> None:
        self.pos = mapping.resolve(header, options.source)
        self.flaws = flaws
        self.mapped = {p: header.names[p] for p in self.pos.values()}
        self.rows, self.options, self.names = rows, options, header.names
        self.id_pos = self.pos["id"]
        self.label = {t: header.names[p] for t, p in self.pos.items()}
        self.text = [(f, self.pos[f]) for f in TEXT_FIELDS if f in self.pos]
        self.segments = [(t[4:], p) for t, p in self.pos.items() if t.startswith("seg:")]
        sample = rows[:LEARN_ROWS]
        self.dates = {f: DateParser(options.dayfirst, options.timezone)
                      for f in DATE_FIELDS if f in self.pos}
        orders = {f: p.learn(_column(sample, self.pos[f])) for f, p in self.dates.items()}
        known = {o for o in orders.values() if o is not None}
        fallback = known.pop() if len(known) == 1 else False
        for parser in self.dates.values():
            parser.fallback = fallback
        self.numbers = {f: NumberParser(options.unit, options.hours_per_day,
                                        AMOUNT if f in (*AMOUNT_FIELDS, *PROBABILITY_FIELDS)
                                        else EFFORT)
                        for f in NUMBER_FIELDS if f in self.pos}
        marks = {f: p.learn(_column(sample, self.pos[f])) for f, p in self.numbers.items()}
        shown = {m for m in marks.values() if m is not None}
        if len(shown) == 1:
            for number_parser in self.numbers.values():
                if number_parser.decimal_comma is None:
                    number_parser.decimal_comma = next(iter(shown))

    def records(self, start: int) -> Iterator[ItemRecord | Problem]:
        seen: dict[str, int] = {}
        locator = f"{self.options.source} row "
        width = len(self.names)
        for number, row in enumerate(self.rows, start=start):
            if len(row) < width:
                row = [*row, *([None] * (width - len(row)))]
            ext = cell_id(row[self.id_pos])
            flaw = self._flaw(number) if self.flaws else None
            if flaw is not None:
                yield Problem(f"{locator}{number}", flaw,
                              dict(zip(self.names, map(cell_text, row), strict=False)))
                continue
            if ext is None and all(is_missing(c) for c in row):
                continue
            raw = dict(zip(self.names, map(cell_text, row), strict=False))
            if ext is None:
                yield Problem(f"{locator}{number}",
                              f"column '{self.label['id']}': blank id", raw)
                continue
            first = seen.get(ext)
            if first is not None:
                yield Problem(f"{locator}{number}",
                              f"duplicate id {ext!r} (first at row {first})", raw)
                continue
            result = self._item(row, ext, raw)
            if isinstance(result, str):
                yield Problem(f"{locator}{number}", result, raw)
                continue
            seen[ext] = number
            yield result

    def _flaw(self, number: int) -> str | None:
        """Why row `number` was not read faithfully (None when it was, or nothing mapped is hit)."""
        flaw = self.flaws.rows.get(number)
        if flaw is not None:
            if flaw.column is None:
                return flaw.reason
            name = self.names[flaw.column] if flaw.column < len(self.names) else None
            where = f"column '{name}' ({column_letter(flaw.column)})" if name \
                else f"column {column_letter(flaw.column)}"
            return f"{where}: {flaw.reason}"
        blank = self.flaws.blank_cells.get(number, {})
        hit = [f"column '{self.mapped[p]}': {why}" for p, why in sorted(blank.items())
               if p in self.mapped]
        return "; ".join(hit) or None

    def _item(self, row: Sequence[Cell], ext: str, raw: dict[str, str]) -> ItemRecord | str:
        values: dict[str, Any] = {}
        for name, parser in self.dates.items():
            cell = row[self.pos[name]]
            if not is_missing(cell):
                try:
                    values[name] = parser.parse(cell)
                except ValueError as exc:
                    return f"column '{self.label[name]}': {exc}"
        for name, nparser in self.numbers.items():
            cell = row[self.pos[name]]
            if is_missing(cell):
                continue
            try:
                number = _probability(nparser, cell) if name in PROBABILITY_FIELDS \
                    else nparser.parse(cell)
            except ValueError as exc:
                return f"column '{self.label[name]}': {exc}"
            if name == "planned_estimate" and number <= 0:
                return f"column '{self.label[name]}': estimate must be above 0, got {cell_text(cell)}"
            if name == "actual_effort" and number < 0:
                return f"column '{self.label[name]}': effort cannot be negative, got {cell_text(cell)}"
            values[name] = number
        for name, p in self.text:
            cell = row[p]
            if not is_missing(cell):
                values[name] = cell_text(cell).strip()
        segments = {}
        for seg, p in self.segments:
            cell = row[p]
            if not is_missing(cell):
                segments[seg] = cell_text(cell).strip()
        status = values.pop("status", None)
        rec = ItemRecord(external_id=ext, segments=segments, unit=self.options.unit, raw=raw,
                         **values)
        rec.status = self.options.status(status) if status is not None else _inferred(rec)
        return rec


def _probability(parser: NumberParser, cell: Cell) -> float:
    """A win probability: 0.7 or 70%, kept as 0 to 1."""
    text = cell.strip() if isinstance(cell, str) else None
    if text is not None and text.endswith("%"):
        value = parser.parse(text[:-1].strip()) / 100
    else:
        value = parser.parse(cell)
    if not 0 <= value <= 1:
        raise ValueError(f"a win probability is between 0 and 1 (or 0% and 100%), got "
                         f"{cell_text(cell)}")
    return value


def _column(rows: Sequence[Sequence[Cell]], pos: int) -> Iterator[Cell]:
    return (r[pos] for r in rows if pos < len(r))


def _inferred(rec: ItemRecord) -> str:
    return "done" if rec.actual_end is not None or rec.actual_effort is not None else "open"

