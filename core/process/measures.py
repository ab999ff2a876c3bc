"""What a process experiment can move: one entry per measure, read from the core measures.

| measure | per item | from | scale |
| --- | --- | --- | --- |
| effort_ratio | actual effort / estimate | the task family's `effort_ratio` deviation | log (a % change) |
| slip | days late against the committed plan | `slip_days` (tasks), `close_slip_days` (deals) | days |
| duration | actual / planned duration | `duration_ratio` deviation | log (a % change) |
| replanning | plan changes after the plan was committed | `plan_changed` events | count |
| cycle_time | actual start to actual end | the item's actual dates | days |
| throughput | items finished per group and week | the item's finish date | items a week |
| reply_rate | an enrollment got a reply | the enrollment family's `reply` deviation | share |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import ConfigError

DECREASE, INCREASE = "decrease", "increase"
DIRECTIONS = (DECREASE, INCREASE)


@dataclass(frozen=True)
class ProcessMeasure:
    """A measure a declared change is judged on.

    Attributes:
        name: as declared (`slip`).
        label: in words (`slip against the committed plan`).
        deviations: the core deviation names it reads, per kind family; empty when computed
            from the items or their events.
        log: judged on the log scale and shown as a % change.
        unit: of the effect as shown (`days`, `plan changes`, `items a week`, `points`).
        per: what one unit of the effect is counted per (`per item`, `` for rates).
        count: throughput: items counted per cell rather than their values averaged.
        better: the direction that is usually an improvement (the default expectation).
    """

    name: str
    label: str
    deviations: dict[str, str]
    log: bool
    unit: str
    per: str
    count: bool
    better: str


CATALOGUE: dict[str, ProcessMeasure] = {m.name: m for m in (
    ProcessMeasure("effort_ratio", "effort ratio (actual effort / estimate)",
                   {"task": "effort_ratio"}, True, "%", "", False, DECREASE),
    ProcessMeasure("slip", "slip against the committed plan",
                   {"task": "slip_days", "deal": "close_slip_days"}, False, "days", " per item",
                   False, DECREASE),
    ProcessMeasure("duration", "duration against the plan (actual / planned)",
                   {"task": "duration_ratio"}, True, "%", "", False, DECREASE),
    ProcessMeasure("replanning", "re-planning (plan changes after commitment)", {}, False,
                   "plan changes", " per item", False, DECREASE),
    ProcessMeasure("cycle_time", "cycle time (start to finish)", {}, False, "days", " per item",
                   False, DECREASE),
    ProcessMeasure("throughput", "throughput (items finished a week)", {}, False,
                   "items a week", "", True, INCREASE),
    ProcessMeasure("reply_rate", "reply rate", {"enrollment": "reply"}, False, "points", "",
                   False, INCREASE),
)}
NAMES = tuple(CATALOGUE)


def get(name: str) -> ProcessMeasure:
    """The measure `name` (case-insensitive, `-` or space as `_`).

    Raises:
        ConfigError: naming the measures there are.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    found = CATALOGUE.get(key)
    if found is None:
        raise ConfigError(f"unknown measure {name!r}: choose from {', '.join(NAMES)}")
    return found


def shown(measure: ProcessMeasure, value: float) -> float:
    """An effect on the model scale as people read it: a % change for log measures, points
    (x100) for rates, else as is."""
    if measure.log:
        return 100.0 * (math.exp(value) - 1.0)
    if measure.name == "reply_rate":
        return 100.0 * value
    return value
