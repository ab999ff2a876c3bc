"""The file connector: planned-vs-actual tables exported from anywhere (CSV and XLSX)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.file import owned, sync, writeback
from connectors.file.config import FileConfig
from connectors.file.mapping import MAPPING_FIELDS
from core.contract import (
    FIELD_TYPES,
    FIELDS,
    TEMPLATE,
    Batch,
    Delivery,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    MappingField,
    WriteTarget,
    split_valid,
    surfaces_of,
)
from core.errors import LearnloopError
from core.tabular import COLUMNS, find_header, guess_type

SAMPLE_ROWS = 200


class FileConnector:
    """Reads a CSV/XLSX table; writes learnloop's columns into a copy of it."""

    name: ClassVar[str] = "file"
    title: ClassVar[str] = "CSV / Excel file"
    config_model: ClassVar[type[BaseModel]] = FileConfig
    # The copy with learnloop's columns *is* the table learnloop writes: one FIELDS intent
    # per row, so each row is an upsert of its own and nothing else is queued.
    targets: ClassVar[tuple[WriteTarget, ...]] = (*tuple(
        WriteTarget(key, FIELD_TYPES[key], FIELDS, f"column '{title}' of the copy")
        for key, title in COLUMNS.items()), WriteTarget(
        "templates table", "project", TEMPLATE, "a template's rows in "
        "<copy>-templates.csv beside the copy, replaced by each new version"))
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: FileConfig, mapping: Mapping[str, Any] | None = None) -> None:
        if not isinstance(config, FileConfig):
            raise TypeError(f"FileConnector needs a FileConfig, not {type(config).__name__}")
        self.config = config
        self.mapping = dict(mapping or {})

    def check(self) -> Health:
        """The file is readable, every mapped column is there, and the copy can be written."""
        try:
            table = sync.load(self.config)
            if self.mapping:
                header = sync.header_of(table, self.config, self.mapping)
                rows = sum(1 for r in table.rows[header.row_number:] if any(
                    c not in (None, "") for c in r))
                found = f"header on row {header.row_number}, {rows} data rows"
            else:
                found = f"{len(table.rows)} rows (no mapping yet)"
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc))
        out = writeback.output_path(self.config)
        if not owned.created_by_learnloop(out):
            return Health(ok=False, message=f"{table.path.name} is readable ({found}), but "
                          + owned.not_ours_message(out))
        folder = out.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return Health(ok=False, message=f"{table.path.name} is readable ({found}), but "
                          f"learnloop cannot write its copy in {out.parent}")
        return Health(ok=True, message=f"{table.path.name} is readable: {found}; learnloop "
                      f"writes its columns into {out.name}")

    def preflight(self) -> str | None:
        """What is wrong with the file or the mapping, found when the connection is added:
        the file is missing or unreadable, or a mapped column is not in its header."""
        try:
            table = sync.load(self.config)
            if self.mapping:
                sync.header_of(table, self.config, self.mapping)
        except LearnloopError as exc:
            return str(exc)
        return None

    def install(self) -> InstallReport:
        """Nothing to provision: learnloop writes into a copy of the table that it owns."""
        out = writeback.output_path(self.config)
        if not owned.created_by_learnloop(out):
            return InstallReport(problems=[owned.not_ours_message(out)])
        return InstallReport(existing=[f"write-back copy: {out} (written on the first "
                                       "delivery; your file is never modified)"])

    def uninstall(self) -> InstallReport:
        """Delete the write-back copy and the templates table, if learnloop wrote them; any
        other file there is kept."""
        results = [writeback.remove_copy(self.config),
                   writeback.remove_copy(self.config, writeback.templates_path(self.config))]
        return InstallReport(removed=[r for r, _ in results if r],
                             problems=[k for _, k in results if k])

    def discover_fields(self) -> list[FieldInfo]:
        """The header's columns, each with a guessed type (date, number or string).

        Raises:
            InputError: when the file cannot be read.
        """
        table = sync.load(self.config)
        id_col = self.mapping.get("id")
        header = find_header(table.rows, str(id_col) if id_col else None, self.config.header_row)
        if header is None:
            return []
        sample = table.rows[header.row_number:header.row_number + SAMPLE_ROWS]
        return [FieldInfo(id=name, name=name,
                          type=guess_type([r[i] if i < len(r) else None for r in sample]))
                for i, name in enumerate(header.names)]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Every row, in snapshot batches, when the file or the settings changed since `cursor`."""
        return sync.pull(self.config, self.mapping, cursor)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Write the field values into the copy, one row per id, as an upsert; templates into
        the templates table beside it."""
        valid, failed = split_valid(intents)
        templates = [i for i in valid if i.surface == TEMPLATE]
        rest = [i for i in valid if i.surface != TEMPLATE]
        return (failed + (writeback.deliver(self.config, self.mapping, rest) if rest else [])
                + (writeback.deliver_templates(self.config, templates) if templates else []))


__all__ = ["FileConfig", "FileConnector"]
