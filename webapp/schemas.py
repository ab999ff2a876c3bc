"""Request and response bodies of the JSON API (Create / Update / Public, like the templates)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from core.secrets import redact


def _redacted(value: str | None) -> str | None:
    return None if value is None else redact(value)


# Text that may quote a tool's error: redacted whenever it is sent (old rows included).
Shown = Annotated[str, PlainSerializer(_redacted)]
ShownOrNone = Annotated[str | None, PlainSerializer(_redacted)]


class Public(BaseModel):
    """Read from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class UserPublic(Public):
    id: int
    email: str
    name: str
    role: str
    active: bool
    last_login_at: dt.datetime | None = None


class UserCreate(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(min_length=10, max_length=1000)
    role: str = Field(pattern="^(admin|template_owner|viewer)$")
    name: str = Field(default="", max_length=200)


class UserUpdate(BaseModel):
    role: str | None = Field(default=None, pattern="^(admin|template_owner|viewer)$")
    active: bool | None = Field(default=None, description="false disables the person: their "
                                "sessions end and their API tokens are revoked at once")
    password: str | None = Field(default=None, min_length=10, max_length=1000,
                                 description="a new password chosen by the admin")


class UserUpdated(UserPublic):
    message: str


class PasswordReset(BaseModel):
    id: int
    email: str
    password: str = Field(description="The new password; shown only in this response.")


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TokenPublic(Public):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret; shown only in this response.")


class TargetPublic(BaseModel):
    name: str
    type: str
    surface: str
    description: str


class ConnectorKind(BaseModel):
    name: str
    capabilities: list[str]
    targets: list[TargetPublic] = Field(default_factory=list)
    config_schema: dict[str, Any]
    mapping_fields: list[dict[str, Any]]


class ConnectionCreate(BaseModel):
    kind: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    mapping: dict[str, Any] = Field(default_factory=dict)
    schedule: str | None = Field(default=None, max_length=100)


class ConnectionPublic(Public):
    """A connection as admins see it: settings without secrets."""

    id: int
    kind: str
    name: str
    config: dict[str, Any]
    mapping: dict[str, Any]
    schedule: str | None
    health: str
    last_error: ShownOrNone
    last_sync_at: dt.datetime | None


class MappingUpdate(BaseModel):
    mapping: dict[str, Any]


class ScheduleUpdate(BaseModel):
    schedule: str | None = Field(default=None, max_length=100)


class ActionResult(BaseModel):
    message: Shown


class FieldPublic(BaseModel):
    id: str
    name: str
    type: str


class ItemPublic(Public):
    id: int
    connection_id: int
    external_id: str
    url: str | None
    title: str
    status: str
    unit: str
    segments: dict[str, Any]
    planned_estimate: float | None
    planned_due: dt.datetime | None
    actual_effort: float | None
    actual_end: dt.datetime | None


class ItemRow(ItemPublic):
    forecast_p80: float | None = None


class ItemPage(BaseModel):
    items: list[ItemRow]
    page: int
    more: bool


class TimelineEntry(BaseModel):
    at: dt.datetime
    kind: str
    text: str


class ItemDetail(BaseModel):
    item: ItemPublic
    timeline: list[TimelineEntry]


class FindingPublic(Public):
    id: int
    kind: str
    measure: str
    segment: dict[str, Any]
    statement: str
    n: int
    effect: float
    interval_low: float = Field(description="Confidence interval of the effect, low end.")
    interval_high: float = Field(description="Confidence interval of the effect, high end.")
    interval_level: float = Field(description="Level of that confidence interval (0.9 = 90%).")
    spread_low: float | None = Field(
        default=None, description="The central 80% of the segment's own items, low end.")
    spread_high: float | None = None
    p_value: float
    q_value: float = Field(description="p adjusted by Benjamini-Hochberg over the run.")


class ProposalPublic(Public):
    id: int
    kind: str
    title: str
    rationale: str
    change: dict[str, Any]
    diff: str
    evidence: dict[str, Any]
    status: str
    created_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str | None
    policy_version: int | None


class Decision(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    params: dict[str, Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None, description="Edited numeric parameters (accept only); multipliers "
        "must be finite with 0 < p50 <= p80 <= p90 < 100.")


class AuditCreate(BaseModel):
    self_scores: dict[str, int]


class MeasuredPublic(BaseModel):
    score: int
    evidence: str
    n: int


class AuditPublic(BaseModel):
    measured: dict[str, MeasuredPublic]
    measured_total: int
    measured_maturity: str
    measured_quadrant: str
    self_scores: dict[str, int] | None = None
    self_total: int | None = None
    self_maturity: str | None = None
    self_quadrant: str | None = None
    saved_at: dt.datetime | None = None


class ActivityPublic(Public):
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str | None
    note: ShownOrNone


class Summary(BaseModel):
    counts: dict[str, int]
    calibration: dict[str, Any]
    gap: dict[str, Any]


class DeliveryResult(BaseModel):
    delivered: int
    retrying: int
    dead: int


class JobPublic(Public):
    """A job run: a queued "Sync now" with its progress, or a scheduled job."""

    id: int
    job: str
    connection_id: int | None
    status: str = Field(description="queued | running | ok | error | abandoned")
    stats: dict[str, Any] = Field(description="progress counts while it runs, results after")
    error: ShownOrNone
    started_at: dt.datetime = Field(description="when it was queued, then when it started")
    finished_at: dt.datetime | None
    message: Shown = Field(default="", description="what it is doing or did, in words")


class ChecklistPublic(BaseModel):
    id: int
    connection: str
    target: str
    surface: str
    status: str = Field(description="checklist (open) or checked")
    steps: list[str]
    checked_by: str | None
    checked_at: dt.datetime | None
    proposal_id: int | None
    proposal_status: str | None
