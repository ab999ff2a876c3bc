"""FakeConnector: an in-memory tool with knobs (failure rate, latency, broken pulls) for tests."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from core.contract import (
    COMMENT,
    FIELDS,
    Batch,
    Delivery,
    EventRecord,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    ItemRecord,
    MappingField,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class FakeConfig(BaseModel):
    """Knobs of the fake tool."""

    items: int = Field(default=10, ge=0, description="How many items the tool holds.")
    seed: int = Field(default=1, description="Random seed.")
    batch_size: int = Field(default=4, ge=1, description="Items per pulled batch.")
    failure_rate: float = Field(default=0.0, ge=0, le=1, description="Share of failed writes.")
    retry_after: float | None = Field(default=None, description="Retry-After of failed writes.")
    latency: float = Field(default=0.0, ge=0, description="Seconds per call.")
    fail_pull_after: int | None = Field(default=None, description="Raise after N batches.")
    api_token: SecretStr | None = Field(default=None, description="A secret, to test secrets.")


@dataclass
class FakeTool:
    """What the fake tool holds: written fields and comments per item, provisioned fields."""

    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)  # target -> id -> text
    provisioned: set[str] = field(default_factory=set)
    calls: int = 0
    next_comment: int = 1


class FakeConnector:
    """A connector over FakeTool, satisfying core.contract.Connector."""

    name: ClassVar[str] = "fake"
    title: ClassVar[str] = "Fake tool"
    config_model: ClassVar[type[BaseModel]] = FakeConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({FIELDS, COMMENT})
    mapping_fields: ClassVar[tuple[MappingField, ...]] = (
        MappingField("id", "Item key", required=True),
        MappingField("planned_estimate", "Estimate"),
    )
    shared_tool: ClassVar[FakeTool | None] = None

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None,
                 tool: FakeTool | None = None) -> None:
        assert isinstance(config, FakeConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        self.tool = tool or type(self).shared_tool or FakeTool()
        self.rng = random.Random(config.seed)

    def _call(self) -> None:
        self.tool.calls += 1
        if self.config.latency:
            time.sleep(self.config.latency)

    def check(self) -> Health:
        self._call()
        return Health(True, "fake tool reachable")

    def install(self) -> InstallReport:
        self._call()
        report = InstallReport()
        for name in ("forecast_p80", "insight"):
            (report.existing if name in self.tool.provisioned else report.created).append(name)
            self.tool.provisioned.add(name)
        return report

    def uninstall(self) -> InstallReport:
        removed = sorted(self.tool.provisioned)
        self.tool.provisioned.clear()
        return InstallReport(removed=removed)

    def discover_fields(self) -> list[FieldInfo]:
        return [FieldInfo("key", "Key"), FieldInfo("estimate", "Estimate", "number")]

    def records(self) -> list[ItemRecord]:
        """The items the tool holds (deterministic for a seed)."""
        rng = random.Random(self.config.seed)
        out = []
        for i in range(self.config.items):
            est = float(rng.choice([1, 2, 3, 5, 8]))
            done = i % 5 != 4
            out.append(ItemRecord(
                external_id=f"F-{i + 1}", title=f"fake {i + 1}",
                segments={"type": rng.choice(["Bug", "Story"]), "team": rng.choice("AB")},
                status="done" if done else "open", planned_estimate=est,
                estimated_at=T0 + dt.timedelta(days=i), planned_due=T0 + dt.timedelta(days=i + 5),
                actual_effort=round(est * rng.uniform(0.5, 2.5), 2) if done else None,
                actual_end=T0 + dt.timedelta(days=i + rng.randint(2, 9)) if done else None,
            ))
        return out

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        offset = int((cursor or {}).get("offset", 0))
        recs = self.records()
        starts = range(offset, len(recs), self.config.batch_size)
        for done, start in enumerate(starts):
            if self.config.fail_pull_after is not None and done >= self.config.fail_pull_after:
                raise RuntimeError("fake tool went away mid-sync")
            self._call()
            chunk = recs[start:start + self.config.batch_size]
            events = [EventRecord(r.external_id, f"{r.external_id}:created", T0, "created")
                      for r in chunk]
            yield Batch(items=chunk, events=events, cursor={"offset": start + len(chunk)})

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        self._call()
        results = []
        for intent in intents:
            if self.rng.random() < self.config.failure_rate:
                results.append(Delivery(intent.id, ok=False, error="fake 503",
                                        retry_after=self.config.retry_after))
                continue
            if intent.surface == FIELDS:
                self.tool.fields[intent.target] = dict(intent.payload)
                results.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
            elif intent.surface == COMMENT:
                comments = self.tool.comments.setdefault(intent.target, {})
                ref = intent.tool_ref if intent.tool_ref in comments else None
                if ref is None:
                    ref = f"c{self.tool.next_comment}"
                    self.tool.next_comment += 1
                comments[ref] = str(intent.payload.get("text", ""))
                results.append(Delivery(intent.id, ok=True, tool_ref=ref))
            else:
                results.append(Delivery(intent.id, ok=False, permanent=True,
                                        error=f"unsupported surface {intent.surface}"))
        return results


def fake_factory(tool: FakeTool) -> type[FakeConnector]:
    """A FakeConnector class bound to one shared tool (as core builds connectors by class)."""
    return type("BoundFakeConnector", (FakeConnector,), {"shared_tool": tool})
