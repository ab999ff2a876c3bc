"""The file connector's mapping: which columns hold the plan, the actuals and the segments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.file.config import FileConfig
from core.contract import EnrollmentRecord, ItemRecord, LinkRecord, MappingField
from core.errors import ConfigError, InputError
from core.tabular import (
    CANCELLED_STATUSES,
    CORE_FIELDS,
    DONE_STATUSES,
    DateParser,
    Header,
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
LINK_FIELDS = {
    "company": "Id of the row's company (another row's id): a deal's or contact's account",
    "contact": "Id of the row's contact (another row's id, e.g. the email)",
    "parent": "Id of the row's parent (an issue's epic)",
    "deal": "Id of the deal the row belongs to",
    "enrollment_of": "Id of the contact this row is an enrollment of",
}
ENROLLMENT_FIELDS = {
    "arm": "Arm (variant) the row was assigned to: makes the row an enrollment",
    "variant": "Same as arm",
    "test": "Test (sequence, campaign) of the enrollment (default: the file's name)",
    "assignment": "How the arm was chosen; random/randomized/yes means at random",
    "unit": "The contact or account enrolled (enrollments of one account count as one unit)",
    "account": "Same as unit",
    "assigned_at": "When the arm was assigned (default: the plan's date)",
    "split": "Expected split of the test, e.g. A=50,B=50",
}
MAPPING_FIELDS = tuple(
    MappingField(name, DESCRIPTIONS[name], required=name == "id") for name in CORE_FIELDS
) + tuple(MappingField(n, d) for n, d in {**LINK_FIELDS, **ENROLLMENT_FIELDS}.items())
ALIASES = {"variant": "arm", "account": "unit"}
RANDOM_WORDS = frozenset({"random", "randomized", "randomised", "randomly", "yes", "y", "true",
                          "1"})
READ_SETTINGS = ("sheet", "encoding", "delimiter", "header_row", "dayfirst", "timezone", "unit",
                 "hours_per_day", "done_statuses", "cancelled_statuses")


def table_mapping(mapping: Mapping[str, Any]) -> TableMapping:
    """The table mapping of a connection.

    Raises:
        ConfigError: without an id column or for an unknown core field.
    """
    return TableMapping.from_config({k: v for k, v in mapping.items()
                                     if k not in LINK_FIELDS and k not in ENROLLMENT_FIELDS})


@dataclass
class RelationColumns:
    """Where a table's links and enrollment fields are: target -> 0-based column position."""

    links: dict[str, int]
    enrollment: dict[str, int]
    names: list[str]
    test: str
    dates: DateParser

    @classmethod
    def of(cls, mapping: Mapping[str, Any], header: Header, options: TableOptions,
           test: str) -> RelationColumns | None:
        """The mapped link and enrollment columns in `header` (None when none is mapped).

        Raises:
            ConfigError: when a field is mapped under both its names (arm and variant), or
                enrollment fields are mapped without the arm.
            InputError: when a mapped column is not in the header, naming the columns there.
        """
        wanted: dict[str, str] = {}
        named: dict[str, str] = {}
        for key, column in mapping.items():
            if not column or (key not in LINK_FIELDS and key not in ENROLLMENT_FIELDS):
                continue
            target = ALIASES.get(key, key)
            if target in wanted:
                first, second = sorted((named[target], key))
                raise ConfigError(f"map either {first} or {second}, not both")
            wanted[target], named[target] = str(column).strip(), key
        if not wanted:
            return None
        enrollment = {k for k in wanted if k not in LINK_FIELDS}
        if enrollment and "arm" not in enrollment:
            raise ConfigError(f"{', '.join(sorted(enrollment))} describe an enrollment: map "
                              "its arm too (--map arm=COLUMN)")
        positions: dict[str, int] = {}
        missing = []
        for target, column in wanted.items():
            found = header.find(column)
            if found:
                positions[target] = found[0]
            else:
                missing.append(f"'{column}' (mapped to {target})")
        if missing:
            shown = ", ".join(f"'{n}'" for n in header.names[:40])
            raise InputError(f"{options.source}: missing column {', '.join(missing)}; "
                             f"the columns are: {shown}")
        return cls(links={k: p for k, p in positions.items() if k in LINK_FIELDS},
                   enrollment={k: p for k, p in positions.items() if k not in LINK_FIELDS},
                   names=header.names, test=test,
                   dates=DateParser(options.dayfirst, options.timezone))

    def learn(self, rows: Sequence[Sequence[Any]]) -> None:
        """Settle the date order of the assignment column from its values."""
        if "assigned_at" in self.enrollment:
            p = self.enrollment["assigned_at"]
            self.dates.learn(r[p] for r in rows[:20_000] if p < len(r))

    def _text(self, rec: ItemRecord, position: int) -> str:
        return str(rec.raw.get(self.names[position], "")).strip()

    def read(self, rec: ItemRecord) -> tuple[list[LinkRecord], EnrollmentRecord | None] | str:
        """The row's links and enrollment, or why its enrollment cannot be read."""
        links = [LinkRecord(rec.external_id, value, relation)
                 for relation, p in self.links.items()
                 if (value := self._text(rec, p)) and value != rec.external_id]
        if not self.enrollment:
            return links, None
        text = {k: self._text(rec, p) for k, p in self.enrollment.items()}
        if not text["arm"]:
            return links, None
        when = rec.estimated_at or rec.planned_start or rec.actual_start or rec.actual_end
        if text.get("assigned_at"):
            try:
                when = self.dates.parse(text["assigned_at"])
            except ValueError as exc:
                return f"column '{self.names[self.enrollment['assigned_at']]}': {exc}"
        split = None
        if text.get("split"):
            split = parse_split(text["split"])
            if split is None:
                return (f"column '{self.names[self.enrollment['split']]}': expected split "
                        f"{text['split']!r} is not like A=50,B=50")
        return links, EnrollmentRecord(
            rec.external_id, text.get("test") or self.test, text["arm"],
            unit=text.get("unit") or None, assigned_at=when,
            random=text.get("assignment", "").lower() in RANDOM_WORDS, expected_split=split)


def parse_split(text: str) -> dict[str, float] | None:
    """`A=50,B=50`, `A:0.5; B:0.5` or a JSON object as arm -> share; None if unreadable."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    pairs: list[tuple[Any, ...]]
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = [tuple(p.strip() for p in re.split("[=:]", part, maxsplit=1))
                 for part in re.split("[,;]", text) if part.strip()]
    out: dict[str, float] = {}
    for pair in pairs:
        if len(pair) != 2 or not str(pair[0]).strip():
            return None
        try:
            share = float(str(pair[1]).rstrip("%"))
        except ValueError:
            return None
        if share < 0:
            return None
        out[str(pair[0]).strip()] = share
    return out if out and sum(out.values()) > 0 else None


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
