"""Pull a tab: rows through the shared table mapping; unchanged sheets cost one Drive call."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connectors.gsheets.client import SERIAL, UNFORMATTED, connect, explain
from connectors.gsheets.config import GSheetsConfig
from connectors.gsheets.mapping import table_mapping, table_options
from core.contract import Batch, ItemRecord, Problem
from core.errors import LearnloopError
from core.tabular import map_table

if TYPE_CHECKING:
    import gspread

BATCH = 1000


def open_tab(config: GSheetsConfig) -> tuple[gspread.Spreadsheet, gspread.Worksheet]:
    """The spreadsheet and the configured tab.

    Raises:
        ConnectorError: in plain words (not shared, no such tab, quota).
    """
    try:
        book = connect(config).open_by_key(config.spreadsheet_id)
        return book, book.worksheet(config.worksheet)
    except LearnloopError:
        raise
    except Exception as exc:
        raise explain(exc, config) from exc


def read_rows(tab: gspread.Worksheet, config: GSheetsConfig) -> list[list[Any]]:
    """Every row of the tab as typed cells: numbers as numbers, dates as serial numbers."""
    try:
        return tab.get_all_values(value_render_option=UNFORMATTED,  # type: ignore[arg-type]
                                  date_time_render_option=SERIAL)  # type: ignore[arg-type]
    except Exception as exc:
        raise explain(exc, config) from exc


def pull(config: GSheetsConfig, mapping: Mapping[str, Any],
         cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
    """Batches of items and problems; nothing when Drive says the sheet has not changed."""
    book, tab = open_tab(config)
    try:
        modified = book.get_lastUpdateTime()
    except Exception as exc:
        raise explain(exc, config) from exc
    fingerprint = {"modifiedTime": modified, "tab": config.worksheet,
                   "mapping": dict(mapping)}
    if cursor and cursor == fingerprint:
        return
    rows = read_rows(tab, config)
    batch = Batch(snapshot=True)
    zone = getattr(book, "timezone", None)
    for rec in map_table(rows, table_mapping(mapping), table_options(config, zone)):
        if isinstance(rec, ItemRecord):
            batch.items.append(rec)
        else:
            assert isinstance(rec, Problem)
            batch.problems.append(rec)
        if len(batch.items) + len(batch.problems) >= BATCH:
            yield batch
            batch = Batch(snapshot=True)
    batch.cursor = fingerprint
    yield batch
