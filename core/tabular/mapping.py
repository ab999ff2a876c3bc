"""Map table rows onto items: column mapping, per-row parsing, problems with row numbers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.contract import ItemRecord, Problem
from core.errors import InputError
from core.tabular.header import Header, normalise
from core.tabular.values import Cell, DateParser, cell_id, is_missing, parse_number

DATE_FIELDS = ("planned_start", "planned_due", "estimated_at", "actual_start", "actual_end")
NUMBER_FIELDS = ("planned_estimate", "actual_effort", "planned_amount", "actual_amount")
TEXT_FIELDS = ("title", "kind", "url", "status", "outcome")
CORE_FIELDS = ("id", *TEXT_FIELDS, *DATE_FIELDS, *NUMBER_FIELDS)
POSITIVE = ("planned_estimate",)
NON_NEGATIVE = ("actual_effort",)
DONE = frozenset({"done", "closed", "finished", "completed", "complete", "resolved", "released",
                  "shipped", "won", "closed won"})
CANCELLED = frozenset({"cancelled", "canceled", "won't do", "wont do", "rejected", "abandoned",
                       "duplicate", "closed lost", "lost"})


@dataclass(frozen=True)
class TableOptions:
    """How to read values: date order, time zone, unit, and what counts as done."""

    source: str = "table"
    dayfirst: bool | None = None
    timezone: str = "UTC"
    unit: str = "hours"
    done_statuses: frozenset[str] = DONE
    cancelled_statuses: frozenset[str] = CANCELLED


@dataclass
class TableMapping:
    """Core field -> column name, plus segment name -> column name."""

    fields: dict[str, str]
    segments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> TableMapping:
        """Build from a connection's mapping; `segments` may be a list of columns or a dict.

        Raises:
            InputError: without an id column, or for an unknown core field.
        """
        fields = {k: str(v) for k, v in mapping.items() if k != "segments" and v}
        unknown = sorted(set(fields) - set(CORE_FIELDS))
        if unknown:
            raise InputError(f"unknown mapping field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(CORE_FIELDS)}")
        if "id" not in fields:
            raise InputError("the mapping needs an id column (--map id=COLUMN)")
        raw = mapping.get("segments") or {}
        if isinstance(raw, str):
            raw = [c.strip() for c in raw.split(",") if c.strip()]
        segments = {str(c): str(c) for c in raw} if isinstance(raw, list | tuple) else \
            {str(k): str(v) for k, v in dict(raw).items()}
        return cls(fields=fields, segments=segments)

    def resolve(self, header: Header, source: str) -> dict[str, int]:
        """Column positions of every mapped field (`seg:<name>` for segments).

        Raises:
            InputError: one line naming the file, each missing column, the field it was
                mapped to, and the columns that exist.
        """
        index = header.index()
        wanted = {**self.fields, **{f"seg:{k}": v for k, v in self.segments.items()}}
        positions, missing = {}, []
        for target, column in wanted.items():
            pos = index.get(normalise(column))
            if pos is None:
                label = f"segment {target[4:]}" if target.startswith("seg:") else target
                missing.append(f"'{column}' (mapped to {label})")
            else:
                positions[target] = pos
        if missing:
            shown = ", ".join(f"'{n}'" for n in header.names[:30])
            raise InputError(f"{source}: missing column {', '.join(missing)}; "
                             f"the columns are: {shown}")
        return positions


def _status(raw: str | None, rec: ItemRecord, options: TableOptions) -> str:
    if raw is not None:
        text = normalise(raw)
        if text in options.done_statuses:
            return "done"
        if text in options.cancelled_statuses:
            return "cancelled"
        return "open"
    return "done" if rec.actual_end is not None or rec.actual_effort is not None else "open"


def rows_to_records(
    header: Header,
    rows: Sequence[Sequence[Cell]],
    mapping: TableMapping,
    options: TableOptions,
    first_row_number: int | None = None,
) -> Iterator[ItemRecord | Problem]:
    """Turn data rows into ItemRecords; a row that cannot be read becomes a Problem.

    Args:
        header: the header row.
        rows: the data rows (below the header).
        mapping: which column holds what.
        options: how to read values.
        first_row_number: the spreadsheet row number of rows[0] (default: below the header).

    Yields:
        An ItemRecord per good row, a Problem (with the row number and the column) per bad one.

    Raises:
        InputError: when a mapped column is missing.
    """
    pos = mapping.resolve(header, options.source)
    start = first_row_number or header.row_number + 1
    parsers = {f: DateParser(options.dayfirst, options.timezone) for f in DATE_FIELDS if f in pos}
    for name, parser in parsers.items():
        parser.learn([r[pos[name]] for r in rows[:5000] if pos[name] < len(r)])
    seen: dict[str, int] = {}
    for offset, row in enumerate(rows):
        number = start + offset
        if all(is_missing(c) for c in row):
            continue
        cells = {header.names[i]: ("" if is_missing(c) else str(c)) for i, c in enumerate(row)
                 if i < len(header.names)}
        locator = f"{options.source} row {number}"
        result = _one(row, pos, mapping, options, parsers, header, locator, cells)
        if isinstance(result, ItemRecord):
            first = seen.get(result.external_id)
            if first is not None:
                yield Problem(locator, f"duplicate id {result.external_id!r} "
                              f"(first at row {first})", cells)
                continue
            seen[result.external_id] = number
        yield result


def _one(row: Sequence[Cell], pos: dict[str, int], mapping: TableMapping,
         options: TableOptions, parsers: dict[str, DateParser], header: Header, locator: str,
         cells: dict[str, str]) -> ItemRecord | Problem:
    def cell(name: str) -> Cell:
        i = pos.get(name)
        return row[i] if i is not None and i < len(row) else None

    def col(name: str) -> str:
        return header.names[pos[name]]

    ext = cell_id(cell("id"))
    if ext is None:
        return Problem(locator, f"column '{col('id')}': no id", cells)
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        v = cell(name)
        if name in pos and not is_missing(v):
            values[name] = str(v).strip()
    for name, parser in parsers.items():
        v = cell(name)
        if is_missing(v):
            continue
        try:
            values[name] = parser.parse(v)
        except ValueError as exc:
            return Problem(locator, f"column '{col(name)}': {exc}", cells)
    for name in NUMBER_FIELDS:
        v = cell(name)
        if name not in pos or is_missing(v):
            continue
        try:
            number = parse_number(v)
        except ValueError as exc:
            return Problem(locator, f"column '{col(name)}': {exc}", cells)
        if name in POSITIVE and number <= 0:
            return Problem(locator, f"column '{col(name)}': estimate must be above 0, got {v}",
                           cells)
        if name in NON_NEGATIVE and number < 0:
            return Problem(locator, f"column '{col(name)}': negative value {v}", cells)
        values[name] = number
    segments = {}
    for seg in mapping.segments:
        v = cell(f"seg:{seg}")
        if not is_missing(v):
            segments[seg] = str(v).strip()
    status_raw = values.pop("status", None)
    rec = ItemRecord(external_id=ext, segments=segments, unit=options.unit, raw=cells,
                     title=values.pop("title", ""), kind=values.pop("kind", "task"), **values)
    rec.status = _status(status_raw, rec, options)
    if rec.status == "done" and rec.actual_end is None and rec.actual_effort is None:
        rec.raw = {**cells, "_note": "done without an actual date or effort"}
    return rec
