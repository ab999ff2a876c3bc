"""Write learnloop's columns into a copy of the table; the user's file is never touched."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.file import owned
from connectors.file.client import Table, is_xlsx, parse, read_source, read_workbook
from connectors.file.config import FileConfig
from connectors.file.sync import header_of, load
from core.contract import FIELDS, TEMPLATE, Delivery, FieldsPayload, Intent, TemplatePayload
from core.errors import LearnloopError
from core.tabular import cell_text
from core.tabular.written import (
    COLUMNS,
    Written,
    cell_value,
    item_rows,
    our_titles,
    read_written,
    with_columns,
)

FINGERPRINT = owned.FINGERPRINT

__all__ = ["COLUMNS", "deliver", "deliver_templates", "output_path", "remove_copy",
           "templates_path"]

TEMPLATE_COLUMNS = ("Template", "Version", "Kind", "Task", "Estimate", "Plan P50", "Plan P80",
                    "Rule", "Variant", "Why")
"""The header of the templates table learnloop writes beside its copy."""


def output_path(config: FileConfig) -> Path:
    """Where the copy goes: `output_path`, else `<stem>.learnloop<suffix>` beside the input."""
    return config.copy_path()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise writers of one copy across processes (POSIX; elsewhere a no-op)."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def deliver(config: FileConfig, mapping: Mapping[str, Any],
            intents: Sequence[Intent]) -> list[Delivery]:
    """Apply FIELDS intents to the copy: one row per id, learnloop's columns once each.

    Values of earlier deliveries in the copy are kept; a payload key set to None clears its
    cell; writing the same intents again leaves the copy as it was. A file at the copy's path
    that learnloop did not write is never replaced: every intent fails, retried later.
    """
    out = output_path(config)
    with _locked(out.parent):
        if not owned.created_by_learnloop(out):
            return [Delivery(i.id, ok=False, error=owned.not_ours_message(out)) for i in intents]
        try:
            table = load(config)
            header = header_of(table, config, mapping)
        except LearnloopError as exc:
            return [Delivery(i.id, ok=False, error=str(exc)) for i in intents]
        id_name = str(mapping["id"])
        id_pos = header.find(id_name)[0]
        titles = our_titles(header.names)
        rows_of = item_rows(table.rows, header.row_number, id_pos)
        written, fingerprint = _read_copy(out, config, id_name, titles, table.delimiter)
        results = []
        for intent in intents:
            if intent.surface == TEMPLATE:
                results.append(Delivery(intent.id, ok=False, permanent=True, error=(
                    "a template goes to deliver_templates, not into the copy")))
            elif intent.surface != FIELDS:
                results.append(Delivery(intent.id, ok=False, permanent=True, error=(
                    f"the file connector writes fields, not {intent.surface}")))
            elif intent.target not in rows_of:
                results.append(Delivery(intent.id, ok=False, permanent=True, error=(
                    f"id {intent.target!r} not found in {table.path.name}")))
            else:
                stored = written.setdefault(intent.target, {})
                values = FieldsPayload.from_json(intent.payload).to_json()
                for key in COLUMNS.keys() & values.keys():
                    stored[key] = cell_value(values[key], not is_xlsx(out))
                results.append(Delivery(intent.id, ok=True,
                                        tool_ref=f"{out.name}#{intent.target}"))
        if any(r.ok for r in results):
            if is_xlsx(out):
                _write_xlsx(config, table, header.row_number, titles, written, rows_of, out,
                            fingerprint)
            else:
                rows = with_columns(table.rows, header.row_number, id_pos, titles, written)
                _write_csv(rows, table.delimiter or ",", out)
            owned.record(out)
    return results


def templates_path(config: FileConfig) -> Path:
    """Where templates go: `<copy stem>-templates.csv` beside the copy."""
    out = output_path(config)
    return out.with_name(f"{out.stem}-templates.csv")


def deliver_templates(config: FileConfig, intents: Sequence[Intent]) -> list[Delivery]:
    """Write each template version into the templates table beside the copy: the rows of a
    template are replaced by its newest version (one template, one block of rows)."""
    out = templates_path(config)
    with _locked(out.parent):
        if not owned.created_by_learnloop(out):
            return [Delivery(i.id, ok=False, error=owned.not_ours_message(out)) for i in intents]
        rows: list[list[str]] = []
        if out.exists():
            with out.open(encoding="utf-8-sig", newline="") as fh:
                rows = [r for r in csv.reader(fh)][1:]
        results = []
        for intent in intents:
            t = TemplatePayload.from_json(intent.payload)
            rows = [r for r in rows if not r or r[0] != intent.target]
            body = [[cell_text(c) for c in (intent.target, t.version, t.kind, row.name,
                                            row.estimate, row.plan_p50, row.plan_p80, row.rule,
                                            row.variant, t.why)] for row in t.rendered]
            rows += body or [[intent.target, str(t.version), t.kind, "", "", "", "", "", "",
                              t.why]]
            results.append(Delivery(intent.id, ok=True, tool_ref=f"{out.name}#{intent.target}"))
        _write_csv([list(TEMPLATE_COLUMNS), *rows], ",", out)
        owned.record(out)
    return results


def remove_copy(config: FileConfig, out: Path | None = None) -> tuple[str | None, str | None]:
    """Delete the copy (or `out`, e.g. the templates table) when learnloop wrote it.

    Returns:
        The path removed (or None), and why a file there was kept (or None).
    """
    out = out or output_path(config)
    if not out.exists() and not out.is_symlink():
        return None, None
    with _locked(out.parent):
        if not owned.created_by_learnloop(out):
            return None, f"kept {out}: learnloop did not write it, so it does not delete it"
        out.unlink()
        owned.forget(out)
    return str(out), None


def _read_copy(out: Path, config: FileConfig, id_name: str, titles: Mapping[str, str],
               delimiter: str | None) -> tuple[Written, str | None]:
    """Our values already in the copy, by id, and the copy's fingerprint (XLSX only)."""
    if not out.exists():
        return {}, None
    try:
        source = read_source(str(out))
        if is_xlsx(out):
            rows, props = read_workbook(source.data, out.name, config.sheet)
            return read_written(rows, id_name, titles), props.get(FINGERPRINT)
        return read_written(parse(source, "auto", delimiter).rows, id_name, titles), None
    except LearnloopError:
        return {}, None  # an unreadable copy is rebuilt from the deliveries that follow


def _atomic_write(out: Path, write: Callable[[str], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".learnloop-", suffix=out.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_csv(rows: Sequence[Sequence[Any]], delimiter: str, out: Path) -> None:
    """UTF-8 with a BOM, so Excel opens it as UTF-8; not rewritten when nothing changed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([cell_text(c) for c in row] for row in rows)
    data = buffer.getvalue().encode("utf-8-sig")
    if out.exists() and out.read_bytes() == data:
        return
    _atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))


def _write_xlsx(config: FileConfig, table: Table, header_row: int, titles: Mapping[str, str],
                written: Written, rows_of: Mapping[str, int], out: Path,
                fingerprint: str | None) -> None:
    """The input workbook (sheets, formulas, formats) with our columns on the mapped sheet."""
    canonical = {ext: {k: float(v) if isinstance(v, int | float) else v
                       for k, v in written.get(ext, {}).items() if v is not None}
                 for ext in rows_of}
    wanted = hashlib.sha256(json.dumps(
        [table.sha256, config.sheet, header_row, titles, canonical], default=str, sort_keys=True,
    ).encode()).hexdigest()
    if fingerprint == wanted and out.exists():
        return
    import openpyxl
    from openpyxl.packaging.custom import StringProperty

    source = read_source(str(table.path))  # regular, capped, as the sync reads it
    book = openpyxl.load_workbook(io.BytesIO(source.data),
                                  keep_vba=table.path.suffix.lower() == ".xlsm")
    ws = book[config.sheet] if config.sheet else book.worksheets[0]
    width = max((c.column for r in ws.iter_rows() for c in r if c.value is not None), default=0)
    for j, title in enumerate(titles.values(), start=width + 1):
        ws.cell(row=header_row, column=j).value = title
    for ext, n in rows_of.items():
        for j, key in enumerate(titles, start=width + 1):
            value = canonical[ext].get(key)
            if value is not None:
                cell = ws.cell(row=n + 1, column=j)
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"  # text, never a formula
    props = book.custom_doc_props
    if FINGERPRINT in props.names:
        del props[FINGERPRINT]
    props.append(StringProperty(name=FINGERPRINT, value=wanted))
    _atomic_write(out, book.save)
