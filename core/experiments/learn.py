"""Experiments in the store: arm statistics from enrollments, playbook rules proposed and
tested against new evidence on every learning run."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import policy
from core.experiments.analyze import Experiment, analyze_test, segment_findings
from core.experiments.stats import ArmStats, Moments, compare, dispersion_over_days
from core.learning import dataset
from core.model import Event, Finding, Item

ARM = "variant"
TEST_KEYS = ("sequence", "campaign", "test")
NOT_SEGMENTS = {ARM, "assignment", "account", *TEST_KEYS}
POSITIVE = ("repl", "meeting", "booked", "won", "convert", "yes", "1", "true")
MEETING = ("meeting", "booked", "won")
REPLY_EVENTS = frozenset({"reply", "replied", "reply received", "email replied"})
MEETING_EVENTS = frozenset({"meeting", "meeting booked", "meeting scheduled"})
METRICS = ("reply", "meeting", "amount")

# item id -> event kinds seen for it (filled per learning run by `from_store`)
_EventIndex = dict[int, set[str]]


def _reply(item: Item, events: _EventIndex | None = None) -> float:
    """1 when the enrollment got a reply: its outcome says so, or a reply event was captured."""
    if events and events.get(item.id, set()) & (REPLY_EVENTS | MEETING_EVENTS):
        return 1.0
    text = (item.outcome or "").strip().lower()
    return 1.0 if any(text.startswith(p) for p in POSITIVE) else 0.0


def _meeting(item: Item, events: _EventIndex | None = None) -> float:
    """1 when a meeting came of it (outcome or a meeting event)."""
    if events and events.get(item.id, set()) & MEETING_EVENTS:
        return 1.0
    text = (item.outcome or "").strip().lower()
    return 1.0 if any(text.startswith(p) for p in MEETING) else 0.0


@dataclass
class StoredExperiment:
    """One test found in the store, with whether its arms were randomised."""

    experiment: Experiment
    randomized: bool
    items: list[Item]
    dispersion: float = 1.0
    events: _EventIndex | None = None


def _moments(items: Sequence[Item], events: _EventIndex | None = None) -> dict[str, ArmStats]:
    replies = [_reply(i, events) for i in items]
    meetings = [_meeting(i, events) for i in items]
    amounts = [float(i.actual_amount or 0.0) for i in items]
    return {"reply": Moments(len(items), sum(replies), sum(replies), True),
            "meeting": Moments(len(items), sum(meetings), sum(meetings), True),
            "amount": Moments(len(items), sum(amounts), sum(a * a for a in amounts), False)}


def _event_index(session: Session, ids: list[int]) -> _EventIndex:
    index: _EventIndex = defaultdict(set)
    for start in range(0, len(ids), 1000):
        for item_id, kind in session.execute(
            select(Event.item_id, Event.kind).where(Event.item_id.in_(ids[start:start + 1000]))
        ):
            index[item_id].add(str(kind).lower())
    return index


def from_store(session: Session) -> list[StoredExperiment]:
    """Every test in the store: finished enrollments (items whose segments name a variant),
    grouped by sequence/campaign/test, per arm and per one-column segment.

    A test counts as randomised only when every enrollment says assignment=random (map the
    tool's assignment field); otherwise its segment results are hypotheses, never policies.
    """
    has_arm = Item.segments[ARM].as_string().is_not(None)  # in SQL: tasks are not read here
    items = [i for i in dataset.item_views(session, Item.deleted.is_(False),
                                           Item.status == "done", has_arm)
             if i.segments.get(ARM)]
    events = _event_index(session, [i.id for i in items])
    by_test: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        name = next((str(item.segments[k]) for k in TEST_KEYS if item.segments.get(k)), "all")
        by_test[name].append(item)
    out = []
    for name, members in sorted(by_test.items()):
        arms: dict[str, list[Item]] = defaultdict(list)
        for item in members:
            arms[str(item.segments[ARM])].append(item)
        if len(arms) < 2:
            continue
        control = next((a for a in sorted(arms) if "control" in a.lower()), sorted(arms)[0])
        exp = Experiment(name=name, arms={a: _moments(v, events) for a, v in arms.items()},
                         control=control)
        cells: dict[str, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
        for item in members:
            for k, v in item.segments.items():
                if k not in NOT_SEGMENTS and v not in (None, ""):
                    cells[f"{k}={v}"][str(item.segments[ARM])].append(item)
        exp.segments = {seg: {a: _moments(v, events) for a, v in by_arm.items()}
                        for seg, by_arm in cells.items()}
        randomized = all(str(i.segments.get("assignment", "")).lower() == "random"
                         for i in members)
        days: dict[tuple[str, str], list[float]] = defaultdict(list)
        for item in members:
            when = item.planned_at or item.actual_end or item.updated_at
            days[(str(item.segments[ARM]), when.date().isoformat())].append(_reply(item, events))
        phi = dispersion_over_days([(a, len(v), sum(v)) for (a, _), v in days.items()])
        out.append(StoredExperiment(exp, randomized, members, phi, events))
    return out


def _in(item: Item, selector: dict[str, Any]) -> bool:
    return all(str(item.segments.get(k)) == str(v) for k, v in selector.items())


def check_assumptions(session: Session, stored: list[StoredExperiment],
                     run_id: int) -> list[Finding]:
    """Check every active playbook rule on the evidence since it was accepted: per account,
    did the preferred variant do at least as well as the others? Propose a switch when it
    failed for most accounts and another variant is very likely better."""
    by_name = {s.experiment.name: s for s in stored}
    findings = []
    for rule in policy.active_rules(session).values():
        if not rule.key.startswith("playbook:"):
            continue
        exp = by_name.get(str(rule.selector.get("test")))
        if exp is None:
            continue
        since = dt.datetime.fromisoformat(rule.params["since"]) if rule.params.get("since") \
            else None
        chosen = str(rule.params["variant"])
        selector = {k: v for k, v in rule.selector.items() if k != "test"}
        new = [i for i in exp.items if _in(i, selector)
               and (since is None or (i.planned_at or i.updated_at) >= since)]
        accounts: dict[str, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
        for item in new:
            key = str(item.segments.get("account") or item.external_id)
            accounts[key][str(item.segments[ARM])].append(item)
        held = failed = 0
        for arms in accounts.values():
            if chosen not in arms or len(arms) < 2:
                continue
            rate = {a: sum(_reply(i, exp.events) for i in v) / len(v) for a, v in arms.items()}
            if rate[chosen] >= max(r for a, r in rate.items() if a != chosen):
                held += 1
            else:
                failed += 1
        totals = {a: _moments([i for i in new if str(i.segments[ARM]) == a], exp.events)["reply"]
                  for a in {str(i.segments[ARM]) for i in new}}
        if chosen not in totals or len(totals) < 2 or held + failed == 0:
            continue
        other = max((a for a in totals if a != chosen), key=lambda a: totals[a].mean)
        versus = compare(totals[chosen], totals[other])
        ctw = versus.chance_to_win or 0.0
        statement = (f"The assumption that {rule.hypothesis or rule.key} held for {held} of "
                     f"{held + failed} accounts and failed for {failed}; {other} "
                     f"{'won' if ctw >= 0.5 else 'did not win'} ({ctw:.0%} chance to be "
                     f"better than {chosen}, n={totals[other].n}/{totals[chosen].n})")
        finding = Finding(run_id=run_id, kind="assumption", measure="reply",
                          segment=rule.selector, statement=statement, n=held + failed,
                          effect=versus.lift or 0.0,
                          interval_low=(versus.ci or (0.0, 0.0))[0],
                          interval_high=(versus.ci or (0.0, 0.0))[1], interval_level=0.95,
                          p_value=versus.p_value or 1.0, q_value=versus.p_value or 1.0,
                          impact=float(failed), item_ids={"ids": [i.id for i in new][:5000]})
        session.add(finding)
        findings.append(finding)
        if failed > held and ctw >= 0.95 and exp.randomized:
            policy.propose(session, key=rule.key, selector=rule.selector,
                           params={**{k: v for k, v in rule.params.items() if k != "since"},
                                   "variant": other, "expected_rate": totals[other].mean},
                           hypothesis=f"{', '.join(f'{k}={v}' for k, v in selector.items())}: "
                           f"{other} beats {chosen} on replies", evidence={"statement": statement},
                           title=f"Switch to {other}: {chosen} failed for {failed} of "
                           f"{held + failed} accounts", run_id=run_id, finding_id=None)
    return findings


def learn_experiments(session: Session, run_id: int) -> dict[str, Any]:
    """Analyse every stored test, store segment findings, propose playbook rules, and test
    the active ones. Returns a summary for the run report."""
    stored = from_store(session)
    summary: dict[str, Any] = {"tests": [], "proposals": 0}
    for s in stored:
        result = analyze_test(s.experiment, s.dispersion)
        summary["tests"].append({"test": s.experiment.name, "decision": result["decision"],
                                 "winner": result["winner"], "randomized": s.randomized,
                                 "dispersion": round(s.dispersion, 3)})
        for f in segment_findings(s.experiment, observational=not s.randomized,
                                  dispersion=s.dispersion):
            segment = dict(part.split("=", 1) for part in f["segment"].split(","))
            session.add(Finding(
                run_id=run_id, kind="experiment" if s.randomized else "hypothesis",
                measure=f["metric"], segment=segment, statement=f["statement"],
                n=sum(f["n"]), effect=f["lift"], interval_low=f["ci"][0],
                interval_high=f["ci"][1], interval_level=0.95, p_value=f["q_value"],
                q_value=f["q_value"], impact=abs(f["shrunk_lift"]) * sum(f["n"])))
            if f["kind"] != "policy" or f["metric"] != "reply":
                continue
            stats = s.experiment.segments[f["segment"]][f["best_arm"]]["reply"]
            proposal = policy.propose(
                session, key=f"playbook:{s.experiment.name}:{f['segment']}",
                selector={**segment, "test": s.experiment.name},
                params={"variant": f["best_arm"], "metric": "reply",
                        "expected_rate": round(stats.mean, 4), "compared_to": f["compared_to"],
                        "n": sum(f["n"])},
                hypothesis=f"{f['segment']} reply best to {f['best_arm']} "
                           f"(expected reply rate {stats.mean:.1%})",
                evidence={k: f[k] for k in ("lift", "ci", "q_value", "interaction_q", "n")},
                title=f"{s.experiment.name}, {f['segment']}: send {f['best_arm']}", run_id=run_id)
            summary["proposals"] += proposal is not None
    summary["assumptions"] = [f.statement for f in check_assumptions(session, stored, run_id)]
    return summary
