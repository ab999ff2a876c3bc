"""The Google Sheets connector: plan tabs with Planned and Actual columns, written back into."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.gsheets import sync, writeback
from connectors.gsheets.config import GSheetsConfig
from connectors.gsheets.mapping import MAPPING_FIELDS, table_mapping, table_options
from core.contract import (
    FIELD_TYPES,
    FIELDS,
    INSIGHTS,
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
from core.tabular import COLUMNS, guess_type, table_header


class GSheetsConnector:
    """Reads a tab through gspread (service account); writes learnloop's columns into it."""

    name: ClassVar[str] = "gsheets"
    title: ClassVar[str] = "Google Sheets"
    config_model: ClassVar[type[BaseModel]] = GSheetsConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        *(WriteTarget(key, FIELD_TYPES[key], FIELDS, f"column '{title}' of the plan tab, found "
                      "by developer metadata") for key, title in COLUMNS.items()),
        WriteTarget("learnloop insights", "table", INSIGHTS, "a tab of the current findings"),
        WriteTarget("template tab", "project", TEMPLATE, "a template tab duplicated as "
                    "'<name> v<N>' with the plan beside each task"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        assert isinstance(config, GSheetsConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        self._gc: Any = None  # one gspread client per connector: one token, not one per call

    def _client(self) -> Any:
        if self._gc is None:
            from connectors.gsheets.client import connect

            self._gc = connect(self.config)
        return self._gc

    def _header(self) -> tuple[Any, Any, Any, list[list[Any]]]:
        book, tab = sync.open_tab(self.config, self._client())
        rows = sync.read_rows(tab, self.config)
        header = table_header(rows, table_mapping(self.mapping), table_options(self.config))
        return book, tab, header, rows

    def check(self) -> Health:
        """The sheet is shared with the service account, the tab and the mapped columns exist."""
        try:
            _, tab, header, rows = self._header()
            table_mapping(self.mapping).resolve(header, f"tab '{tab.title}'")
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"tab '{tab.title}' readable, {len(rows)} rows")

    def install(self) -> InstallReport:
        """Create learnloop's columns (tagged with developer metadata) if they are missing."""
        book, tab, header, _ = self._header()
        cols, created = writeback.ensure_columns(book, tab, header.row_number, header.names)
        existing = [k for k in cols if k not in created]
        return InstallReport(created=created, existing=existing)

    def uninstall(self) -> InstallReport:
        """Nothing is deleted from a user's sheet: learnloop's columns stay, marked as ours."""
        return InstallReport(problems=["learnloop's columns are left in the sheet; delete them "
                                       "by hand if you no longer want them"])

    def discover_fields(self) -> list[FieldInfo]:
        """The header's columns with a guessed type."""
        _, _, header, rows = self._header()
        body = rows[header.row_number:header.row_number + 200]
        return [FieldInfo(n, n, guess_type([r[i] for r in body if i < len(r)]))
                for i, n in enumerate(header.names)]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Every row when the sheet changed since `cursor` (Drive modifiedTime)."""
        return sync.pull(self.config, self.mapping, cursor, self._client())

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Field values into the plan tab; the insights tab; new template tab versions."""
        intents, results = split_valid(intents)
        fields = [i for i in intents if i.surface == FIELDS]
        results += writeback.deliver(self.config, self.mapping, fields, self._client()) \
            if fields else []
        for intent in intents:
            if intent.surface == FIELDS:
                continue
            write = {INSIGHTS: writeback.write_insights, TEMPLATE: writeback.write_template}
            if intent.surface not in write:
                results.append(Delivery(intent.id, ok=False, permanent=True,
                                        error=f"gsheets cannot write {intent.surface}"))
                continue
            try:
                results.append(write[intent.surface](self.config, intent, self._client()))
            except LearnloopError as exc:
                results.append(Delivery(intent.id, ok=False, error=str(exc)))
            except Exception as exc:
                from connectors.gsheets.client import QuotaError, explain

                error = explain(exc, self.config)
                wait = QuotaError.retry_after if isinstance(error, QuotaError) else None
                results.append(Delivery(intent.id, ok=False, error=str(error), retry_after=wait))
        return results


__all__ = ["GSheetsConfig", "GSheetsConnector"]
