"""The file connector's mapping: which columns hold the plan, the actuals and the segments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.file.config import FileConfig
from core.contract import MappingField
from core.tabular import CORE_FIELDS, TableMapping, TableOptions
from core.tabular.header import normalise
from core.tabular.mapping import CANCELLED, DONE

DESCRIPTIONS = {
    "id": "Unique id of the row (task key, issue number)",
    "title": "Title or summary",
    "kind": "Item kind (task, milestone, deal)",
    "url": "Link to the item",
    "status": "Status; done/closed/... mean finished",
    "planned_start": "Planned start date",
    "planned_due": "Planned end / due date",
    "estimated_at": "When the estimate was made",
    "actual_start": "Actual start date",
    "actual_end": "Actual end / done date",
    "planned_estimate": "Estimated effort",
    "actual_effort": "Actual effort (time spent)",
    "planned_amount": "Planned amount",
    "actual_amount": "Actual amount",
    "outcome": "Outcome text",
}
MAPPING_FIELDS = tuple(
    MappingField(name, DESCRIPTIONS[name], required=name == "id") for name in CORE_FIELDS
)


def table_mapping(mapping: Mapping[str, Any]) -> TableMapping:
    """The table mapping of a connection."""
    return TableMapping.from_config(mapping)


def table_options(config: FileConfig, source: str) -> TableOptions:
    """Reading options from the connection's config."""
    done = frozenset(normalise(s) for s in config.done_statuses) if config.done_statuses else DONE
    cancelled = frozenset(normalise(s) for s in config.cancelled_statuses) \
        if config.cancelled_statuses else CANCELLED
    return TableOptions(source=source, dayfirst=config.dayfirst, timezone=config.timezone,
                        unit=config.unit, done_statuses=done, cancelled_statuses=cancelled)
