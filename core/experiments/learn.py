"""Experiments in the store: tests built from Enrollment rows by the one builder, playbook
rules proposed and tested against new evidence on every learning run."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import links, policy
from core.experiments.analyze import Experiment, analyze_test, segment_findings
from core.experiments.build import Units, build
from core.experiments.stats import ArmStats, Moments, compare
from core.learning import dataset
from core.learning.stats import benjamini_hochberg
from core.model import Enrollment, Event, Finding, Item

# Segment keys that named the test, arm, assignment and account before enrollments were
# records; stores upgraded by migration 0006 still carry them, and they are not segments.
NOT_SEGMENTS = frozenset({"variant", "assignment", "account", "sequence", "campaign", "test"})
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
    """One test found in the store, with whether its arms were randomised.

    `arm`, `account` and `segments` are per item id: its arm, the unit it is counted in (its
    linked account, else its enrollment's unit, else itself) and its segments (inherited
    through links).
    """

    experiment: Experiment
    randomized: bool
    items: list[Item]
    dispersion: dict[str, float] = field(default_factory=dict)
    events: _EventIndex | None = None
    arm: dict[int, str] = field(default_factory=dict)
    account: dict[int, str] = field(default_factory=dict)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)


def _moments(items: Sequence[Item], events: _EventIndex | None = None) -> dict[str, ArmStats]:
    replies = [_reply(i, events) for i in items]
    return {"reply": Moments(len(items), sum(replies), sum(replies), True)}


def _event_index(session: Session, ids: list[int]) -> _EventIndex:
    index: _EventIndex = defaultdict(set)
    for start in range(0, len(ids), 1000):
        for item_id, kind in session.execute(
            select(Event.item_id, Event.kind).where(Event.item_id.in_(ids[start:start + 1000]))
        ):
            index[item_id].add(str(kind).lower())
    return index


def _units(members: Sequence[tuple[Enrollment, Item]], stored: StoredExperiment,
           events: _EventIndex) -> Units:
    items = [i for _, i in members]
    keys = sorted({k for i in items for k in stored.segments[i.id]} - NOT_SEGMENTS)
    split = next((e.expected_split for e, _ in members if e.expected_split), None)
    return Units(
        arms=[e.arm for e, _ in members],
        metrics={"reply": np.asarray([_reply(i, events) for i in items]),
                 "meeting": np.asarray([_meeting(i, events) for i in items]),
                 "amount": np.asarray([float(i.actual_amount or 0.0) for i in items])},
        segments={k: ["" if stored.segments[i.id].get(k) in (None, "")
                      else str(stored.segments[i.id][k]) for i in items] for k in keys},
        accounts=[stored.account[i.id] for i in items],
        days=[(e.assigned_at or i.planned_at or i.actual_end or i.updated_at).date().isoformat()
              for e, i in members],
        weights={str(k): float(v) for k, v in split.items()} if split else None)


def from_store(session: Session) -> list[StoredExperiment]:
    """Every test in the store, from the Enrollment rows of finished, live items: per arm and
    per one- and two-column segment, with each metric's day-to-day dispersion; enrollments of
    one account in one arm count as one unit (the account).

    A test counts as randomised only when every enrollment says its arm was drawn at random;
    otherwise its segment results are hypotheses, never policies.
    """
    live = (Item.deleted.is_(False), Item.status == "done")
    rows = session.scalars(select(Enrollment).join(Item, Item.id == Enrollment.item_id)
                           .where(*live).order_by(Enrollment.test, Enrollment.item_id)).all()
    if not rows:
        return []
    ids = sorted({e.item_id for e in rows})
    views = {i.id: i for i in dataset.item_views(
        session, *live, Item.id.in_(select(Enrollment.item_id)))}
    events = _event_index(session, ids)
    inherited = links.inherited_segments(session, ids)
    accounts = links.account_of(session, ids)
    by_test: dict[str, list[tuple[Enrollment, Item]]] = defaultdict(list)
    for e in rows:
        by_test[e.test].append((e, views[e.item_id]))
    out = []
    for name, members in sorted(by_test.items()):
        if len({e.arm for e, _ in members}) < 2:
            continue
        stored = StoredExperiment(
            experiment=Experiment(name, {}, ""), randomized=all(e.random for e, _ in members),
            items=[i for _, i in members], events=events,
            arm={i.id: e.arm for e, i in members},
            account={i.id: f"account:{accounts[i.id]}" if i.id in accounts
                     else (f"unit:{e.unit}" if e.unit else "") for e, i in members},
            segments={i.id: inherited.get(i.id, i.segments) for _, i in members})
        stored.experiment, stored.dispersion = build(name, _units(members, stored, events))
        out.append(stored)
    return out


def _in(segments: dict[str, Any], selector: dict[str, Any]) -> bool:
    return all(str(segments.get(k)) == str(v) for k, v in selector.items())


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
        new = [i for i in exp.items if _in(exp.segments[i.id], selector)
               and (since is None or (i.planned_at or i.updated_at) >= since)]
        accounts: dict[str, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
        for item in new:
            accounts[exp.account[item.id] or item.external_id][exp.arm[item.id]].append(item)
        held = failed = 0
        for arms in accounts.values():
            if chosen not in arms or len(arms) < 2:
                continue
            rate = {a: sum(_reply(i, exp.events) for i in v) / len(v) for a, v in arms.items()}
            if rate[chosen] >= max(r for a, r in rate.items() if a != chosen):
                held += 1
            else:
                failed += 1
        totals = {a: _moments([i for i in new if exp.arm[i.id] == a], exp.events)["reply"]
                  for a in {exp.arm[i.id] for i in new}}
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
                          p_value=1.0 if versus.p_value is None else versus.p_value,
                          q_value=1.0, impact=float(failed),
                          item_ids={"ids": [i.id for i in new][:5000]},
                          evidence={"held": held, "failed": failed, "chance_to_win": ctw,
                                    "other": other, "chosen": chosen})
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
    # Every rule checked this run is one test: q is the p-value adjusted over all of them.
    for finding, q in zip(findings, benjamini_hochberg([f.p_value for f in findings]),
                          strict=True):
        finding.q_value = q
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
                                 "control": s.experiment.control,
                                 "dispersion": {m: round(v, 3) for m, v in s.dispersion.items()}})
        for f in segment_findings(s.experiment, observational=not s.randomized,
                                  dispersion=s.dispersion):
            segment = dict(part.split("=", 1) for part in f["segment"].split(","))
            session.add(Finding(
                run_id=run_id, kind="experiment" if s.randomized else "hypothesis",
                measure=f["metric"], segment=segment, statement=f["statement"],
                n=sum(f["n"]), effect=f["lift"], interval_low=f["ci"][0],
                interval_high=f["ci"][1], interval_level=0.95, p_value=f["claim_p"],
                q_value=f["claim_q"], impact=abs(f["shrunk_lift"]) * sum(f["n"]),
                evidence={"test": s.experiment.name,
                          **{k: f[k] for k in ("best_arm", "compared_to", "lift", "ci",
                                               "shrunk_lift", "n", "p_within", "q_value",
                                               "p_interaction", "interaction_q", "claim_p",
                                               "claim_q")}}))
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
