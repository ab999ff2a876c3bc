"""Pull a file: every row becomes an item or a quarantined problem; unchanged files cost nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.file.client import Table, read_table
from connectors.file.config import FileConfig
from connectors.file.mapping import table_mapping, table_options
from core.contract import Batch, ItemRecord, Problem
from core.errors import InputError
from core.tabular import Header, find_header, rows_to_records

BATCH = 1000


def load(config: FileConfig) -> Table:
    """Read the configured file."""
    return read_table(config.path, config.encoding, config.delimiter, config.sheet)


def header_of(table: Table, config: FileConfig, mapping: Mapping[str, Any]) -> Header:
    """The table's header row.

    Raises:
        InputError: when no row holds the mapped id column.
    """
    tm = table_mapping(mapping)
    header = find_header(table.rows, tm.fields["id"], config.header_row)
    if header is None:
        where = f"row {config.header_row}" if config.header_row else "the first 20 rows"
        raise InputError(f"{table.path.name}: no header row with the id column "
                         f"'{tm.fields['id']}' in {where}")
    return header


def pull(config: FileConfig, mapping: Mapping[str, Any],
         cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
    """Batches of items and problems; nothing when the file's content has not changed."""
    table = load(config)
    if cursor and cursor.get("sha256") == table.sha256:
        return
    header = header_of(table, config, mapping)
    records = rows_to_records(header, table.rows[header.row_number:], table_mapping(mapping),
                              table_options(config, table.path.name))
    batch = Batch(snapshot=True)
    for rec in records:
        if isinstance(rec, ItemRecord):
            batch.items.append(rec)
        else:
            assert isinstance(rec, Problem)
            batch.problems.append(rec)
        if len(batch.items) + len(batch.problems) >= BATCH:
            yield batch
            batch = Batch(snapshot=True)
    batch.cursor = {"sha256": table.sha256, "mtime": table.mtime}
    yield batch
