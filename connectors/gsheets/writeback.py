"""Write learnloop's columns into the tab: found by developer metadata, written RAW, with
notes for the why and a colour band for risk; a user's column is never overwritten."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connectors.gsheets.client import (
    QuotaError,
    explain,
    metadata_request,
    on_tab,
    search_metadata,
)
from connectors.gsheets.config import GSheetsConfig
from connectors.gsheets.mapping import table_mapping, table_options
from connectors.gsheets.sync import open_tab, read_rows, row_identity
from core.contract import Delivery, FieldsPayload, InsightsPayload, Intent, TemplatePayload
from core.errors import LearnloopError
from core.tabular import COLUMNS, cell_id, column_letter, our_titles, table_header

if TYPE_CHECKING:
    import gspread

META_KEY = "learnloop.column"
NOTE_ON = "forecast_p80"  # the cell that carries the why as a note
BANDS = ((1.5, {"red": 0.96, "green": 0.8, "blue": 0.8}),
         (1.2, {"red": 1.0, "green": 0.93, "blue": 0.75}))


def our_columns(book: gspread.Spreadsheet, tab: gspread.Worksheet) -> dict[str, int]:
    """Payload key -> 0-based column of learnloop's columns on this tab (by metadata)."""
    out = {}
    for meta in search_metadata(book, META_KEY):
        col = on_tab(meta, tab.id, "COLUMNS")
        if col is not None:
            out[str(meta["metadataValue"])] = col
    return out


def ensure_columns(book: gspread.Spreadsheet, tab: gspread.Worksheet, header_row: int,
                   header_names: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Find learnloop's columns, creating the missing ones after every used column.

    Returns:
        (payload key -> column, titles of the columns created now)
    """
    cols = our_columns(book, tab)
    missing = [k for k in COLUMNS if k not in cols]
    if not missing:
        return cols, []
    titles = our_titles([n for i, n in enumerate(header_names) if i not in cols.values()])
    next_col = max([len(header_names), *(c + 1 for c in cols.values())])
    requests: list[dict[str, Any]] = []
    created = []
    for key in missing:
        col = next_col
        next_col += 1
        cols[key] = col
        created.append(titles[key])
        tab.update([[titles[key]]], f"{column_letter(col)}{header_row}",
                   value_input_option="RAW")  # type: ignore[arg-type]
        requests.append(metadata_request(META_KEY, key, tab.id, "COLUMNS", col))
        if key == "effort_factor":
            for threshold, colour in BANDS:
                requests.append({"addConditionalFormatRule": {"index": 0, "rule": {
                    "ranges": [{"sheetId": tab.id, "startRowIndex": header_row,
                                "startColumnIndex": col, "endColumnIndex": col + 1}],
                    "booleanRule": {"condition": {"type": "NUMBER_GREATER", "values": [
                        {"userEnteredValue": str(threshold)}]},
                        "format": {"backgroundColor": colour}}}}})
    book.batch_update({"requests": requests})
    return cols, created


def _cell(value: Any) -> Any:
    return "" if value is None else value  # RAW: text stays text, '=...' is never a formula


def deliver(config: GSheetsConfig, mapping: Mapping[str, Any],
            intents: Sequence[Intent], client: gspread.Client | None = None) -> list[Delivery]:
    """Write FIELDS intents into their rows (located by the id column at write time)."""
    import gspread

    try:
        book, tab = open_tab(config, client)
        rows = read_rows(tab, config)
        header = table_header(rows, table_mapping(mapping), table_options(config))
        found = header.find(str(mapping["id"]))
        if not found:
            raise LearnloopError(f"no id column {mapping['id']!r} in tab {config.worksheet!r}")
        id_pos = found[0]
        row_of = {}
        for i, row in enumerate(rows[header.row_number:], start=header.row_number):
            key = cell_id(row[id_pos]) if id_pos < len(row) else None
            if key is not None and key not in row_of:
                row_of[key] = i
        # Rows carry their item's id as metadata: it wins over an edited id cell.
        row_of.update({item: r for r, item in row_identity(book, tab).items()})
        cols, _ = ensure_columns(book, tab, header.row_number, header.names)
        data, notes, results = [], [], []
        for intent in intents:
            r = row_of.get(intent.target)
            if r is None:
                results.append(Delivery(intent.id, ok=False, permanent=True,
                                        error=f"id {intent.target!r} not in tab "
                                        f"{config.worksheet!r}"))
                continue
            values = FieldsPayload.from_json(intent.payload).to_json()
            for key in COLUMNS:
                if key in values:
                    data.append({"range": f"'{tab.title}'!{column_letter(cols[key])}{r + 1}",
                                 "values": [[_cell(values[key])]]})
            if values.get("insight"):
                notes.append({"updateCells": {
                    "start": {"sheetId": tab.id, "rowIndex": r, "columnIndex": cols[NOTE_ON]},
                    "rows": [{"values": [{"note": str(values["insight"])}]}],
                    "fields": "note"}})
            results.append(Delivery(intent.id, ok=True, tool_ref=f"{tab.title}!{r + 1}"))
        if data:
            book.values_batch_update({"valueInputOption": "RAW", "data": data})
        if notes:
            book.batch_update({"requests": notes})
        return results
    except (gspread.exceptions.APIError, LearnloopError) as exc:
        error = exc if isinstance(exc, LearnloopError) else explain(exc, config)
        wait = QuotaError.retry_after if isinstance(error, QuotaError) else None
        return [Delivery(i.id, ok=False, error=str(error), retry_after=wait) for i in intents]


def _tab(book: gspread.Spreadsheet, title: str) -> gspread.Worksheet | None:
    import gspread

    try:
        return book.worksheet(title)
    except gspread.exceptions.WorksheetNotFound:
        return None


def write_insights(config: GSheetsConfig, intent: Intent,
                   client: gspread.Client | None = None) -> Delivery:
    """The insights tab: the current findings with their evidence, replacing the last list."""
    payload = InsightsPayload.from_json(intent.payload)
    book, _ = open_tab(config, client)
    title = intent.target
    tab = _tab(book, title) or book.add_worksheet(title, rows=200, cols=8)
    columns = list(payload.columns)
    rows: list[list[Any]] = [[f"learnloop findings as of {payload.as_of.isoformat()}"],
                             columns, *(list(r) for r in payload.rows)]
    old = len(tab.get_all_values())
    width = max(len(r) for r in rows)
    rows += [[""] * width for _ in range(max(0, old - len(rows)))]
    tab.update([[_cell(v) for v in r] + [""] * (width - len(r)) for r in rows], "A1",
               value_input_option="RAW")  # type: ignore[arg-type]
    return Delivery(intent.id, ok=True, tool_ref=title)


def write_template(config: GSheetsConfig, intent: Intent,
                   client: gspread.Client | None = None) -> Delivery:
    """A new version of a template tab: the tab duplicated as '<name> v<N>', with the plan the
    policy now asks for beside each task, and a note saying what changed and why."""
    payload = TemplatePayload.from_json(intent.payload)
    book, _ = open_tab(config, client)
    source = _tab(book, intent.target)
    if source is None:
        return Delivery(intent.id, ok=False, permanent=True,
                        error=f"no template tab named {intent.target!r}")
    title = f"{intent.target} v{payload.version}"
    copy = _tab(book, title) or source.duplicate(new_sheet_name=title)
    rows = copy.get_all_values()
    width = max((len(r) for r in rows), default=0)
    plan = {t.name: t for t in payload.rendered}
    updates = [[_cell(v) for v in ("learnloop plan P50", "learnloop plan P80", "learnloop rule")]]
    for row in rows[1:]:
        task = plan.get(str(row[0])) if row else None
        updates.append([_cell(task.plan_p50) if task else "",
                        _cell(task.plan_p80) if task else "",
                        _cell(task.rule) if task else ""])
    copy.update(updates, f"{column_letter(width)}1", value_input_option="RAW")  # type: ignore[arg-type]
    book.batch_update({"requests": [{"updateCells": {
        "start": {"sheetId": copy.id, "rowIndex": 0, "columnIndex": width},
        "rows": [{"values": [{"note": payload.why}]}],
        "fields": "note"}}]})
    return Delivery(intent.id, ok=True, tool_ref=title)
