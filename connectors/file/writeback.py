"""Write learnloop's columns into a copy of the table; the user's file is never touched."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.file.client import Table, is_xlsx, read_table
from connectors.file.config import FileConfig
from connectors.file.sync import header_of, load
from core.contract import Delivery, Intent
from core.tabular.header import normalise
from core.tabular.values import Cell, cell_id, is_missing

COLUMNS = {  # payload key -> column title
    "delta": "learnloop Δ",
    "forecast_p50": "learnloop P50",
    "forecast_p80": "learnloop P80",
    "forecast_p90": "learnloop P90",
    "forecast_finish_p80": "learnloop finish P80",
    "effort_factor": "learnloop factor",
    "insight": "learnloop insight",
}
FORMULA_START = ("=", "+", "-", "@")


def output_path(config: FileConfig) -> Path:
    """Where the copy goes: configured, else `<stem>.learnloop<suffix>` beside the input."""
    if config.output_path:
        return Path(config.output_path).expanduser()
    src = Path(config.path).expanduser()
    return src.with_name(f"{src.stem}.learnloop{src.suffix}")


def _our_titles(user_names: Sequence[str]) -> dict[str, str]:
    taken = {normalise(n) for n in user_names}
    out = {}
    for key, title in COLUMNS.items():
        name = title
        while normalise(name) in taken:
            name += " (learnloop)"
        out[key] = name
    return out


def _existing(path: Path, config: FileConfig, id_col: str,
              titles: Mapping[str, str]) -> dict[str, dict[str, Cell]]:
    if not path.exists():
        return {}
    table = read_table(str(path), "utf-8-sig" if not is_xlsx(path) else "auto",
                       None, None)
    for i, row in enumerate(table.rows[:50]):
        names = [normalise(str(c)) if c is not None else "" for c in row]
        if normalise(id_col) in names:
            pos = {n: j for j, n in enumerate(names)}
            idpos = pos[normalise(id_col)]
            out: dict[str, dict[str, Cell]] = {}
            for r in table.rows[i + 1:]:
                if idpos < len(r) and not is_missing(r[idpos]):
                    out[cell_id(r[idpos]) or ""] = {
                        k: r[pos[normalise(t)]] for k, t in titles.items()
                        if normalise(t) in pos and pos[normalise(t)] < len(r)
                    }
            return out
    del config
    return {}


def _safe_text(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def deliver(config: FileConfig, mapping: Mapping[str, Any],
            intents: Sequence[Intent]) -> list[Delivery]:
    """Apply FIELDS intents to the copy: one row per id, learnloop's columns once each."""
    table = load(config)
    header = header_of(table, config, mapping)
    id_col = str(mapping["id"])
    id_pos = header.index()[normalise(id_col)]
    titles = _our_titles(header.names)
    out_path = output_path(config)
    values = _existing(out_path, config, header.original[id_pos] or id_col, titles)
    ids = {cell_id(r[id_pos]) for r in table.rows[header.row_number:] if id_pos < len(r)}
    results = []
    for intent in intents:
        if intent.target not in ids:
            results.append(Delivery(intent.id, ok=False, permanent=True,
                                    error=f"id {intent.target!r} not found in {table.path.name}"))
            continue
        stored = values.setdefault(intent.target, {})
        for key in COLUMNS:
            if key in intent.payload:
                stored[key] = intent.payload[key]
        results.append(Delivery(intent.id, ok=True, tool_ref=f"{out_path.name}#{intent.target}"))
    _write(table, header.row_number, id_pos, titles, values, out_path)
    return results


def _write(table: Table, header_row: int, id_pos: int, titles: Mapping[str, str],
           values: Mapping[str, Mapping[str, Cell]], out_path: Path) -> None:
    width = max((len(r) for r in table.rows), default=0)
    rows: list[list[Cell]] = []
    for n, raw in enumerate(table.rows, start=1):
        row = list(raw) + [None] * (width - len(raw))
        if n == header_row:
            row += list(titles.values())
        elif n > header_row and id_pos < len(raw) and cell_id(raw[id_pos]) is not None:
            ours = values.get(cell_id(raw[id_pos]) or "", {})
            row += [ours.get(k) for k in titles]
        else:
            row += [None] * len(titles)
        rows.append(row)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=".learnloop-", suffix=out_path.suffix)
    os.close(fd)
    try:
        if is_xlsx(out_path):
            _write_xlsx(rows, header_row, width, Path(tmp))
        else:
            with open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
                w = csv.writer(fh, delimiter=table.delimiter or ",")
                for i, cells in enumerate(rows, start=1):
                    added = cells[width:] if i >= header_row else []
                    w.writerow(["" if c is None else c for c in cells[:width]]
                               + ["" if c is None else _safe_text(c) for c in added])
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_xlsx(rows: list[list[Cell]], header_row: int, width: int, path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str) and value.startswith("=") and (c > width or r <= header_row):
                cell.data_type = "s"  # text, never a formula
    book.save(path)
