"""Pull a tab: rows through the shared table mapping; unchanged sheets cost one Drive call."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connectors.gsheets.client import (
    SERIAL,
    UNFORMATTED,
    connect,
    explain,
    metadata_request,
    on_tab,
    search_metadata,
)
from connectors.gsheets.config import GSheetsConfig
from connectors.gsheets.mapping import lesson_rows, table_mapping, table_options
from core.contract import Batch, ItemRecord, LessonRecord, Problem
from core.errors import ConnectorError, LearnloopError
from core.tabular import cell_id, rows_to_records, table_header

if TYPE_CHECKING:
    import gspread

BATCH = 1000


def open_tab(config: GSheetsConfig, client: gspread.Client | None = None,
             ) -> tuple[gspread.Spreadsheet, gspread.Worksheet]:
    """The spreadsheet and the configured tab.

    Raises:
        ConnectorError: in plain words (not shared, no such tab, quota).
    """
    try:
        book = (client or connect(config)).open_by_key(config.spreadsheet_id)
        return book, book.worksheet(config.worksheet)
    except LearnloopError:
        raise
    except Exception as exc:
        raise explain(exc, config) from exc


def _identities(book: gspread.Spreadsheet, tab: gspread.Worksheet, rows: list[list[Any]],
                first: int, id_cols: list[int]) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """(id cell -> the item id pinned to its row where the cell was edited since,
    rows still to pin as (row, id))."""
    if not id_cols:
        return {}, []
    pinned = row_identity(book, tab)
    renamed, untagged = {}, []
    for r in range(first, len(rows)):
        cell = cell_id(rows[r][id_cols[0]]) if id_cols[0] < len(rows[r]) else None
        if cell is None:
            continue
        if r in pinned:
            if pinned[r] != cell:
                renamed[cell] = pinned[r]
        else:
            untagged.append((r, cell))
    return renamed, untagged


def read_rows(tab: gspread.Worksheet, config: GSheetsConfig) -> list[list[Any]]:
    """Every row of the tab as typed cells: numbers as numbers, dates as serial numbers."""
    try:
        return tab.get_all_values(value_render_option=UNFORMATTED,  # type: ignore[arg-type]
                                  date_time_render_option=SERIAL)  # type: ignore[arg-type]
    except Exception as exc:
        raise explain(exc, config) from exc


ROW_KEY = "learnloop.row"


def row_identity(book: gspread.Spreadsheet, tab: gspread.Worksheet) -> dict[int, str]:
    """0-based row -> item id, from the developer metadata learnloop pinned to each row
    (Sheets moves it with the row when rows are inserted, deleted or sorted)."""
    out = {}
    for meta in search_metadata(book, ROW_KEY):
        row = on_tab(meta, tab.id, "ROWS")
        if row is not None:
            out[row] = str(meta["metadataValue"])
    return out


def read_lessons(book: gspread.Spreadsheet, config: GSheetsConfig) -> list[LessonRecord]:
    """The lessons of the `lessons_worksheet` tab (none when it is not set).

    Raises:
        ConnectorError: when the tab does not exist, or in plain words (quota, sharing).
    """
    if not config.lessons_worksheet:
        return []
    import gspread

    try:
        tab = book.worksheet(config.lessons_worksheet)
        rows = tab.get_all_values()
    except gspread.exceptions.WorksheetNotFound:
        raise ConnectorError(f"no tab named {config.lessons_worksheet!r} (lessons_worksheet) "
                             "in the spreadsheet") from None
    except Exception as exc:
        raise explain(exc, config) from exc
    return lesson_rows(config.lessons_worksheet, rows,
                       table_options(config, getattr(book, "timezone", None)))


def pull(config: GSheetsConfig, mapping: Mapping[str, Any],
         cursor: Mapping[str, Any] | None,
         client: gspread.Client | None = None) -> Iterator[Batch]:
    """Batches of items and problems; nothing when Drive says the sheet has not changed."""
    book, tab = open_tab(config, client)
    try:
        modified = book.get_lastUpdateTime()
    except Exception as exc:
        raise explain(exc, config) from exc
    fingerprint = {"modifiedTime": modified, "tab": config.worksheet,
                   "mapping": dict(mapping), "lessons": config.lessons_worksheet}
    if cursor and cursor == fingerprint:
        return
    rows = read_rows(tab, config)
    zone = getattr(book, "timezone", None)
    tm, options = table_mapping(mapping), table_options(config, zone)
    header = table_header(rows, tm, options)
    renamed, untagged = _identities(book, tab, rows, header.row_number,
                                    header.find(tm.fields["id"]))
    if untagged:
        try:
            book.batch_update({"requests": [metadata_request(ROW_KEY, item, tab.id, "ROWS", r)
                                            for r, item in untagged]})
            fingerprint["modifiedTime"] = book.get_lastUpdateTime()
        except Exception as exc:
            raise explain(exc, config) from exc
    batch = Batch(snapshot=True)
    for rec in rows_to_records(header, rows[header.row_number:], tm, options):
        if isinstance(rec, ItemRecord) and rec.external_id in renamed:
            rec.raw = {**rec.raw, "_id_cell": rec.external_id}
            rec.external_id = renamed[rec.external_id]
        if isinstance(rec, ItemRecord):
            batch.items.append(rec)
        else:
            assert isinstance(rec, Problem)
            batch.problems.append(rec)
        if len(batch.items) + len(batch.problems) >= BATCH:
            yield batch
            batch = Batch(snapshot=True)
    batch.lessons = read_lessons(book, config)
    batch.cursor = fingerprint
    yield batch
