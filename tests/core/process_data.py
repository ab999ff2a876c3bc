"""Generated teams for process experiments: a common trend, team levels, team-by-week shocks,
item noise, and optionally a planted effect or a diverging pre-trend for team A."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from core.contract import ItemRecord
from core.process.did import Obs

START_WEEK = 30  # weeks of history before the change


@dataclass(frozen=True)
class Planted:
    """One generated item: team, assignee, finish and start (days from the change), slip."""

    team: str
    assignee: str
    when: float
    begun: float
    slip: float


def teams(seed: int, effect: float = 0.0, diverge: float = 0.0, n_teams: int = 6,
          pre_weeks: int = START_WEEK, post_weeks: int = 15, per_week: float = 6.0,
          assignees: int = 1) -> list[Planted]:
    """Items of `n_teams` teams A, B, ...; team A's slip drops by `effect` days from day 0
    and drifts by `diverge` days a week before and after it."""
    rng = np.random.default_rng(seed)
    names = [chr(65 + i) for i in range(n_teams)]
    level = {n: rng.normal(0, 2) for n in names}
    out = []
    for week in range(-pre_weeks, post_weeks):
        trend = 0.1 * week + float(np.sin(week / 5))
        for team in names:
            shock = rng.normal(0, 1.0)
            for _ in range(rng.poisson(per_week)):
                when = week * 7 + rng.uniform(0, 7)
                slip = trend + level[team] + shock + rng.normal(0, 4)
                if team == "A":
                    slip += diverge * week - (effect if week >= 0 else 0.0)
                who = f"{team}{rng.integers(assignees)}"
                out.append(Planted(team, who, when, when - rng.uniform(0, 3), slip))
    return out


def observations(items: list[Planted], treated: str = "A") -> list[Obs]:
    """The items as difference-in-differences observations, clustered by team."""
    return [Obs(i.team, i.team == treated, i.when, i.slip, i.begun) for i in items]


CHANGE = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def records(items: list[Planted], epic: str | None = None) -> list[ItemRecord]:
    """The items as finished tasks of a tool: due date, start and finish around CHANGE, so
    each one's slip against its committed due date is the planted slip."""
    out = []
    for k, i in enumerate(items):
        end = CHANGE + dt.timedelta(days=i.when)
        out.append(ItemRecord(
            external_id=f"P-{k}", title=f"task {k}", kind="Story",
            segments={"team": i.team, "assignee": i.assignee}, status="done",
            planned_start=CHANGE + dt.timedelta(days=i.begun),
            planned_due=end - dt.timedelta(days=i.slip), planned_estimate=3.0,
            estimated_at=CHANGE + dt.timedelta(days=i.begun),
            actual_start=CHANGE + dt.timedelta(days=i.begun), actual_end=end,
            actual_effort=3.0, raw={"epic": epic} if epic else {}))
    return out
