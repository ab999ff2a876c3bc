"""Write-back surfaces, the targets a connector declares, and one typed payload per surface."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import LearnloopError

FIELDS = "fields"  # quiet per-item values: forecast P80, effort factor, risk, insight, win
# probability, recommended variant
COMMENT = "comment"  # one comment per item, edited in place
PROPERTY = "property"  # structured JSON stored on the item
LINK = "link"  # a link from the item to its learnloop page
NOTE = "note"  # a note or task on a (CRM) record when its status or risk band changes
TEMPLATE = "template"  # a project or sequence template updated after an accepted proposal
INSIGHTS = "insights"  # a page/tab listing the current findings with their evidence
SURFACES = (FIELDS, COMMENT, PROPERTY, LINK, NOTE, TEMPLATE, INSIGHTS)

Risk = Literal["low", "medium", "high"]


class PayloadError(LearnloopError):
    """A stored payload does not match its surface's payload type."""


class Payload(BaseModel):
    """What one write-back intent carries; stored in the outbox as `to_json()`.

    Only the fields that were set go into the JSON, so a payload restricted to the targets a
    connector declares stays restricted after a round trip.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    surface: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON stored on the intent (dates as ISO text, tuples as lists)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Parse a stored payload.

        Raises:
            PayloadError: naming the first field that is missing, unknown or of the wrong type.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise PayloadError(f"{cls.surface} payload: {where}: {first['msg']}") from None


class FieldsPayload(Payload):
    """The quiet per-item values (core/insights.py); a connector writes the ones it declares."""

    surface: ClassVar[str] = FIELDS
    unit: str | None = None
    delta: float | None = Field(None, description="actual minus plan of a finished item")
    forecast_p50: float | None = None
    forecast_p80: float | None = None
    forecast_p90: float | None = None
    forecast_finish_p80: dt.date | None = None
    effort_factor: float | None = Field(None, description="the P80 over the estimate (the "
                                        "policy's P80 multiplier when there is no forecast)")
    risk: Risk | None = Field(None, description="band of the P80 against the plan")
    insight: str | None = None
    win_probability: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="chance an open deal or opportunity is won (the won/lost model's)")
    recommended_variant: str | None = Field(
        default=None, description="the variant (arm) to send to the item's segment, from an "
        "accepted playbook or a randomised test's segment finding")

    def only(self, names: Iterable[str]) -> Self:
        """The same values, with only `names` set (so only they are written)."""
        return self.model_validate(self.model_dump(include=set(names) & set(FIELD_TYPES)))

    def json_of(self, names: Iterable[str]) -> dict[str, Any]:
        """`self.only(names).to_json()`, in one step (the learning run calls it per item)."""
        keep = set(names) & self.model_fields_set
        return self.model_dump(mode="json", include=keep)

    def learned(self) -> bool:
        """Whether anything besides the unit is known (else nothing is written)."""
        return any(getattr(self, k) is not None for k in FIELD_TYPES if k != "unit")


FIELD_TYPES = {"unit": "text", "delta": "number", "forecast_p50": "number",
               "forecast_p80": "number", "forecast_p90": "number",
               "forecast_finish_p80": "date", "effort_factor": "number", "risk": "text",
               "insight": "text", "win_probability": "number", "recommended_variant": "text"}
"""Every FieldsPayload value a FIELDS target may name, with its type."""


class PropertyPayload(FieldsPayload):
    """All the item's values as one structured JSON object, for scripts and queries."""

    surface: ClassVar[str] = PROPERTY
    item_id: int
    experiments: tuple[str, ...] | None = Field(
        default=None, description="the declared process experiments that treat the item, "
        "each with its latest verdict (`#3 2-week sprints: worked`)")


class CommentPayload(Payload):
    """One comment on the item, edited in place; only past a threshold."""

    surface: ClassVar[str] = COMMENT
    text: str = Field(min_length=1)
    topic: str | None = Field(default=None, max_length=100, description="what the comment is about "
                              "when it is not the item's own learning (one comment per topic)")


class LinkPayload(Payload):
    """A link from the item to its learnloop page."""

    surface: ClassVar[str] = LINK
    url: str = Field(pattern=r"^https?://")
    title: str = "learnloop"


class NotePayload(Payload):
    """A note (or a task for a person) on a record, written when its status or risk changes."""

    surface: ClassVar[str] = NOTE
    kind: Literal["note", "task"] = "note"
    reason: Literal["status", "risk"]
    status: str = Field(description="the item's status (or outcome, e.g. won) when written")
    risk: Risk | None = None
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)


class TemplateRow(Payload):
    """One rendered task (its estimate and the plan the policy asks for) or sequence segment."""

    surface: ClassVar[str] = TEMPLATE
    name: str
    estimate: int | float | str | None = None
    plan_p50: float | None = None
    plan_p80: float | None = None
    rule: str | None = None
    variant: str | None = None


class TemplatePayload(Payload):
    """A new template version, rendered from the accepted policy, with the reason."""

    surface: ClassVar[str] = TEMPLATE
    name: str = ""
    version: int = Field(ge=1)
    kind: str = "project"
    rendered: tuple[TemplateRow, ...] = ()
    why: str = ""

    def checklist(self, where: str) -> list[str]:
        """The exact steps for a person to make this change by hand in `where` (a tool's
        name and the place in it), for a tool whose API cannot write the template."""
        steps = [f"Open the {self.kind} template '{self.name}' in {where}."]
        for row in self.rendered:
            if row.variant is not None:
                steps.append(f"For {row.name}, make variant {row.variant} the one sent "
                             f"(rule {row.rule}).")
            elif row.plan_p80 is not None:
                p50 = f", P50 {row.plan_p50:g}" if row.plan_p50 is not None else ""
                steps.append(f"Set the estimate of '{row.name}' from {row.estimate} to "
                             f"{row.plan_p80:g} (P80{p50}; rule {row.rule}).")
        steps.append(f"Save it as version {self.version}, noting why: {self.why}")
        return steps


Cell = str | int | float | None


class InsightsPayload(Payload):
    """The current findings with their evidence, as a table that replaces the last one."""

    surface: ClassVar[str] = INSIGHTS
    as_of: dt.datetime
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()


PAYLOADS: dict[str, type[Payload]] = {
    FIELDS: FieldsPayload, COMMENT: CommentPayload, PROPERTY: PropertyPayload,
    LINK: LinkPayload, NOTE: NotePayload, TEMPLATE: TemplatePayload, INSIGHTS: InsightsPayload,
}
"""The payload type of each surface."""

TARGET_TYPES: dict[str, tuple[str, ...]] = {
    COMMENT: ("text",), PROPERTY: ("json",), LINK: ("url",), NOTE: ("note", "task"),
    TEMPLATE: ("project", "sequence"), INSIGHTS: ("table", "page"),
}
"""The target types each surface (besides FIELDS, typed per value) allows."""


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """One thing a connector can write: a field, the comment, the note, a template...

    For FIELDS, `name` is the FieldsPayload value written there (its type must match);
    for the other surfaces it names the tool-side object and `type` says which kind it is.

    Raises:
        ValueError: for an unknown surface, FIELDS value or type (when the class is built).
    """

    name: str
    type: str
    surface: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.surface not in PAYLOADS:
            raise ValueError(f"write target {self.name!r}: unknown surface {self.surface!r} "
                             f"(one of {', '.join(SURFACES)})")
        if self.surface == FIELDS:
            wanted: tuple[str, ...] = (FIELD_TYPES[self.name],) if self.name in FIELD_TYPES \
                else ()
            if not wanted:
                raise ValueError(f"write target {self.name!r}: fields can be "
                                 f"{', '.join(FIELD_TYPES)}")
        else:
            wanted = TARGET_TYPES[self.surface]
        if self.type not in wanted:
            raise ValueError(f"write target {self.name!r} ({self.surface}) has type "
                             f"{self.type!r}, not {' or '.join(wanted)}")


def surfaces_of(targets: Iterable[WriteTarget]) -> frozenset[str]:
    """The surfaces a set of targets covers (a connector's `capabilities`)."""
    return frozenset(t.surface for t in targets)


def standard_targets(surfaces: Iterable[str]) -> tuple[WriteTarget, ...]:
    """Every target of each surface: what a connector that predates `targets` is sent."""
    out: list[WriteTarget] = []
    for surface in sorted(set(surfaces) & set(PAYLOADS)):
        if surface == FIELDS:
            out += [WriteTarget(k, t, FIELDS) for k, t in FIELD_TYPES.items()]
        else:
            out.append(WriteTarget(surface, TARGET_TYPES[surface][0], surface))
    return tuple(out)


TargetSpec = Mapping[str, Iterable[WriteTarget | str]]
"""Write targets per connector kind; a bare surface name stands for its standard targets."""


def resolve_targets(spec: Iterable[WriteTarget | str]) -> tuple[WriteTarget, ...]:
    """Targets as declared, with each bare surface name expanded to its standard targets."""
    out: list[WriteTarget] = []
    for entry in spec:
        out += standard_targets([entry]) if isinstance(entry, str) else [entry]
    return tuple(out)


def declared_targets(factory: object) -> tuple[WriteTarget, ...]:
    """A connector class's `targets`; from its `capabilities` if it declares none."""
    found = getattr(factory, "targets", None)
    if found is not None:
        return tuple(found)
    return standard_targets(getattr(factory, "capabilities", ()))


def parse_payload(surface: str, data: Mapping[str, Any]) -> Payload:
    """The typed payload of an intent of `surface`.

    Raises:
        PayloadError: for an unknown surface or a payload that does not match its type.
    """
    cls = PAYLOADS.get(surface)
    if cls is None:
        raise PayloadError(f"unknown write-back surface {surface!r}")
    return cls.from_json(data)
