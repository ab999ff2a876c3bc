"""The Sheets connector's mapping: the same table mapping as every tabular source."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from connectors.gsheets.config import GSheetsConfig
from core.contract import LessonRecord, MappingField
from core.tabular import CORE_FIELDS, DateParser, TableMapping, TableOptions

log = logging.getLogger(__name__)

MAPPING_FIELDS = tuple(
    MappingField(name, f"Column holding {name.replace('_', ' ')}", required=name == "id")
    for name in CORE_FIELDS
)


def table_mapping(mapping: Mapping[str, Any]) -> TableMapping:
    """The table mapping of a connection."""
    return TableMapping.from_config(mapping)


def table_options(config: GSheetsConfig, sheet_zone: str | None = None) -> TableOptions:
    """Reading options: the tab's name in messages, dates (in the configured time zone, else
    the spreadsheet's own), unit."""
    return TableOptions(source=f"tab '{config.worksheet}'", header_row=config.header_row,
                        dayfirst=config.dayfirst,
                        timezone=config.timezone or sheet_zone or "UTC", unit=config.unit)


LESSON_COLUMNS = ("words", "segment", "predicts", "behaviour", "date", "id")
"""The columns of a lessons tab (found by their header, in any order; `words` is required)."""


def lesson_rows(title: str, rows: list[list[Any]], options: TableOptions | None = None
                ) -> list[LessonRecord]:
    """The lessons of a tab: the first row with a `words` header names the columns; every
    non-empty row below is a lesson, identified by its `id` cell (else its row number), dated
    by its `date` cell, read as the plan tab's dates are (`dayfirst`, the time zone; a
    column of 03/04/2026 settles its own order). A lesson whose date cell is empty, or is
    not a date (logged with its row), is dated when it is first read."""
    at = next((i for i, row in enumerate(rows)
               if "words" in [str(c).strip().lower() for c in row]), None)
    if at is None:
        return []
    names = [str(c).strip().lower() for c in rows[at]]
    cols = {name: names.index(name) for name in LESSON_COLUMNS if name in names}

    def cell(row: list[Any], name: str) -> str:
        i = cols.get(name)
        return str(row[i]).strip() if i is not None and i < len(row) else ""

    options = options or TableOptions()
    dates = DateParser(options.dayfirst, options.timezone)
    dates.learn(cell(row, "date") for row in rows[at + 1:])

    def day(n: int, text: str) -> dt.datetime | None:
        if not text:
            return None
        try:
            return dates.parse(text)
        except ValueError:
            log.warning("tab '%s' row %d: date %r is not a date; the lesson is dated when "
                        "first read", title, n, text[:40])
            return None

    out = []
    for n, row in enumerate(rows[at + 1:], start=at + 2):
        if not cell(row, "words"):
            continue
        out.append(LessonRecord(
            external_id=cell(row, "id") or f"{title} row {n}", words=cell(row, "words"),
            segment=cell(row, "segment") or None, predicts=cell(row, "predicts") or None,
            behaviour=cell(row, "behaviour") or None, created_at=day(n, cell(row, "date"))))
    return out
