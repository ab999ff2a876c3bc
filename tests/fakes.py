"""FakeConnector: an in-memory tool with knobs (failure rate, latency, broken pulls) for tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from core.contract import (
    COMMENT,
    FIELD_TYPES,
    FIELDS,
    NOTE,
    TEMPLATE,
    Batch,
    CommentPayload,
    Delivery,
    EventRecord,
    FieldInfo,
    FieldsPayload,
    Health,
    InstallReport,
    Intent,
    ItemRecord,
    MappingField,
    NotePayload,
    TemplatePayload,
    WriteTarget,
    split_valid,
    surfaces_of,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PROVISIONED = ("learnloop_forecast_p80", "learnloop_insight")


class FakeConfig(BaseModel):
    """Knobs of the fake tool."""

    items: int = Field(default=10, ge=0, description="How many items the tool holds.")
    seed: int = Field(default=1, description="Seed of the items and of the failed deliveries.")
    batch_size: int = Field(default=4, ge=1, description="Items per pulled batch.")
    failure_rate: float = Field(
        default=0.0, ge=0, le=1,
        description="Probability that delivering one intent fails with a retryable error.")
    retry_after: float | None = Field(
        default=None, ge=0, description="Retry-After (seconds) carried by failed deliveries.")
    latency: float = Field(default=0.0, ge=0, description="Seconds each call to the tool takes.")
    fail_pull_after: int | None = Field(
        default=None, ge=0, description="Raise RuntimeError after yielding this many batches.")
    api_token: SecretStr | None = Field(default=None, description="A secret, to test secrets.")
    template_checklist: bool = Field(
        default=False, description="Answer TEMPLATE intents with a checklist for a person, as "
                                   "a tool whose API cannot write templates does.")


def make_items(n: int, seed: int) -> dict[str, ItemRecord]:
    """`n` deterministic items F-1..F-n: every fifth one open, the others done with actuals."""
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        est = float(rng.choice([1, 2, 3, 5, 8]))
        done = i % 5 != 4
        ext = f"F-{i + 1}"
        out[ext] = ItemRecord(
            external_id=ext, title=f"fake {i + 1}", url=f"https://fake.example/{ext}",
            segments={"type": rng.choice(["Bug", "Story"]), "team": rng.choice("AB")},
            status="done" if done else "open", planned_estimate=est,
            estimated_at=T0 + dt.timedelta(days=i), planned_due=T0 + dt.timedelta(days=i + 5),
            actual_effort=round(est * rng.uniform(0.5, 2.5), 2) if done else None,
            actual_end=T0 + dt.timedelta(days=i + rng.randint(2, 9), hours=6) if done else None,
        )
    return out


def events_of(rec: ItemRecord) -> list[EventRecord]:
    """The events of an item: its creation, and every third item had its estimate raised."""
    at = rec.estimated_at or T0
    events = [EventRecord(rec.external_id, f"{rec.external_id}:created", at, "created",
                          actor="alice")]
    if int(rec.external_id.rsplit("-", 1)[-1]) % 3 == 0 and rec.planned_estimate:
        events.append(EventRecord(
            rec.external_id, f"{rec.external_id}:estimate:1", at + dt.timedelta(hours=2),
            "estimate_changed", actor="bob",
            attributes={"from": rec.planned_estimate / 2, "to": rec.planned_estimate}))
    return events


@dataclass
class FakeTool:
    """What the fake tool holds; tests inspect and change it.

    `items` is filled from the first connector's config when empty. `fields` holds the
    written values per target, `comments` target -> comment id -> text, `notes` target ->
    note id -> the note, `templates` name -> version -> rendered rows and the why, and `writes` every
    successful write as (target, surface, tool-side id), to count duplicates.
    """

    items: dict[str, ItemRecord] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[str, dict[str, NotePayload]] = field(default_factory=dict)
    templates: dict[str, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)
    writes: list[tuple[str, str, str]] = field(default_factory=list)
    provisioned: set[str] = field(default_factory=set)
    calls: int = 0
    next_comment: int = 1
    next_note: int = 1

    def change(self, external_id: str, **values: Any) -> None:
        """Edit an item in the tool, as a person would."""
        self.items[external_id] = dataclasses.replace(self.items[external_id], **values)


class FakeConnector:
    """A connector over a FakeTool, satisfying core.contract.Connector."""

    name: ClassVar[str] = "fake"
    title: ClassVar[str] = "Fake tool"
    config_model: ClassVar[type[BaseModel]] = FakeConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        *(WriteTarget(k, kind, FIELDS, f"the item's {k}") for k, kind in FIELD_TYPES.items()),
        WriteTarget("comment", "text", COMMENT, "one comment, edited in place"),
        WriteTarget("note", "note", NOTE, "a note when the status or risk changes"),
        WriteTarget("task", "task", NOTE, "a task for the owner when the risk is high"),
        WriteTarget("template", "project", TEMPLATE, "a project template, versioned"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = (
        MappingField("id", "Item key", required=True),
        MappingField("title", "Summary"),
        MappingField("planned_estimate", "Original estimate"),
        MappingField("actual_effort", "Time spent"),
        MappingField("status", "Status"),
    )
    shared_tool: ClassVar[FakeTool | None] = None

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None,
                 tool: FakeTool | None = None) -> None:
        assert isinstance(config, FakeConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        if tool is None:
            tool = type(self).shared_tool or FakeTool()
        self.tool = tool
        if not tool.items:
            tool.items.update(make_items(config.items, config.seed))
        self.rng = random.Random(config.seed)

    def _call(self) -> None:
        self.tool.calls += 1
        if self.config.latency:
            time.sleep(self.config.latency)

    def check(self) -> Health:
        self._call()
        return Health(True, f"fake tool reachable, {len(self.tool.items)} items")

    def install(self) -> InstallReport:
        self._call()
        report = InstallReport()
        for name in PROVISIONED:
            (report.existing if name in self.tool.provisioned else report.created).append(name)
            self.tool.provisioned.add(name)
        return report

    def uninstall(self) -> InstallReport:
        self._call()
        removed = sorted(self.tool.provisioned)
        self.tool.provisioned.clear()
        return InstallReport(removed=removed)

    def discover_fields(self) -> list[FieldInfo]:
        self._call()
        return [FieldInfo("key", "Key"), FieldInfo("summary", "Summary"),
                FieldInfo("estimate", "Original estimate", "number"),
                FieldInfo("spent", "Time spent", "number"), FieldInfo("status", "Status")]

    def records(self) -> list[ItemRecord]:
        """The items the tool holds, in a stable order."""
        return list(self.tool.items.values())

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        offset = int((cursor or {}).get("offset", 0))
        recs = self.records()
        starts = range(offset, len(recs), self.config.batch_size)
        for done, start in enumerate(starts):
            if self.config.fail_pull_after is not None and done >= self.config.fail_pull_after:
                raise RuntimeError("fake tool went away mid-sync")
            self._call()
            chunk = recs[start:start + self.config.batch_size]
            events = [e for r in chunk for e in events_of(r)]
            yield Batch(items=chunk, events=events, cursor={"offset": start + len(chunk)})

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        self._call()
        valid, failed = split_valid(intents)
        return failed + [self._deliver_one(intent) for intent in valid]

    def _deliver_one(self, intent: Intent) -> Delivery:
        if self.rng.random() < self.config.failure_rate:
            return Delivery(intent.id, ok=False, error="fake 503: try again",
                            retry_after=self.config.retry_after)
        if intent.surface not in self.capabilities:
            return Delivery(intent.id, ok=False, permanent=True,
                            error=f"unsupported surface {intent.surface}")
        if intent.surface == TEMPLATE:
            return self._template(intent)
        if intent.target not in self.tool.items:
            return Delivery(intent.id, ok=False, permanent=True,
                            error=f"fake 404: no item {intent.target}")
        if intent.surface == FIELDS:
            self.tool.fields[intent.target] = FieldsPayload.from_json(intent.payload).to_json()
            ref = intent.target
        elif intent.surface == COMMENT:
            comments = self.tool.comments.setdefault(intent.target, {})
            ref = self._ref(intent.tool_ref, comments, "c")
            comments[ref] = CommentPayload.from_json(intent.payload).text
        else:
            notes = self.tool.notes.setdefault(intent.target, {})
            ref = self._ref(intent.tool_ref, notes, "n")
            notes[ref] = NotePayload.from_json(intent.payload)
        self.tool.writes.append((intent.target, intent.surface, ref))
        return Delivery(intent.id, ok=True, tool_ref=ref)

    def _ref(self, known: str | None, objects: Mapping[str, Any], prefix: str) -> str:
        """The tool-side id to write to: the stored one, or a new one if it is gone."""
        if known is not None and known in objects:
            return known
        if objects:  # redelivered without its tool_ref: the fake holds only learnloop's own
            return next(iter(objects))
        counter = "next_comment" if prefix == "c" else "next_note"
        number = getattr(self.tool, counter)
        setattr(self.tool, counter, number + 1)
        return f"{prefix}{number}"

    def _template(self, intent: Intent) -> Delivery:
        payload = TemplatePayload.from_json(intent.payload)
        if self.config.template_checklist:  # as HubSpot sequences with a private-app token
            return Delivery(intent.id, ok=True,
                            checklist=payload.checklist(f"the fake tool's '{intent.target}'"))
        versions = self.tool.templates.setdefault(intent.target, {})
        versions[payload.version] = [*(r.to_json() for r in payload.rendered),
                                     {"why": payload.why}]
        ref = f"{intent.target}:v{payload.version}"
        self.tool.writes.append((intent.target, intent.surface, ref))
        return Delivery(intent.id, ok=True, tool_ref=ref)


def fake_factory(tool: FakeTool, targets: Sequence[WriteTarget] | None = None,
                 ) -> type[FakeConnector]:
    """A FakeConnector class bound to one shared tool, for code that builds connectors itself;
    `targets` replaces what it declares (a tool without comments, say)."""
    attrs: dict[str, Any] = {"shared_tool": tool}
    if targets is not None:
        attrs.update(targets=tuple(targets), capabilities=surfaces_of(targets))
    return type("BoundFakeConnector", (FakeConnector,), attrs)
