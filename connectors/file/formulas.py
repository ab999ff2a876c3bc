"""Formula cells of an XLSX sheet that hold no saved value (they read as blank)."""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile

# A cell's children come in schema order (f, v, is): a formula cell is <c ...><f...> and its
# saved value, when there is one, the <v> right after the formula.
_FORMULA_CELL = re.compile(
    rb'<c\b([^>]*)>\s*<f\b[^>]*?(?:/>|>(.*?)</f>)\s*(?:<v\b[^>]*?(?:/>|>(.*?)</v>))?', re.S)
_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
_STR = re.compile(rb'\bt="str"')
SHOWN = 60


def _attr(tag: bytes, name: bytes) -> str | None:
    m = re.search(rb'(?:^|\s)' + name + rb'="([^"]*)"', tag)
    return html.unescape(m.group(1).decode("utf-8", "replace")) if m else None


def _sheet_part(book: zipfile.ZipFile, sheet: str | None) -> str | None:
    """The zip member of the named sheet (or the first), from the workbook and its relations.

    Read with patterns, not an XML parser: the two parts are small, and a pattern expands no
    entity a hostile workbook could declare.
    """
    tags = re.findall(rb"<(?:\w+:)?sheet\b([^>]*)>", book.read("xl/workbook.xml"))
    chosen = next((t for t in tags if sheet is None or _attr(t, b"name") == sheet), None)
    rel_id = _attr(chosen, rb"(?:\w+:)?id") if chosen is not None else None
    if rel_id is None:
        return None
    for rel in re.findall(rb"<(?:\w+:)?Relationship\b([^>]*)>",
                          book.read("xl/_rels/workbook.xml.rels")):
        if _attr(rel, b"Id") == rel_id:
            target = _attr(rel, b"Target") or ""
            return target.lstrip("/") if target.startswith("/") \
                else posixpath.normpath(posixpath.join("xl", target))
    return None


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def unsaved_formulas(data: bytes, sheet: str | None) -> dict[int, dict[int, str]]:
    """Row number -> 0-based column -> why: each formula cell without a saved value.

    Excel saves every formula's last result; a workbook written by a program (openpyxl,
    pandas) and never opened in a spreadsheet app has none, and its formulas read as blank.
    A formula whose saved result is the empty text (`t="str"`) is not one of them.
    """
    found: dict[int, dict[int, str]] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            part = _sheet_part(book, sheet)
            if part is None or part not in book.namelist():
                return found
            xml = book.read(part)
    except (zipfile.BadZipFile, KeyError, OSError):
        return found
    if b"<f" not in xml:
        return found
    for m in _FORMULA_CELL.finditer(xml):
        attrs, formula, value = m.group(1), m.group(2), m.group(3)
        if (value and value.strip()) or (value is not None and _STR.search(attrs)):
            continue
        ref = _REF.search(attrs)
        if ref is None:
            continue
        text = html.unescape(formula.decode("utf-8", "replace")) if formula else ""
        shown = "=" + text if len(text) <= SHOWN else f"={text[:SHOWN]}…"
        what = f"a formula ({shown})" if text else "a shared formula"
        row, col = int(ref.group(2)), _column(ref.group(1))
        found.setdefault(row, {})[col] = (
            f"cell {ref.group(1).decode()}{row} holds {what} with no saved value, so it reads as "
            "blank; open the file in Excel or LibreOffice and save it, so the values are stored")
    return found
