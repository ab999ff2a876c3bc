"""The experiments page, like a results page people know (GrowthBook's): per variant the rate,
the lift with its 95% and any-time-valid intervals, the chance to beat the control and the
expected loss, coloured; a banner when the split is off; results over time; segments."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.experiments.analyze import SRM_ALPHA, WIN_PROBABILITY, analyze_test, segment_findings

# The one definition of a reply (outcome or reply/meeting event), shared with the learning run.
from core.experiments.learn import _reply as replied
from core.experiments.learn import from_store
from core.model import Enrollment
from webapp import charts

OVER_TIME_POINTS = 12


def _tone(chance: float | None) -> str:
    """good / bad / neutral, the colour of a chance to beat the control."""
    if chance is None:
        return "neutral"
    if chance >= WIN_PROBABILITY:
        return "good"
    return "bad" if chance <= 1 - WIN_PROBABILITY else "neutral"


def _verdict(result: dict[str, Any], control: str, metric: str) -> tuple[str, str]:
    """The decision in words, and its colour; the control is never "the winner" of itself."""
    if result["decision"] == "unhealthy":
        return "Sample ratio mismatch: results not trustworthy", "bad"
    winner = result["winner"]
    if winner and winner != control:
        return f"{winner} beats the control on {metric}", "good"
    if winner == control:
        return f"Keep the control ({control}): every variant does worse on {metric}", "bad"
    return "No decision yet: keep the test running", "neutral"


def _dates(session: Session, test: str) -> dict[int, dt.date]:
    """When each enrollment of `test` was assigned (its item's planned date when not given)."""
    return {item_id: at.date() for item_id, at in session.execute(
        select(Enrollment.item_id, Enrollment.assigned_at).where(Enrollment.test == test))
        if at is not None}


def _over_time(stored: Any, when: dict[int, dt.date], metric: str) -> str:
    """Cumulative rate per variant, at up to 12 evenly spaced dates, as an SVG line chart."""
    dated = []
    for item in stored.items:
        day = when.get(item.id) or (item.planned_at or item.actual_end or item.updated_at).date()
        dated.append((day, stored.arm.get(item.id), replied(item, stored.events)))
    dated = [d for d in dated if d[1] is not None]
    title = f"Cumulative {metric} rate per variant, by assignment date"
    if not dated:
        return charts.lines([], title=title, y_label=f"{metric} rate", empty="No dated results")
    dated.sort(key=lambda d: d[0])
    first, last = dated[0][0], dated[-1][0]
    span = max((last - first).days, 1)
    cuts = sorted({first + dt.timedelta(days=round(span * k / (OVER_TIME_POINTS - 1)))
                   for k in range(OVER_TIME_POINTS)})
    arms = list(dict.fromkeys(d[1] for d in dated))
    seen: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    points: dict[str, list[charts.Point]] = {a: [] for a in arms}
    i = 0
    for cut in cuts:
        while i < len(dated) and dated[i][0] <= cut:
            _, arm, value = dated[i]
            seen[arm][0] += 1
            seen[arm][1] += value
            i += 1
        for arm in arms:
            n, hits = seen[arm]
            if n:
                points[arm].append(charts.Point(label=cut.strftime("%b %d"), value=hits / n,
                                                n=int(n)))
    return charts.lines([charts.Series(a, points[a]) for a in arms], title=title,
                        y_label=f"{metric} rate (per enrollment)", empty="No dated results")


def _segments(test: Any, stored: Any) -> list[dict[str, Any]]:
    rows = []
    for f in segment_findings(test, observational=not stored.randomized,
                              dispersion=stored.dispersion)[:15]:
        best, other = f["best_arm"], f["compared_to"]
        arms = test.segments[f["segment"]]
        rows.append({"segment": f["segment"].replace("=", ": ").replace(",", ", "),
                     "best": best, "other": other, "kind": f["kind"],
                     "rates": (arms[best][f["metric"]].mean, arms[other][f["metric"]].mean),
                     "n": f["n"], "lift": f["lift"], "ci": f["ci"], "q": f["q_value"]})
    return rows


def experiments(session: Session) -> list[dict[str, Any]]:
    """Every stored test, ready for the page."""
    out = []
    for stored in from_store(session):
        test = stored.experiment
        result = analyze_test(test, stored.dispersion)
        metric = result["primary_metric"]
        when = _dates(session, test.name)
        days = sorted(when.values()) or sorted(
            (i.planned_at or i.actual_end or i.updated_at).date() for i in stored.items)
        arms = []
        for arm, row in result["metrics"][metric].items():
            control = arm == test.control
            arms.append({**row, "arm": arm, "control": control,
                         "tone": "neutral" if control else _tone(row.get("chance_to_win")),
                         "share": result["allocation"].get(arm) if result.get("allocation")
                         else None})
        verdict, tone = _verdict(result, test.control, metric)
        treatments = [a for a in test.arms if a != test.control]
        srm = result["srm_p"]
        out.append({
            "name": test.name, "randomized": stored.randomized, "metric": metric,
            "control": test.control, "verdict": verdict, "tone": tone,
            "srm_p": srm, "srm_off": srm is not None and srm < SRM_ALPHA,
            "segment_srm": result.get("segment_srm", {}), "arms": arms,
            "units": sum(a["n"] for a in arms), "n": len(stored.items),
            "started": days[0] if days else None, "last": days[-1] if days else None,
            "days": (days[-1] - days[0]).days + 1 if days else 0,
            "hypothesis": (f"{' and '.join(treatments)} "
                           f"{'gets' if len(treatments) == 1 else 'get'} a different {metric} "
                           f"rate than the control, {test.control}"),
            "segments": _segments(test, stored),
            "over_time": _over_time(stored, when, metric),
        })
    return out
