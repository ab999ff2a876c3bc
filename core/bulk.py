"""Insert many rows in one executemany, each value bound as the column's type binds it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`.

    On SQLite the statement is compiled once and handed to the driver's executemany with
    each value converted by its column type's bind processor (a value repeated across rows,
    the time a run issues at, converted once): SQLAlchemy's per-row parameter
    handling costs more than the insert itself on a learning run's hundred thousand rows.
    The values stored are the same. Elsewhere (PostgreSQL batches inserts into multi-row
    VALUES itself), and for a table with Python-side defaults the rows leave out, the
    ordinary executemany.
    """
    if not rows:
        return
    keys = list(rows[0])
    columns = [table.c[k] for k in keys]
    missing_defaults = any(c.default is not None or c.onupdate is not None
                           for c in table.c if c.key not in rows[0])
    if conn.dialect.name != "sqlite" or missing_defaults:
        conn.execute(insert(table), list(rows))
        return
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=keys)
    order = [keys.index(name) for name in compiled.positiontup or ()]
    if sorted(order) != list(range(len(keys))):  # not one positional parameter per column
        conn.execute(insert(table), list(rows))
        return
    converters = [_converter(columns[i].type.dialect_impl(conn.dialect).bind_processor(
        conn.dialect)) for i in order]
    names = [keys[i] for i in order]
    params = [tuple(convert(row[name]) if convert else row[name]
                    for name, convert in zip(names, converters, strict=True)) for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def _converter(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """`process`, remembering its result for each time (the times of a bulk insert repeat)."""
    if process is None:
        return None
    seen: dict[tuple[dt.datetime, Any, int], Any] = {}

    def convert(value: Any) -> Any:
        if not isinstance(value, dt.datetime):
            return process(value)
        # Equal aware times in different zones, or either side of a fold, bind differently.
        key = (value, value.tzinfo, value.fold)
        got = seen.get(key, seen)
        if got is seen:
            got = seen[key] = process(value)
        return got

    return convert
