"""Pull a file: every row becomes an item or a quarantined problem; an unchanged file costs a hash."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.file.client import Table, parse, read_source
from connectors.file.config import FileConfig
from connectors.file.mapping import RelationColumns, settings_key, table_mapping, table_options
from core.contract import Batch, ItemRecord, Problem
from core.tabular import Header, cell_id, rows_to_records, table_header

BATCH = 1000


def load(config: FileConfig) -> Table:
    """Read and parse the configured file.

    Raises:
        InputError: when it is missing or not a readable table.
    """
    return parse(read_source(config.path), config.encoding, config.delimiter, config.sheet)


def header_of(table: Table, config: FileConfig, mapping: Mapping[str, Any]) -> Header:
    """The table's header row for this mapping, every mapped column checked.

    Raises:
        InputError: when there is no header row or a mapped column is missing.
    """
    options = table_options(config, table.path.name)
    tm = table_mapping(mapping)
    header = table_header(table.rows, tm, options)
    tm.resolve(header, options.source)
    RelationColumns.of(mapping, header, options, table.path.stem)
    return header


def _locator(source: str, header: Header, rows: list[list[Any]] | Any, rec: ItemRecord,
             id_column: str) -> str:
    """Where the row of `rec` is, as a spreadsheet user counts rows."""
    pos = header.find(id_column)[0]
    for number, row in enumerate(rows, start=header.row_number + 1):
        if pos < len(row) and cell_id(row[pos]) == rec.external_id:
            return f"{source} row {number}"
    return f"{source} id {rec.external_id}"


def pull(config: FileConfig, mapping: Mapping[str, Any],
         cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
    """Every row in batches of up to BATCH records, unless the file and settings are unchanged.

    Each batch is a snapshot batch (rows no longer in the file are deleted items); only the
    last one carries the cursor {"sha256", "mtime", "settings"}.

    Raises:
        InputError: when the file cannot be read at all (before anything is yielded).
    """
    source = read_source(config.path)
    settings = settings_key(config, mapping)
    if cursor and cursor.get("sha256") == source.sha256 \
            and cursor.get("settings", settings) == settings:
        return
    table = parse(source, config.encoding, config.delimiter, config.sheet)
    tm, options = table_mapping(mapping), table_options(config, source.path.name)
    header = table_header(table.rows, tm, options)
    data = table.rows[header.row_number:]
    relations = RelationColumns.of(mapping, header, options, source.path.stem)
    if relations:
        relations.learn(data)
    records = rows_to_records(header, data, tm, options, flaws=table.flaws)
    batch = Batch(snapshot=True)
    for rec in records:
        if not isinstance(rec, ItemRecord):
            batch.problems.append(rec)
        elif relations is None:
            batch.items.append(rec)
        elif isinstance(got := relations.read(rec), str):
            batch.problems.append(Problem(_locator(options.source, header, data, rec, tm.id_column),
                                          got, rec.raw))
        else:
            batch.items.append(rec)
            batch.links.extend(got[0])
            if got[1] is not None:
                batch.enrollments.append(got[1])
        if len(batch.items) + len(batch.problems) >= BATCH:
            yield batch
            batch = Batch(snapshot=True)
    batch.cursor = {"sha256": source.sha256, "mtime": source.mtime, "settings": settings}
    yield batch
