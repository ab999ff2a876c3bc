"""Generated sample data for `learnloop demo`: a plausible planned-vs-actual task table.

Nothing here is real: the figures are drawn from distributions chosen to look like a software
organisation's task tracker (rounded estimates, a third logged exactly as estimated, fat tails,
a few segments that run over), so the demo has something to learn.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from dataclasses import dataclass
from pathlib import Path

TEAMS = {"PAY": 1.0, "WEB": 0.95, "DATA": 1.25}
TYPES = {"Bug": 1.15, "Story": 1.05, "Task": 0.95, "Spike": 1.4}
SPECIAL = {("PAY", "Bug"): 1.6}  # the planted finding: bugs in PAY run well over
SPRINTS_TEAM, SPRINTS_DAYS_AGO, SPRINTS_FACTOR = "WEB", 300, 0.75
"""The planted process change: team WEB moved to 2-week sprints 300 days before the end, and
its tasks have overrun their estimates by a quarter less since."""
COMPONENTS = ["api", "ui", "billing", "reports", "auth"]
PEOPLE = ["ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana"]
ESTIMATES = [0.5, 1, 1, 2, 2, 3, 4, 4, 6, 8, 8, 12, 16, 24]
DAYS = 540
COLUMNS = ["Key", "Summary", "Team", "Type", "Component", "Assignee", "Estimated on",
           "Due", "Estimate (h)", "Started", "Done", "Time spent (h)", "Status"]


@dataclass
class Task:
    """One generated task with its whole (future) history."""

    key: str
    summary: str
    team: str
    type: str
    component: str
    assignee: str
    estimated_on: dt.date
    due: dt.date
    estimate: float
    started: dt.date
    done: dt.date
    spent: float


def generate(n: int, end: dt.date, seed: int = 7) -> list[Task]:
    """`n` tasks estimated over the 18 months before `end`, in the order they were estimated."""
    rng = random.Random(seed)
    start = end - dt.timedelta(days=DAYS)
    tasks = []
    for i in range(n):
        team = rng.choice(list(TEAMS))
        kind = rng.choices(list(TYPES), weights=[4, 4, 3, 1])[0]
        estimate = float(rng.choice(ESTIMATES))
        factor = TEAMS[team] * TYPES[kind] * SPECIAL.get((team, kind), 1.0)
        estimated = start + dt.timedelta(days=int(i * DAYS / n) + rng.randint(0, 3))
        if team == SPRINTS_TEAM and estimated >= end - dt.timedelta(days=SPRINTS_DAYS_AGO):
            factor *= SPRINTS_FACTOR
        if rng.random() < 0.3:
            spent = estimate  # logged exactly as estimated, out of habit
        else:
            spent = estimate * factor * math.exp(rng.gauss(0, 0.45))
            spent = max(0.25, round(spent * 4) / 4)
        due = estimated + dt.timedelta(days=max(1, math.ceil(estimate / 4)) + rng.randint(2, 6))
        started = estimated + dt.timedelta(days=rng.randint(0, 4))
        done = started + dt.timedelta(days=max(0, math.ceil(spent / 3 * factor)) + rng.randint(0, 12))
        tasks.append(Task(
            key=f"{team}-{100 + i}", summary=f"{kind} in {rng.choice(COMPONENTS)} #{i}",
            team=team, type=kind, component=rng.choice(COMPONENTS), assignee=rng.choice(PEOPLE),
            estimated_on=estimated, due=due, estimate=estimate, started=started, done=done,
            spent=spent,
        ))
    return tasks


def write_snapshot(tasks: list[Task], today: dt.date, path: Path) -> tuple[int, int]:
    """Write the table as it looked on `today`, plus two deliberately broken rows.

    Returns:
        (done, open) counts of the tasks written.
    """
    done = opened = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for t in tasks:
            if t.estimated_on > today:
                continue
            finished = t.done <= today
            done, opened = done + finished, opened + (not finished)
            w.writerow([
                t.key, t.summary, t.team, t.type, t.component, t.assignee,
                t.estimated_on.strftime("%d/%m/%Y"), t.due.isoformat(), f"{t.estimate:g}",
                t.started.isoformat() if t.started <= today else "",
                t.done.isoformat() if finished else "",
                f"{t.spent:g}" if finished else "",
                "Done" if finished else ("In Progress" if t.started <= today else "To Do"),
            ])
        w.writerow(["WEB-9998", "Broken due date", "WEB", "Task", "ui", "ana", "02/02/2025",
                    "next week", "4", "", "", "", "To Do"])
        w.writerow(["PAY-9999", "Zero estimate", "PAY", "Bug", "api", "ben", "03/02/2025",
                    "2025-02-10", "0", "", "", "", "To Do"])
    return done, opened


TEMPLATE_TASKS = [
    {"name": "Triage payment bug", "segments": {"team": "PAY", "type": "Bug"}, "estimate": 4},
    {"name": "Fix and test", "segments": {"team": "PAY", "type": "Bug"}, "estimate": 8},
    {"name": "Release note", "segments": {"team": "PAY", "type": "Task"}, "estimate": 1},
]


OUTREACH_COLUMNS = ["Enrollment", "Sequence", "Variant", "Industry", "Seniority", "Account",
                    "Assignment", "Sent", "Status", "Outcome"]
ANGLES = ("sustainability", "efficiency")


def write_outreach(path: Path, end: dt.date, n: int = 3000, seed: int = 11) -> None:
    """Randomised outreach: two opening angles; financial-services contacts answer the
    efficiency angle far more often (the planted segment policy), everyone else alike."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(OUTREACH_COLUMNS)
        for i in range(n):
            industry = rng.choice(["financial services", "retail", "manufacturing"])
            angle = rng.choice(ANGLES)
            rate = 0.2 if (industry == "financial services" and angle == "efficiency") else 0.08
            sent = end - dt.timedelta(days=120 - int(i * 100 / n))
            w.writerow([f"ENR-{i}", "Outbound Q1", angle, industry,
                        rng.choice(["VP", "Director", "Manager"]), f"acct-{rng.randint(1, 150)}",
                        "random", sent.isoformat(), "Done",
                        "replied" if rng.random() < rate else "no reply"])
