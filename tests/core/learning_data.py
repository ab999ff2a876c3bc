"""Synthetic planned-vs-actual data with planted effects, loaded through the real sync path."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import Engine

from core.contract import (
    FIELDS,
    Batch,
    Delivery,
    EnrollmentRecord,
    EventRecord,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    ItemRecord,
    LinkRecord,
    MappingField,
)
from core.model import Connection
from core.store import unit_of_work
from core.sync import run_sync

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class ListConfig(BaseModel):
    """No settings: the records are handed over in code."""


class ListConnector:
    """A connector over an in-memory list of records, for learning tests."""

    name: ClassVar[str] = "list"
    title: ClassVar[str] = "In-memory list"
    config_model: ClassVar[type[BaseModel]] = ListConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({FIELDS})
    mapping_fields: ClassVar[tuple[MappingField, ...]] = ()

    def __init__(self, records: Sequence[ItemRecord],
                 events: Sequence[EventRecord] = (),
                 enrollments: Sequence[EnrollmentRecord] = (),
                 links: Sequence[LinkRecord] = ()) -> None:
        self.records = list(records)
        self.events = list(events)
        self.enrollments = list(enrollments)
        self.links = list(links)
        self.delivered: list[Intent] = []

    def check(self) -> Health:
        return Health(True, "in memory")

    def install(self) -> InstallReport:
        return InstallReport()

    def uninstall(self) -> InstallReport:
        return InstallReport()

    def discover_fields(self) -> list[FieldInfo]:
        return []

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        yield Batch(items=list(self.records), events=list(self.events),
                    enrollments=list(self.enrollments), links=list(self.links),
                    snapshot=True)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        self.delivered.extend(intents)
        return [Delivery(i.id, ok=True, tool_ref=f"ref-{i.target}") for i in intents]


def records(n: int = 600, seed: int = 1, bug_factor: float = 2.0, open_share: float = 0.1,
            noise: float = 0.4, bug_slip: float = 3.0) -> list[ItemRecord]:
    """Tasks with estimate/actual; type=Bug runs `bug_factor` times over, `bug_slip` days late."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(["Bug", "Story", "Task"])
        team = rng.choice(["A", "B", "C", "D"])
        est = float(rng.choice([1, 2, 3, 5, 8, 13]))
        factor = bug_factor if kind == "Bug" else 1.0
        actual = round(est * factor * math.exp(rng.gauss(0.1, noise)), 2)
        when = T0 + dt.timedelta(days=i)
        is_open = i >= n * (1 - open_share)
        due = when + dt.timedelta(days=5)
        end = due + dt.timedelta(days=round(rng.gauss(bug_slip if kind == "Bug" else 0, 2)))
        out.append(ItemRecord(
            external_id=f"T-{i}", title=f"task {i}", segments={"type": kind, "team": team},
            status="open" if is_open else "done", planned_estimate=est, estimated_at=when,
            planned_due=due, actual_effort=None if is_open else actual,
            actual_end=None if is_open else end,
        ))
    return out


def load(engine: Engine, recs: Sequence[ItemRecord], name: str = "list",
         events: Sequence[EventRecord] = (),
         enrollments: Sequence[EnrollmentRecord] = (),
         links: Sequence[LinkRecord] = ()) -> ListConnector:
    """Store `recs` (and `events`, `enrollments`, `links`) as the items of a connection called
    `name`."""
    with unit_of_work(engine) as s:
        if s.query(Connection).filter_by(name=name).one_or_none() is None:
            s.add(Connection(kind="list", name=name))
    connector = ListConnector(recs, events, enrollments, links)
    run_sync(engine, name, connector)
    return connector
