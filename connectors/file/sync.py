"""Pull a file: every row becomes an item or a quarantined problem; an unchanged file costs a hash."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.file.client import Table, parse, read_source
from connectors.file.config import FileConfig
from connectors.file.mapping import settings_key, table_mapping, table_options
from core.contract import Batch, ItemRecord
from core.tabular import Header, map_table, table_header

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
    return header


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
    records = map_table(table.rows, table_mapping(mapping), table_options(config, source.path.name))
    batch = Batch(snapshot=True)
    for rec in records:
        if isinstance(rec, ItemRecord):
            batch.items.append(rec)
        else:
            batch.problems.append(rec)
        if len(batch.items) + len(batch.problems) >= BATCH:
            yield batch
            batch = Batch(snapshot=True)
    batch.cursor = {"sha256": source.sha256, "mtime": source.mtime, "settings": settings}
    yield batch
