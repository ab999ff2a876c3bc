"""Re-planning as signal: per segment, how often, how far and how late committed plans moved.

A move is a `plan_changed` event after the item's plan was committed (core.plans). For due
dates the finished items also tell how much of their slip against the committed plan the
re-planning hid: a due date pushed to the day of delivery turns a late item into one on time.
Stored as Finding rows of kind "replanning" in the learning run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import plans
from core.learning.stats import benjamini_hochberg
from core.model import Event, Finding, Item

FIELDS = {"planned_due": "due dates", "planned_estimate": "estimates"}
MIN_N = 5
LEVEL = 0.8
LATE_SHARE = 0.1  # a move in the last tenth of the planned duration is a late one
WINDOW = 100_000
MAX_FINDINGS = 50
MAX_IDS = 5000
BOOTSTRAP = 1000
CHUNK = 500
DAY = 86400.0


@dataclass
class Moves:
    """One committed item's moves of one planned field after commitment."""

    item_id: int
    segments: dict[str, Any]
    count: int
    steps: list[float]  # days later (due dates) or new/old ratio (estimates), per move
    late: int  # moves in the last tenth of the planned duration
    slip: float | None = None  # finished: days late against the committed due date
    hidden: float | None = None  # finished: days of that slip the re-planning absorbed


@dataclass
class Segment:
    """The moves of one segment's items, summarised with their evidence."""

    name: str  # the planned field
    segment: dict[str, str]
    moves: list[Moves]
    rest_n: int
    rest_moves: int
    p: float = 1.0
    q: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)


def _load(session: Session, window: int) -> tuple[list[Any], dict[int, list[Any]]]:
    rows = session.execute(
        select(Item.id, Item.segments, Item.status, Item.committed_at, Item.committed_plan,
               Item.planned_due, Item.actual_end)
        .where(Item.deleted.is_(False), Item.committed_at.is_not(None))
        .order_by(Item.id.desc()).limit(window)).all()
    rows = list(rows)
    ids = [r.id for r in rows]
    events: dict[int, list[Any]] = {}
    for start in range(0, len(ids), CHUNK):
        for ev in session.execute(
                select(Event.item_id, Event.occurred_at, Event.attributes)
                .where(Event.item_id.in_(ids[start:start + CHUNK]),
                       Event.kind == plans.PLAN_CHANGED)):
            events.setdefault(ev.item_id, []).append(ev)
    return rows, events


def _late_after(row: Any) -> dt.datetime | None:
    """When the last tenth of the committed plan's duration begins."""
    due = plans.decode("planned_due", (row.committed_plan or {}).get("planned_due"))
    begin = plans.decode("planned_start", (row.committed_plan or {}).get("planned_start"))
    begin = begin or row.committed_at
    if due is None or begin is None or due <= begin:
        return None
    late: dt.datetime = begin + (due - begin) * (1 - LATE_SHARE)
    return late


def _moves(row: Any, evs: Sequence[Any], name: str) -> Moves:
    mine = sorted((e for e in evs if (e.attributes or {}).get("field") == name
                   and e.occurred_at > row.committed_at), key=lambda e: e.occurred_at)
    late_after = _late_after(row)
    steps: list[float] = []
    late = 0
    for e in mine:
        old = plans.decode(name, e.attributes.get("from"))
        new = plans.decode(name, e.attributes.get("to"))
        if old is not None and new is not None:
            if name == "planned_due":
                steps.append((new - old).total_seconds() / DAY)
            elif old > 0:
                steps.append(new / old)
        if late_after is not None and e.occurred_at >= late_after:
            late += 1
    out = Moves(row.id, dict(row.segments or {}), len(mine), steps, late)
    committed_due = plans.decode("planned_due", (row.committed_plan or {}).get("planned_due"))
    if name == "planned_due" and row.status == "done" and row.actual_end is not None \
            and committed_due is not None and row.planned_due is not None:
        out.slip = (row.actual_end - committed_due).total_seconds() / DAY
        out.hidden = (row.planned_due - committed_due).total_seconds() / DAY
    return out


def rate_interval(moves: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson rate per item: `moves` seen over `n` items."""
    tail = (1 - level) / 2
    low = stats.chi2.ppf(tail, 2 * moves) / 2 if moves > 0 else 0.0
    high = stats.chi2.ppf(1 - tail, 2 * moves + 2) / 2
    return float(low) / n, float(high) / n


def hidden_share(late: Sequence[Moves], level: float = LEVEL, seed: int = 0
                 ) -> tuple[float, float, float]:
    """Share of the slip against the committed plan that re-planning hid, with a bootstrap
    interval over items: sum of min(slip, max(0, due pushed)) / sum of slip, late items only."""
    slip = np.asarray([m.slip for m in late], dtype=np.float64)
    hid = np.clip(np.asarray([m.hidden for m in late], dtype=np.float64), 0, slip)
    share = float(hid.sum() / slip.sum())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(late), size=(BOOTSTRAP, len(late)))
    boot = hid[picks].sum(axis=1) / slip[picks].sum(axis=1)
    tail = (1 - level) / 2
    return share, float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def _summarise(seg: Segment) -> None:
    n = len(seg.moves)
    total = sum(m.count for m in seg.moves)
    low, high = rate_interval(total, n)
    steps = [s for m in seg.moves for s in m.steps]
    ev: dict[str, Any] = {
        "n": n, "moves": total, "per_item": total / n, "interval": [low, high],
        "interval_level": LEVEL, "replanned_share": sum(m.count > 0 for m in seg.moves) / n,
        "late_share": sum(m.late for m in seg.moves) / total if total else 0.0,
        "median_step": float(np.median(steps)) if steps else None,
        "rest": {"n": seg.rest_n, "moves": seg.rest_moves}, "p": seg.p, "q": seg.q,
    }
    late = [m for m in seg.moves if m.slip is not None and m.slip > 0]
    if len(late) >= 3:
        share, lo, hi = hidden_share(late)
        ev["hidden"] = {"n": len(late), "share": share, "interval": [lo, hi],
                        "days": float(sum(min(m.slip or 0, max(0.0, m.hidden or 0))
                                          for m in late))}
    seg.evidence = ev


def statement(seg: Segment) -> str:
    """The finding in one sentence with its numbers, rounded."""
    ev = seg.evidence
    who = " and ".join(f"{k} {v}" for k, v in sorted(seg.segment.items())) + " items"
    low, high = ev["interval"]
    what = FIELDS[seg.name]
    text = (f"{who}: {what} moved {ev['per_item']:.1f} times per item after the plan was "
            f"committed (n={ev['n']}, {LEVEL:.0%} interval {low:.1f}-{high:.1f}; "
            f"{ev['replanned_share']:.0%} of items re-planned")
    step = ev["median_step"]
    if step is not None:
        if seg.name == "planned_due":
            text += f", a median {abs(step):.0f} days {'later' if step >= 0 else 'earlier'} a move"
        else:
            text += f", a median {step:.1f}x the previous estimate a change"
    text += f", {ev['late_share']:.0%} of moves in the last tenth of the planned time)"
    hidden = ev.get("hidden")
    if hidden:
        lo, hi = hidden["interval"]
        text += (f"; {hidden['share']:.0%} of the slip was hidden by re-planning "
                 f"({hidden['n']} late items, {LEVEL:.0%} interval {lo:.0%}-{hi:.0%})")
    return text


def examine(session: Session, window: int = WINDOW) -> list[Segment]:
    """Every single-dimension segment with at least MIN_N committed items whose plans moved,
    compared with the rest (conditional binomial test of the move rates), BH-adjusted."""
    rows, events = _load(session, window)
    out: list[Segment] = []
    for name in FIELDS:
        moves = [_moves(r, events.get(r.id, []), name) for r in rows]
        all_moves = sum(m.count for m in moves)
        if not all_moves:
            continue
        groups: dict[tuple[str, str], list[Moves]] = {}
        for m in moves:
            for k, v in m.segments.items():
                if v not in (None, "", []):
                    groups.setdefault((k, str(v)), []).append(m)
        seen: set[frozenset[int]] = set()
        for (dim, value), members in sorted(groups.items()):
            k1 = sum(m.count for m in members)
            ids = frozenset(m.item_id for m in members)
            if len(members) < MIN_N or not k1 or ids in seen:
                continue
            seen.add(ids)
            n2, k2 = len(moves) - len(members), all_moves - k1
            p = 1.0
            if n2 > 0:
                p = float(stats.binomtest(k1, k1 + k2, len(members) / len(moves)).pvalue)
            out.append(Segment(name, {dim: value}, members, n2, k2, p=p))
    for seg, q in zip(out, benjamini_hochberg([s.p for s in out]), strict=True):
        seg.q = q
        _summarise(seg)
    return out


def _impact(seg: Segment) -> float:
    hidden = seg.evidence.get("hidden")
    return float(hidden["days"]) if hidden else float(seg.evidence["moves"])


def store_findings(session: Session, run_id: int, window: int = WINDOW) -> list[dict[str, Any]]:
    """Examine re-planning and store the findings of the learning run `run_id`.

    Returns:
        {"id", "statement", "q"} per stored finding, most impactful first.
    """
    segments = sorted(examine(session, window), key=lambda s: -_impact(s))[:MAX_FINDINGS]
    rows = []
    for seg in segments:
        ev = seg.evidence
        row = Finding(
            run_id=run_id, kind="replanning", measure=seg.name, segment=seg.segment,
            statement=statement(seg), n=ev["n"], effect=ev["per_item"],
            interval_low=ev["interval"][0], interval_high=ev["interval"][1],
            interval_level=LEVEL, p_value=seg.p, q_value=seg.q, impact=_impact(seg),
            item_ids={"ids": [m.item_id for m in seg.moves][:MAX_IDS]}, evidence=ev)
        session.add(row)
        rows.append(row)
    session.flush()
    return [{"id": r.id, "statement": r.statement, "q": r.q_value} for r in rows]

