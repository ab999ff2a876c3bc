"""The file connector's mapping: which columns hold the plan, the actuals and the segments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from connectors.file.config import FileConfig
from core.contract import MappingField
from core.tabular import (
    CANCELLED_STATUSES,
    CORE_FIELDS,
    DONE_STATUSES,
    TableMapping,
    TableOptions,
)

DESCRIPTIONS = {
    "id": "Unique id of the row (task key, issue number)",
    "title": "Title or summary",
    "kind": "Item kind (task, milestone, deal)",
    "url": "Link to the item",
    "status": "Status; done/closed/finished/... mean done, cancelled/won't do/... cancelled",
    "planned_start": "Planned start date",
    "planned_due": "Planned end / due date",
    "planned_estimate": "Estimated effort (in the configured unit)",
    "estimated_at": "When the estimate was made",
    "actual_start": "Actual start date",
    "actual_end": "Actual end / done date",
    "actual_effort": "Actual effort, time spent (in the configured unit)",
    "planned_amount": "Planned amount",
    "actual_amount": "Actual amount",
    "planned_probability": "Win probability (0.7 or 70%)",
    "outcome": "Outcome text",
}
MAPPING_FIELDS = tuple(
    MappingField(name, DESCRIPTIONS[name], required=name == "id") for name in CORE_FIELDS
)
READ_SETTINGS = ("sheet", "encoding", "delimiter", "header_row", "dayfirst", "timezone", "unit",
                 "hours_per_day", "done_statuses", "cancelled_statuses")


def table_mapping(mapping: Mapping[str, Any]) -> TableMapping:
    """The table mapping of a connection.

    Raises:
        ConfigError: without an id column or for an unknown core field.
    """
    return TableMapping.from_config(mapping)


def table_options(config: FileConfig, source: str) -> TableOptions:
    """Reading options from the connection's config; `source` names the table in messages."""
    return TableOptions(
        source=source, header_row=config.header_row, dayfirst=config.dayfirst,
        timezone=config.timezone, unit=config.unit, hours_per_day=config.hours_per_day,
        done_statuses=frozenset(config.done_statuses or DONE_STATUSES),
        cancelled_statuses=frozenset(config.cancelled_statuses or CANCELLED_STATUSES),
    )


def settings_key(config: FileConfig, mapping: Mapping[str, Any]) -> str:
    """A fingerprint of everything that changes how the same bytes are read into items."""
    settings = {name: getattr(config, name) for name in READ_SETTINGS}
    text = json.dumps({"config": settings, "mapping": dict(mapping)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
