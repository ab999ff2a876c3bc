"""Which column holds which core field, and how a table's values are to be read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError, InputError
from core.tabular.cells import column_letter
from core.tabular.header import Header, normalise

TEXT_FIELDS = ("title", "kind", "url", "status", "outcome")
DATE_FIELDS = ("planned_start", "planned_due", "estimated_at", "actual_start", "actual_end")
EFFORT_FIELDS = ("planned_estimate", "actual_effort")
AMOUNT_FIELDS = ("planned_amount", "actual_amount")
PROBABILITY_FIELDS = ("planned_probability",)
NUMBER_FIELDS = (*EFFORT_FIELDS, *AMOUNT_FIELDS, *PROBABILITY_FIELDS)
CORE_FIELDS = ("id", "title", "kind", "url", "status", "planned_start", "planned_due",
               "planned_estimate", "estimated_at", "actual_start", "actual_end", "actual_effort",
               "planned_amount", "actual_amount", "planned_probability", "outcome")
"""Every core field a column can be mapped onto, in the order a mapping editor shows them."""

DONE_STATUSES = frozenset({"done", "closed", "finished", "completed", "complete", "resolved",
                           "released", "shipped", "delivered"})
CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "won't do", "wont do", "won't fix",
                                "rejected", "abandoned", "duplicate", "obsolete"})


def status_key(text: str) -> str:
    """How status values are compared: trimmed, case-folded, `_` as space, curly quote as '."""
    return normalise(text.replace("_", " ").replace("\u2019", "'"))


@dataclass(frozen=True)
class TableOptions:
    """How to read a table's values.

    Attributes:
        source: the table's name in messages and locators (a file name, a sheet tab).
        header_row: the 1-based header row; None to find it.
        dayfirst: order of numeric dates; None to infer it per column (see DateParser).
        timezone: IANA zone of dates written without one.
        unit: unit of estimates and effort; time suffixes are converted into it.
        hours_per_day: hours in a day of effort, for `2d` in an hours table and vice versa.
        done_statuses: status values meaning done (compared with `status_key`).
        cancelled_statuses: status values meaning cancelled; any other status is open.
    """

    source: str = "table"
    header_row: int | None = None
    dayfirst: bool | None = None
    timezone: str = "UTC"
    unit: str = "hours"
    hours_per_day: float = 8.0
    done_statuses: frozenset[str] = DONE_STATUSES
    cancelled_statuses: frozenset[str] = CANCELLED_STATUSES

    def __post_init__(self) -> None:
        object.__setattr__(self, "done_statuses", statuses(self.done_statuses))
        object.__setattr__(self, "cancelled_statuses", statuses(self.cancelled_statuses))

    def status(self, text: str) -> str:
        """done, cancelled or open for a status cell's text."""
        key = status_key(text)
        if key in self.done_statuses:
            return "done"
        return "cancelled" if key in self.cancelled_statuses else "open"


def statuses(values: Iterable[str]) -> frozenset[str]:
    """A set of status values, compared as `status_key` does."""
    return frozenset(status_key(v) for v in values)


@dataclass
class TableMapping:
    """Core field -> column name, plus segment name -> column name."""

    fields: dict[str, str]
    segments: dict[str, str] = field(default_factory=dict)

    @property
    def id_column(self) -> str:
        """The column holding the item id."""
        return self.fields["id"]

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> TableMapping:
        """Build from a connection's mapping.

        Args:
            mapping: core field -> column name, and `segments` as a list of columns, a
                comma-separated string of columns, or a dict segment name -> column.

        Raises:
            ConfigError: without an id column, or for an unknown core field.
        """
        fields = {k: str(v).strip() for k, v in mapping.items() if k != "segments" and v}
        unknown = sorted(set(fields) - set(CORE_FIELDS))
        if unknown:
            raise ConfigError(f"unknown mapping field(s) {', '.join(unknown)}; "
                              f"known: {', '.join(CORE_FIELDS)}, segments")
        if "id" not in fields:
            raise ConfigError("the mapping needs an id column (--map id=COLUMN)")
        raw = mapping.get("segments") or {}
        if isinstance(raw, str):
            raw = raw.split(",")
        if isinstance(raw, Mapping):
            segments = {str(k).strip(): str(v).strip() for k, v in raw.items() if v}
        else:
            segments = {str(c).strip(): str(c).strip() for c in raw if str(c).strip()}
        return cls(fields=fields, segments=segments)

    def wanted(self) -> dict[str, str]:
        """Target -> column for every mapped column; segments as `seg:<name>`."""
        return {**self.fields, **{f"seg:{k}": v for k, v in self.segments.items()}}

    def resolve(self, header: Header, source: str) -> dict[str, int]:
        """The 0-based column position of every mapped field (`seg:<name>` for segments).

        Raises:
            InputError: in one line, naming the file, each missing column with the field it
                was mapped to and the columns that exist; or a mapped column that appears
                twice, with both positions.
        """
        positions: dict[str, int] = {}
        missing: list[str] = []
        for target, column in self.wanted().items():
            label = f"segment {target[4:]}" if target.startswith("seg:") else target
            found = header.find(column)
            if not found:
                missing.append(f"'{column}' (mapped to {label})")
            elif len(found) > 1:
                where = " and ".join(f"{p + 1} ({column_letter(p)})" for p in found[:2])
                raise InputError(
                    f"{source}: column '{column}' (mapped to {label}) appears twice, in columns "
                    f"{where}; rename one, or map '{header.names[found[1]]}' for the second")
            else:
                positions[target] = found[0]
        if missing:
            shown = ", ".join(f"'{n}'" for n in header.names[:40])
            more = f" and {len(header.names) - 40} more" if len(header.names) > 40 else ""
            raise InputError(f"{source}: missing column {', '.join(missing)}; "
                             f"the columns are: {shown}{more}")
        return positions

    def __post_init__(self) -> None:
        for column in self.wanted().values():
            if not normalise(column):
                raise ConfigError("a mapped column name is blank")
