"""The SiP backtest: 8,175 unique finished tasks, time-ordered 70/30 split."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from core.learning.backtest import Row, backtest

SEGMENTS = ("ProjectCode", "ProjectBreakdownCode", "Category", "SubCategory", "DeveloperID",
            "Priority")
FINISHED = ("FINISHED", "COMPLETED", "RELEASED")


def _date(text: str) -> dt.datetime | None:
    if not text.strip():
        return None
    return dt.datetime.strptime(text.strip(), "%d-%b-%y").replace(tzinfo=dt.UTC)


def sip_rows(folder: Path) -> list[Row]:
    """Unique finished tasks with estimate and actual > 0, timed by EstimateOn, their actual
    known on CompletedOn (where the file has one)."""
    tasks: dict[str, dict[str, str]] = {}
    with (folder / "Sip-task-info.csv").open(encoding="cp1252", newline="") as fh:
        for r in csv.DictReader(fh):
            tasks.setdefault(r["TaskNumber"], r)
    with (folder / "est-act-dates.csv").open(newline="") as fh:
        dates = {r["TaskNumber"]: (r["EstimateOn"], r["CompletedOn"])
                 for r in csv.DictReader(fh)}
    rows = []
    for key, r in tasks.items():
        est, act = float(r["HoursEstimate"]), float(r["HoursActual"])
        if r["StatusCode"] in FINISHED and est > 0 and act > 0:
            planned_on, completed_on = dates[key]
            when = _date(planned_on)
            assert when is not None
            rows.append(Row(when, est, act, {s: r[s] for s in SEGMENTS}, _date(completed_on)))
    return rows


def sip_backtest(folder: Path) -> dict[str, Any]:
    """The backtest result on SiP."""
    rows = sip_rows(folder)
    return {"dataset": "SiP", "n": len(rows), **backtest(rows)}
