"""Read a CSV or XLSX file into rows of cells; openpyxl is imported only when a workbook is read."""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from connectors.file.access import read_regular
from connectors.file.csvrows import MAX_CELL, SHOWN, read_csv
from connectors.file.formulas import unsaved_formulas
from core.errors import InputError
from core.settings import get_settings
from core.tabular import Cell, Flaw, Flaws

DELIMITERS = ",;\t|"
SNIFF_LINES = 50
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True)
class Source:
    """A file's bytes as read once: what is parsed and what the sync cursor fingerprints."""

    path: Path
    data: bytes
    sha256: str
    mtime: float


@dataclass
class Table:
    """A table as read: its rows, the encoding and delimiter used for a CSV, and its flaws."""

    path: Path
    rows: list[list[Cell]]
    encoding: str | None
    delimiter: str | None
    sha256: str
    mtime: float
    flaws: Flaws = field(default_factory=Flaws)


def is_xlsx(path: Path) -> bool:
    """Whether `path` names an Excel workbook (by its suffix)."""
    return path.suffix.lower() in XLSX_SUFFIXES


def read_source(path_text: str) -> Source:
    """The file's bytes, content hash and modification time.

    Only a regular file of at most LEARNLOOP_FILE_MAX_MB is read (never a FIFO or a device).

    Raises:
        InputError: when the file is missing, not a regular file, too large or unreadable.
    """
    path = Path(path_text).expanduser()
    if path.suffix.lower() == ".xls":
        raise InputError(f"{path.name}: old .xls workbooks are not supported; save it as .xlsx "
                         "or CSV")
    data, mtime = read_regular(path, get_settings().file_max_bytes())
    return Source(path, data, hashlib.sha256(data).hexdigest(), mtime)


def decode(data: bytes, encoding: str, name: str) -> tuple[str, str]:
    """Decode a CSV's bytes; 'auto' tries a UTF-16 BOM, then UTF-8 (BOM or not), then cp1252.

    Returns:
        The text and the encoding that read it.

    Raises:
        InputError: naming the file, the encoding and the byte offset where it failed.
    """
    if encoding == "auto":
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            tries = ["utf-16"]
        else:
            tries = ["utf-8-sig", "cp1252"]
    else:
        tries = [encoding]
    first: UnicodeDecodeError | None = None
    for enc in tries:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as exc:
            first = first or exc
        except LookupError:
            raise InputError(f"{name}: unknown encoding {encoding!r}") from None
    assert first is not None
    shown = "UTF-8 or Windows-1252 (cp1252)" if encoding == "auto" else encoding
    raise InputError(f"{name}: cannot be read as {shown} (byte {first.start}: {first.reason}); "
                     "set encoding to the file's encoding")


def sniff(text: str, delimiter: str | None) -> str:
    """The delimiter: the configured one, else the candidate most lines agree on.

    Each candidate is scored by how many of the first lines hold it the same (non-zero) number
    of times outside quotes, so a title line above the header does not decide.
    """
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab", "TAB") else delimiter
    lines = [_QUOTED.sub("", ln) for ln in text.splitlines()[:SNIFF_LINES] if ln.strip()]
    best, best_score = ",", (0, 0)
    for cand in DELIMITERS:
        counts = Counter(ln.count(cand) for ln in lines if cand in ln)
        if not counts:
            continue
        per_line, agreeing = counts.most_common(1)[0]
        if (agreeing, per_line) > best_score:
            best, best_score = cand, (agreeing, per_line)
    return best


def parse(source: Source, encoding: str = "auto", delimiter: str | None = None,
          sheet: str | None = None) -> Table:
    """Rows of cells from a file's bytes (CSV cells are text; XLSX cells are typed).

    Raises:
        InputError: when the bytes are not a readable CSV or workbook.
    """
    path = source.path
    if is_xlsx(path):
        rows = read_workbook(source.data, path.name, sheet)[0]
        flaws = Flaws(blank_cells=unsaved_formulas(source.data, sheet))
        for number, row in enumerate(rows, start=1):
            for pos, cell in enumerate(row):
                if isinstance(cell, str) and len(cell) > MAX_CELL:
                    row[pos] = cell[:SHOWN] + f"… ({len(cell):,} characters)"
                    flaws.rows[number] = Flaw(f"{len(cell):,} characters, more than the "
                                              f"{MAX_CELL:,} a cell may hold; shorten it", pos)
        return Table(path, rows, None, None, source.sha256, source.mtime, flaws)
    text, used = decode(source.data, encoding, path.name)
    delim = sniff(text, delimiter)
    csv_rows, flaws = read_csv(text, delim, path.name)
    return Table(path, csv_rows, used, delim, source.sha256, source.mtime, flaws)


def read_table(path_text: str, encoding: str = "auto", delimiter: str | None = None,
               sheet: str | None = None) -> Table:
    """Read and parse a whole CSV or XLSX file.

    Raises:
        InputError: when the file is missing, unreadable, or not a table.
    """
    return parse(read_source(path_text), encoding, delimiter, sheet)


def read_workbook(data: bytes, name: str,
                  sheet: str | None) -> tuple[list[list[Cell]], dict[str, str]]:
    """A worksheet's values and the workbook's custom document properties (as text).

    Raises:
        InputError: when the bytes are not a workbook or the sheet does not exist.
    """
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise InputError(f"{name}: not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(f"{name}: no sheet {sheet!r} (sheets: "
                             f"{', '.join(repr(s) for s in book.sheetnames)})")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        rows: list[list[Cell]] = []
        for values in ws.iter_rows(values_only=True):
            row = list(values)
            while row and (row[-1] is None or row[-1] == ""):
                row.pop()
            rows.append(row)
        while rows and not rows[-1]:
            rows.pop()
        props = {p.name: str(p.value) for p in book.custom_doc_props}
        return rows, props
    finally:
        book.close()
