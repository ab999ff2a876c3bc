"""Planned-vs-actual tables (CSV, XLSX, spreadsheet tabs) mapped onto items, in one place."""

from __future__ import annotations

from core.tabular.header import Header, find_header
from core.tabular.mapping import CORE_FIELDS, TableMapping, TableOptions, rows_to_records
from core.tabular.values import MISSING, DateParser, parse_number

__all__ = [
    "CORE_FIELDS",
    "MISSING",
    "DateParser",
    "Header",
    "TableMapping",
    "TableOptions",
    "find_header",
    "parse_number",
    "rows_to_records",
]
