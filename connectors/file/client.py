"""Read a CSV or XLSX table into rows of cells (openpyxl is imported only here, lazily)."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.tabular.values import Cell

DELIMITERS = ",;\t|"


@dataclass
class Table:
    """A table as read: its rows, the encoding and delimiter used, and its content hash."""

    path: Path
    rows: list[list[Cell]]
    encoding: str | None
    delimiter: str | None
    sha256: str
    mtime: float


def is_xlsx(path: Path) -> bool:
    """Whether `path` is an Excel workbook."""
    return path.suffix.lower() in (".xlsx", ".xlsm")


def decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """Decode file bytes; 'auto' tries UTF-8 (with or without BOM), then Windows-1252.

    Raises:
        InputError: naming the file, the encoding and the byte offset.
    """
    tries = ["utf-8-sig", "cp1252"] if encoding == "auto" else [encoding]
    error: UnicodeDecodeError | None = None
    for enc in tries:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as exc:
            error = exc
        except LookupError:
            raise InputError(f"{path.name}: unknown encoding {encoding!r}") from None
    assert error is not None
    raise InputError(f"{path.name}: cannot be read as {encoding if encoding != 'auto' else 'UTF-8 or Windows-1252'} "
                     f"(byte {error.start}: {error.reason}); set encoding=... to the file's encoding")


def sniff(text: str, delimiter: str | None) -> str:
    """The delimiter: the configured one, else the most frequent candidate in the first line."""
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    first = text.split("\n", 1)[0]
    return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","


def read_table(path_text: str, encoding: str = "auto", delimiter: str | None = None,
               sheet: str | None = None) -> Table:
    """Read the whole table.

    Raises:
        InputError: when the file is missing, unreadable, or not a table.
    """
    path = Path(path_text).expanduser()
    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if is_xlsx(path):
        return Table(path, _xlsx_rows(data, path, sheet), None, None, digest, mtime)
    text, used = decode(data, encoding, path)
    delim = sniff(text, delimiter)
    try:
        rows: list[list[Cell]] = [list(r) for r in csv.reader(io.StringIO(text, newline=""),
                                                              delimiter=delim)]
    except csv.Error as exc:
        raise InputError(f"{path.name}: not a readable CSV: {exc}") from None
    return Table(path, rows, used, delim, digest, mtime)


def _xlsx_rows(data: bytes, path: Path, sheet: str | None) -> list[list[Cell]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(f"{path.name}: no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        ws = book[sheet] if sheet else book.worksheets[0]
        return [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        book.close()
