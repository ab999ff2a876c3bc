"""Planned-vs-actual tables (CSV, XLSX, spreadsheet tabs) mapped onto items, in one place.

Connectors that read tables (the file connector, Google Sheets) hand this package rows of cells
and a mapping, and get back ItemRecords and Problems; every rule about headers, dates, numbers,
units and statuses lives here.
"""

from __future__ import annotations

from core.tabular.cells import MISSING, Cell, cell_id, cell_text, column_letter, is_missing
from core.tabular.dates import DateParser, parse_date
from core.tabular.flaws import Flaw, Flaws
from core.tabular.header import Header, find_header, normalise
from core.tabular.mapping import (
    CANCELLED_STATUSES,
    CORE_FIELDS,
    DATE_FIELDS,
    DONE_STATUSES,
    NUMBER_FIELDS,
    TEXT_FIELDS,
    TableMapping,
    TableOptions,
    statuses,
)
from core.tabular.numbers import UNIT_WORDS, NumberParser, UnitError, parse_number, to_float
from core.tabular.rows import map_table, rows_to_records, table_header
from core.tabular.values import guess_type
from core.tabular.written import (
    COLUMNS,
    Written,
    cell_value,
    item_rows,
    our_titles,
    read_written,
    with_columns,
)

__all__ = [
    "CANCELLED_STATUSES",
    "COLUMNS",
    "CORE_FIELDS",
    "DATE_FIELDS",
    "DONE_STATUSES",
    "MISSING",
    "NUMBER_FIELDS",
    "TEXT_FIELDS",
    "UNIT_WORDS",
    "Cell",
    "DateParser",
    "Flaw",
    "Flaws",
    "Header",
    "NumberParser",
    "TableMapping",
    "TableOptions",
    "UnitError",
    "Written",
    "cell_id",
    "cell_text",
    "cell_value",
    "column_letter",
    "find_header",
    "guess_type",
    "is_missing",
    "item_rows",
    "map_table",
    "normalise",
    "our_titles",
    "parse_date",
    "parse_number",
    "read_written",
    "rows_to_records",
    "statuses",
    "table_header",
    "to_float",
    "with_columns",
]
