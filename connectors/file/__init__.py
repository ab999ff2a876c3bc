"""The file connector: planned-vs-actual tables exported from anywhere (CSV and XLSX)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.file import sync, writeback
from connectors.file.config import FileConfig
from connectors.file.mapping import MAPPING_FIELDS
from core.contract import (
    FIELDS,
    Batch,
    Delivery,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    MappingField,
)
from core.errors import LearnloopError
from core.tabular import parse_number
from core.tabular.values import DateParser, is_missing


class FileConnector:
    """Reads a CSV/XLSX table; writes learnloop's columns into a copy of it."""

    name: ClassVar[str] = "file"
    title: ClassVar[str] = "CSV / Excel file"
    config_model: ClassVar[type[BaseModel]] = FileConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({FIELDS})
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        assert isinstance(config, FileConfig)
        self.config = config
        self.mapping = dict(mapping or {})

    def check(self) -> Health:
        """The file is readable and every mapped column is there."""
        try:
            table = sync.load(self.config)
            if self.mapping:
                header = sync.header_of(table, self.config, self.mapping)
                from connectors.file.mapping import table_mapping

                table_mapping(self.mapping).resolve(header, table.path.name)
            rows = len(table.rows)
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"{table.path.name} readable, {rows} rows")

    def install(self) -> InstallReport:
        """Nothing to provision: learnloop writes into a copy it owns."""
        out = writeback.output_path(self.config)
        return InstallReport(existing=[f"write-back copy: {out}"])

    def uninstall(self) -> InstallReport:
        """Delete the write-back copy."""
        out = writeback.output_path(self.config)
        if out.exists():
            out.unlink()
            return InstallReport(removed=[str(out)])
        return InstallReport()

    def discover_fields(self) -> list[FieldInfo]:
        """The header's columns, each with a guessed type (date, number or string)."""
        table = sync.load(self.config)
        id_col = self.mapping.get("id")
        from core.tabular import find_header

        header = find_header(table.rows, str(id_col), self.config.header_row) if id_col else None
        start = header.row_number if header else 1
        names = header.names if header else [str(c) for c in (table.rows[0] if table.rows else [])]
        sample = table.rows[start:start + 200]
        out = []
        for i, name in enumerate(names):
            cells = [r[i] for r in sample if i < len(r) and not is_missing(r[i])]
            out.append(FieldInfo(id=name, name=name, type=_guess(cells)))
        return out

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Every row, in batches, when the file changed since `cursor`."""
        return sync.pull(self.config, self.mapping, cursor)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Write the field values into the copy."""
        return writeback.deliver(self.config, self.mapping, intents)


def _guess(cells: list[Any]) -> str:
    if not cells:
        return "string"

    def all_ok(fn: Any) -> bool:
        try:
            for c in cells:
                fn(c)
        except ValueError:
            return False
        return True

    if all(isinstance(c, int | float) for c in cells) or all_ok(parse_number):
        return "number"
    if all_ok(DateParser().parse):
        return "date"
    return "string"


__all__ = ["FileConfig", "FileConnector"]
