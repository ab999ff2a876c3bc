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
INSIGHTS_KEY = "learnloop.insights"  # on column A of the insights tab: its title when made
TEMPLATE_KEY = "learnloop.template"  # on a template version's columns: "<column>@<tab title>"
TEMPLATE_COLUMNS = ("plan_p50", "plan_p80", "rule")
TEMPLATE_TITLES = ("learnloop plan P50", "learnloop plan P80", "learnloop rule")
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


def _tab(book: gspread.Spreadsheet, title: str, tool_ref: str | None = None,
         ) -> gspread.Worksheet | None:
    """A tab by the id learnloop stored for it (digits), else by its title."""
    import gspread

    try:
        if tool_ref and tool_ref.isdigit():
            return book.get_worksheet_by_id(int(tool_ref))
    except gspread.exceptions.WorksheetNotFound:
        pass  # deleted or never there: fall back to the title
    try:
        return book.worksheet(title)
    except gspread.exceptions.WorksheetNotFound:
        return None


def _marked(book: gspread.Spreadsheet, key: str) -> dict[str, tuple[int, int]]:
    """Metadata value -> (tab id, 0-based column) of columns learnloop marked with `key`."""
    out = {}
    for meta in search_metadata(book, key):
        where = meta.get("location", {}).get("dimensionRange", {})
        if where.get("dimension") == "COLUMNS":
            out[str(meta["metadataValue"])] = (int(where["sheetId"]), int(where["startIndex"]))
    return out


def _by_id(book: gspread.Spreadsheet, tab_id: int) -> gspread.Worksheet | None:
    import gspread

    try:
        return book.get_worksheet_by_id(tab_id)
    except gspread.exceptions.WorksheetNotFound:
        return None


def write_insights(config: GSheetsConfig, intent: Intent,
                   client: gspread.Client | None = None) -> Delivery:
    """The insights tab: the current findings with their evidence, replacing the last list.

    The tab is found by its stored id, else by the marker on its first column, else by its
    title; only then is it created (and marked), so a redelivery rewrites the same tab.
    """
    payload = InsightsPayload.from_json(intent.payload)
    book, _ = open_tab(config, client)
    title = intent.target
    tab = _tab(book, title, intent.tool_ref)
    if tab is None or tab.title != title:
        marked = _marked(book, INSIGHTS_KEY).get(title)
        tab = (_by_id(book, marked[0]) if marked else None) or tab
    if tab is None:
        tab = book.add_worksheet(title, rows=200, cols=8)
        book.batch_update({"requests": [metadata_request(INSIGHTS_KEY, title, tab.id,
                                                         "COLUMNS", 0)]})
    columns = list(payload.columns)
    rows: list[list[Any]] = [[f"learnloop findings as of {payload.as_of.isoformat()}"],
                             columns, *(list(r) for r in payload.rows)]
    old = len(tab.get_all_values())
    width = max(len(r) for r in rows)
    rows += [[""] * width for _ in range(max(0, old - len(rows)))]
    tab.update([[_cell(v) for v in r] + [""] * (width - len(r)) for r in rows], "A1",
               value_input_option="RAW")  # type: ignore[arg-type]
    return Delivery(intent.id, ok=True, tool_ref=str(tab.id))


def _template_columns(book: gspread.Spreadsheet, copy: gspread.Worksheet, version_title: str,
                      width: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """learnloop's columns on a template version tab: the marked ones, the missing ones after
    every used column (with the metadata requests that mark them)."""
    cols = {}
    for value, (tab_id, col) in _marked(book, TEMPLATE_KEY).items():
        key, _, title = value.partition("@")
        if tab_id == copy.id and title == version_title and key in TEMPLATE_COLUMNS:
            cols[key] = col
    requests = []
    next_col = max([width, *(c + 1 for c in cols.values())])
    for key in TEMPLATE_COLUMNS:
        if key not in cols:
            cols[key], next_col = next_col, next_col + 1
            requests.append(metadata_request(TEMPLATE_KEY, f"{key}@{version_title}", copy.id,
                                             "COLUMNS", cols[key]))
    return cols, requests


def write_template(config: GSheetsConfig, intent: Intent,
                   client: gspread.Client | None = None) -> Delivery:
    """A new version of a template tab: the tab duplicated as '<name> v<N>', with the plan the
    policy now asks for beside each task, and a note saying what changed and why.

    Redelivered, the version tab (its stored id, else the tab its marked columns are on, else
    its title) and its marked columns are written again: one tab, one set of columns, one note.
    """
    payload = TemplatePayload.from_json(intent.payload)
    book, _ = open_tab(config, client)
    title = f"{intent.target} v{payload.version}"
    copy = _tab(book, title, intent.tool_ref)
    if copy is None or copy.title != title:
        marked = [tab for value, (tab, _) in _marked(book, TEMPLATE_KEY).items()
                  if value.partition("@")[2] == title]
        copy = (_by_id(book, marked[0]) if marked else None) or copy
    if copy is None:
        source = _tab(book, intent.target)
        if source is None:
            return Delivery(intent.id, ok=False, permanent=True,
                            error=f"no template tab named {intent.target!r}")
        copy = source.duplicate(new_sheet_name=title)
    rows = copy.get_all_values()
    cols, requests = _template_columns(book, copy, title,
                                       max((len(r) for r in rows), default=0))
    plan = {t.name: t for t in payload.rendered}
    data = []
    for key, head in zip(TEMPLATE_COLUMNS, TEMPLATE_TITLES, strict=True):
        values = [[head]]
        for row in rows[1:]:
            task = plan.get(str(row[0])) if row else None
            values.append([_cell(getattr(task, key)) if task else ""])
        letter = column_letter(cols[key])
        data.append({"range": f"'{copy.title.replace(chr(39), chr(39) * 2)}'!{letter}1:"
                              f"{letter}{len(values)}", "values": values})
    book.values_batch_update({"valueInputOption": "RAW", "data": data})
    requests.append({"updateCells": {
        "start": {"sheetId": copy.id, "rowIndex": 0, "columnIndex": cols[TEMPLATE_COLUMNS[0]]},
        "rows": [{"values": [{"note": payload.why}]}],
        "fields": "note"}})
    book.batch_update({"requests": requests})
    return Delivery(intent.id, ok=True, tool_ref=str(copy.id))
