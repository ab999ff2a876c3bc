"""Generated work with a planted lesson: integration tasks overrun in four of five projects."""

from __future__ import annotations

import datetime as dt
import math
import random

from core.contract import ItemRecord

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LESSON_AT = T0 + dt.timedelta(days=60)
PROJECTS = ("P1", "P2", "P3", "P4", "P5")


def work(n: int = 400, seed: int = 3, learned: tuple[str, ...] = ("P5",),
         factor: float = 1.5) -> list[ItemRecord]:
    """Tasks over 120 days in five projects; integration ones take `factor` x their estimate,
    except in the `learned` projects after LESSON_AT, which plan for it (estimates x factor)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        project = PROJECTS[i % len(PROJECTS)]
        component = "api,integration" if i % 3 == 0 else rng.choice(["api", "web"])
        when = T0 + dt.timedelta(days=120 * i / n)
        work_hours = float(rng.choice([2, 3, 5, 8]))
        integration = "integration" in component
        real = work_hours * (factor if integration else 1.0) * math.exp(rng.gauss(0, 0.1))
        estimate = work_hours
        if integration and project in learned and when >= LESSON_AT:
            estimate = work_hours * factor
        is_open = i >= n - 20
        out.append(ItemRecord(
            external_id=f"{project}-{i}", title=f"task {i}", kind="Task",
            segments={"project": project, "components": component},
            status="open" if is_open else "done", planned_estimate=estimate, estimated_at=when,
            planned_due=when + dt.timedelta(days=5),
            actual_effort=None if is_open else round(real, 2),
            actual_end=None if is_open else when + dt.timedelta(days=4)))
    return out
