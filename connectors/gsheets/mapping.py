"""The Sheets connector's mapping: the same table mapping as every tabular source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.gsheets.config import GSheetsConfig
from core.contract import MappingField
from core.tabular import CORE_FIELDS, TableMapping, TableOptions

MAPPING_FIELDS = tuple(
    MappingField(name, f"Column holding {name.replace('_', ' ')}", required=name == "id")
    for name in CORE_FIELDS
)


def table_mapping(mapping: Mapping[str, Any]) -> TableMapping:
    """The table mapping of a connection."""
    return TableMapping.from_config(mapping)


def table_options(config: GSheetsConfig, sheet_zone: str | None = None) -> TableOptions:
    """Reading options: the tab's name in messages, dates (in the configured time zone, else
    the spreadsheet's own), unit."""
    return TableOptions(source=f"tab '{config.worksheet}'", header_row=config.header_row,
                        dayfirst=config.dayfirst,
                        timezone=config.timezone or sheet_zone or "UTC", unit=config.unit)
