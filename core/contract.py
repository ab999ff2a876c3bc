"""The connector contract: what every connector provides and the records it exchanges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

# Surfaces, targets and payloads live in core.payloads; they are part of this contract.
from core.payloads import COMMENT as COMMENT
from core.payloads import FIELD_TYPES as FIELD_TYPES
from core.payloads import FIELDS as FIELDS
from core.payloads import INSIGHTS as INSIGHTS
from core.payloads import LINK as LINK
from core.payloads import NOTE as NOTE
from core.payloads import PAYLOADS as PAYLOADS
from core.payloads import PROPERTY as PROPERTY
from core.payloads import SURFACES as SURFACES
from core.payloads import TEMPLATE as TEMPLATE
from core.payloads import CommentPayload as CommentPayload
from core.payloads import FieldsPayload as FieldsPayload
from core.payloads import InsightsPayload as InsightsPayload
from core.payloads import LinkPayload as LinkPayload
from core.payloads import NotePayload as NotePayload
from core.payloads import Payload as Payload
from core.payloads import PayloadError as PayloadError
from core.payloads import PropertyPayload as PropertyPayload
from core.payloads import TargetSpec as TargetSpec
from core.payloads import TemplatePayload as TemplatePayload
from core.payloads import TemplateRow as TemplateRow
from core.payloads import WriteTarget as WriteTarget
from core.payloads import declared_targets as declared_targets
from core.payloads import parse_payload as parse_payload
from core.payloads import resolve_targets as resolve_targets
from core.payloads import standard_targets as standard_targets
from core.payloads import surfaces_of as surfaces_of


@dataclass(slots=True)
class ItemRecord:
    """One item as a connector reads it from its tool, already mapped onto the core model."""

    external_id: str
    title: str = ""
    kind: str = "task"
    url: str | None = None
    segments: dict[str, str] = field(default_factory=dict)
    unit: str = "hours"
    status: str = "open"
    planned_start: dt.datetime | None = None
    planned_due: dt.datetime | None = None
    planned_estimate: float | None = None
    planned_amount: float | None = None
    planned_probability: float | None = None  # win probability, 0 to 1
    expected_outcome: str | None = None
    estimated_at: dt.datetime | None = None
    actual_start: dt.datetime | None = None
    actual_end: dt.datetime | None = None
    actual_effort: float | None = None
    actual_amount: float | None = None
    outcome: str | None = None
    source_updated_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EventRecord:
    """One action on an item; `external_id` is stable so a re-read never duplicates it."""

    item_external_id: str
    external_id: str
    occurred_at: dt.datetime
    kind: str
    actor: str | None = None
    actor_kind: str = "human"
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LinkRecord:
    """`to_external_id` is the `relation` of `from_external_id` (a deal's company, an
    enrollment's contact, an issue's parent epic), both ids of items of the same connection.

    The target need not be pulled yet: the link waits for it. The links of one item and
    relation travel together in one batch: they replace that item's stored links of it. An
    empty `to_external_id` (`LinkRecord.cleared`) says the item has none of that relation any
    more (an issue taken out of its epic, an opportunity whose account was removed): its
    stored links of it go.
    """

    from_external_id: str
    to_external_id: str
    relation: str

    @classmethod
    def cleared(cls, from_external_id: str, relation: str) -> LinkRecord:
        """The record saying `from_external_id` has no `relation` now."""
        return cls(from_external_id, "", relation)


@dataclass(slots=True)
class EnrollmentRecord:
    """The item `item_external_id` assigned to `arm` of `test`.

    `unit` is the contact or account enrolled, `random` says the arm was drawn at random (only
    then can segment results become policies), `expected_split` is arm -> share by design.
    """

    item_external_id: str
    test: str
    arm: str
    unit: str | None = None
    assigned_at: dt.datetime | None = None
    random: bool = False
    expected_split: dict[str, float] | None = None


@dataclass(slots=True)
class LessonRecord:
    """A lesson a tool holds (a post-mortem issue, a row of a lessons tab), as written.

    `words` is the lesson's text; `segment`, `predicts` and `behaviour` are the values of
    dedicated fields or columns when the tool has them (None: they are read from labelled
    lines of `words`, see core/lessons/parse.py). An unreadable lesson is kept, untested.
    `writable` says the lesson's own record takes FIELDS writes under `external_id` (a Jira
    issue does; a row of a lessons tab does not): its verdict is written there too.
    """

    external_id: str
    words: str
    url: str | None = None
    segment: str | None = None
    predicts: str | None = None
    behaviour: str | None = None
    created_at: dt.datetime | None = None
    writable: bool = False


@dataclass(slots=True)
class Problem:
    """Input that could not become an item: where it is, why, and the raw values."""

    locator: str
    reason: str
    raw: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.locator}: {self.reason}"


@dataclass(slots=True)
class Batch:
    """A unit of a pull, stored in one transaction together with the cursor after it.

    `snapshot=True` says the pull lists every live item: items of the connection that no
    batch of a completed snapshot pull mentioned are marked deleted.
    """

    items: list[ItemRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    links: list[LinkRecord] = field(default_factory=list)
    enrollments: list[EnrollmentRecord] = field(default_factory=list)
    lessons: list[LessonRecord] = field(default_factory=list)
    cursor: dict[str, Any] | None = None
    snapshot: bool = False


@dataclass(slots=True)
class Health:
    """The result of a connection test, in plain words."""

    ok: bool
    message: str
    missing_permissions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FieldInfo:
    """A field (column, property) the tool reports, offered in the mapping editor."""

    id: str
    name: str
    type: str = "string"


@dataclass(slots=True)
class InstallReport:
    """What an install or uninstall did on the tool side."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Intent:
    """A write-back intent as handed to a connector for delivery."""

    id: int
    target: str
    surface: str
    payload: dict[str, Any]
    tool_ref: str | None = None


@dataclass(slots=True)
class Delivery:
    """The outcome of delivering one intent.

    `tool_ref` is the tool-side id of what was written (a comment id), kept so the next write
    edits it in place. `retry_after` (seconds) asks for a later retry; `permanent` says retrying
    cannot help. `checklist` (with `ok=True`) says the tool's API cannot make this change: the
    exact steps a person must take instead; the intent waits in the web app until they are
    marked done.
    """

    intent_id: int
    ok: bool
    tool_ref: str | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    checklist: list[str] | None = None


def split_valid(intents: Sequence[Intent]) -> tuple[list[Intent], list[Delivery]]:
    """Intents whose payload parses as their surface's type, and a failure for each other.

    A connector calls this first: a payload that does not match its type is a permanent
    failure with a message naming the field, never a crash halfway through a batch.
    """
    valid, failed = [], []
    for intent in intents:
        try:
            parse_payload(intent.surface, intent.payload)
        except PayloadError as exc:
            failed.append(Delivery(intent.id, ok=False, permanent=True, error=str(exc)))
        else:
            valid.append(intent)
    return valid, failed


@dataclass(frozen=True, slots=True)
class MappingField:
    """A core field an admin can map a tool field onto."""

    name: str
    description: str
    required: bool = False


@runtime_checkable
class Connector(Protocol):
    """What learnloop needs from a tool. Built by `connector_class(config, mapping)`."""

    name: ClassVar[str]
    title: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    capabilities: ClassVar[frozenset[str]]
    targets: ClassVar[tuple[WriteTarget, ...]]
    mapping_fields: ClassVar[tuple[MappingField, ...]]

    def check(self) -> Health:
        """Test that the tool is reachable with this config and say what is missing."""
        ...

    def install(self) -> InstallReport:
        """Provision the fields/properties/columns learnloop writes to (idempotent)."""
        ...

    def uninstall(self) -> InstallReport:
        """Remove what `install` provisioned."""
        ...

    def discover_fields(self) -> list[FieldInfo]:
        """The tool's fields, for the mapping editor."""
        ...

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Items, events and problems changed since `cursor`, in batches with their cursor."""
        ...

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Write intents into the tool; one Delivery per intent, as an upsert."""
        ...


class ConnectorFactory(Protocol):
    """A connector class: its class attributes and a constructor."""

    name: str
    title: str
    config_model: type[BaseModel]
    capabilities: frozenset[str]
    targets: tuple[WriteTarget, ...]
    mapping_fields: tuple[MappingField, ...]

    def __call__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> Connector:
        """Build a connector for one connection."""
        ...
