"""Judge every declared process experiment in a learning run: a finding with its evidence, a
proposal to extend a change that worked, a published negative result for one that did not,
and the verdict written back where the treated work lives."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import outbox, policy
from core.contract import COMMENT, CommentPayload, TargetSpec, resolve_targets, surfaces_of
from core.model import Connection, Finding, Item, ItemLink, Proposal, utcnow
from core.model.process import ProcessExperiment
from core.process import did, panel, predicate
from core.process import measures as catalogue
from core.process.verdict import NEGATIVE, WORKED, Verdict, judge

KEY_PREFIX = "process:"
DECIDED = ("accepted", "applied", "rejected")
MAX_IDS = 5000
FINDING_KIND = "process_experiment"


def rule_key(exp: ProcessExperiment) -> str:
    """The policy rule a change that worked becomes when its proposal is accepted."""
    return f"{KEY_PREFIX}{exp.id}"


def _design(exp: ProcessExperiment, measure: catalogue.ProcessMeasure,
            permutations: int) -> did.Design:
    return did.Design(start=panel.days(exp.start),
                      end=panel.days(exp.end) if exp.end else None,
                      aggregate=did.COUNT if measure.count else did.MEAN,
                      permutations=permutations, seed=exp.id)


def _judge_one(exp: ProcessExperiment, measure: catalogue.ProcessMeasure, pan: panel.Panel,
               res: did.Result, primary: bool) -> Verdict:
    who = predicate.words(exp.treated)
    if pan.unmatched:
        return Verdict("not_enough_data", f"{exp.name}: {pan.unmatched}", math.nan, math.nan,
                       math.nan, 0)
    direction = exp.direction if primary else measure.better
    min_effect = exp.min_effect if primary else 0.0
    return judge(res, measure, direction, min_effect, exp.name, who)


def _evidence(exp: ProcessExperiment, judged: dict[str, tuple[panel.Panel, did.Result, Verdict]]
              ) -> dict[str, Any]:
    out: dict[str, Any] = {"primary": exp.measures[0], "measures": {}}
    for name, (pan, res, verdict) in judged.items():
        measure = catalogue.get(name)
        out["measures"][name] = {
            "verdict": verdict.kind, "statement": verdict.statement,
            "effect": _finite(verdict.effect), "interval": [_finite(verdict.low),
                                                           _finite(verdict.high)],
            "unit": measure.unit, "label": measure.label, "needed": verdict.needed,
            "cluster": pan.cluster, "treated_groups": pan.treated_groups,
            "comparison_groups": pan.comparison_groups, "families": pan.families,
            "did": res.as_dict(),
        }
    return out


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _store_finding(s: Session, run_id: int | None, exp: ProcessExperiment, pan: panel.Panel,
                   res: did.Result, verdict: Verdict, evidence: dict[str, Any]) -> Finding:
    segment = {k: v[0] if len(v) == 1 else v for k, v in exp.treated.items()}
    row = Finding(
        run_id=run_id, kind=FINDING_KIND, measure=exp.measures[0], segment=segment,
        statement=verdict.statement, n=res.n_treated, effect=verdict.effect,
        interval_low=verdict.low, interval_high=verdict.high, interval_level=res.level,
        p_value=res.p, q_value=res.p,  # one declared hypothesis: nothing to adjust for
        impact=abs(verdict.effect) * math.sqrt(max(res.n_treated, 1)),
        item_ids={"ids": pan.treated_ids[:MAX_IDS]},
        evidence={"experiment_id": exp.id, "verdict": verdict.kind, **evidence})
    s.add(row)
    s.flush()
    return row


def _extend_to(exp: ProcessExperiment, pan: panel.Panel) -> dict[str, list[str]]:
    if exp.extend_to:
        return dict(exp.extend_to)
    if exp.comparison:
        return dict(exp.comparison)
    return {pan.cluster: [g for g in pan.comparison_groups if not g.endswith(" (treated)")]}


def _propose(s: Session, run_id: int | None, exp: ProcessExperiment, pan: panel.Panel,
             res: did.Result, verdict: Verdict, finding: Finding | None
             ) -> Proposal | None:
    """A change that worked, proposed for the others; never again once a person decided."""
    if exp.proposal_id is not None:
        old = s.get(Proposal, exp.proposal_id)
        if old is not None and old.status in DECIDED:
            return None
    target = _extend_to(exp, pan)
    params = {"practice": exp.name, "experiment": f"#{exp.id}", "extend_to": target,
              "treated": exp.treated}
    title = f"Extend {exp.name} to {predicate.words(target, every=True)}"
    made = policy.propose(s, key=rule_key(exp), selector=target, params=params,
                          hypothesis=verdict.statement,
                          evidence={"experiment": f"#{exp.id}", "verdict": verdict.kind,
                                    "estimated_change": _finite(verdict.effect),
                                    "interval": [_finite(verdict.low), _finite(verdict.high)],
                                    "unit": catalogue.get(exp.measures[0]).unit,
                                    "treated_items": res.n_treated,
                                    "comparison_items": res.n_comparison, "p": res.p,
                                    "pre_period_trends": "agree"},
                          title=title, run_id=run_id,
                          finding_id=finding.id if finding is not None else None)
    if made is not None:
        exp.proposal_id = made.id
    return made


def evaluate(s: Session, exp: ProcessExperiment, run_id: int | None = None,
             permutations: int = did.PERMUTATIONS, rows: list[Any] | None = None,
             now: dt.datetime | None = None
             ) -> tuple[Verdict, panel.Panel, Finding | None]:
    """Judge one experiment on each of its measures (the first decides) and record it.

    Returns:
        The verdict of the first measure, its panel (who was on each side) and the finding
        stored for it (None without an estimate).
    """
    judged: dict[str, tuple[panel.Panel, did.Result, Verdict]] = {}
    for i, name in enumerate(exp.measures):
        measure = catalogue.get(name)
        pan = panel.load(s, exp, measure, rows)
        res = did.estimate(pan.obs, _design(exp, measure, permutations))
        judged[name] = (pan, res, _judge_one(exp, measure, pan, res, i == 0))
    pan, res, verdict = judged[exp.measures[0]]
    evidence = _evidence(exp, judged)
    finding = _store_finding(s, run_id, exp, pan, res, verdict, evidence) \
        if res.enough and not pan.unmatched else None
    exp.verdict, exp.statement, exp.evidence = verdict.kind, verdict.statement, evidence
    exp.evaluated_at, exp.run_id = now or utcnow(), run_id
    exp.finding_id = finding.id if finding is not None else exp.finding_id
    if verdict.kind == WORKED:
        exp.status = "worked"
        _propose(s, run_id, exp, pan, res, verdict, finding)
    elif verdict.kind in NEGATIVE:
        exp.status = "failed"  # a published negative result: kept, shown, never deleted
    else:
        exp.status = "running"
    return verdict, pan, finding


def _write_target(s: Session, exp: ProcessExperiment, item_ids: list[int]
                  ) -> tuple[int, str] | None:
    """(connection id, tool-side id) of where the verdict is written: the declared epic in the
    treated items' connection, else the epic (parent) most of the treated items belong to."""
    if not item_ids:
        return None
    conns = Counter(c for (c,) in s.execute(
        select(Item.connection_id).where(Item.id.in_(item_ids[:900]))))
    if not conns:
        return None
    conn_id = conns.most_common(1)[0][0]
    if exp.epic:
        return conn_id, exp.epic
    parents = Counter((c, t) for c, t in s.execute(
        select(ItemLink.connection_id, ItemLink.to_external_id).where(
            ItemLink.from_item_id.in_(item_ids[:900]), ItemLink.relation == "parent")))
    return parents.most_common(1)[0][0] if parents else None


def comment_text(exp: ProcessExperiment) -> str:
    """The comment written on the epic: the declaration and the latest verdict."""
    return (f"learnloop process experiment #{exp.id}: {exp.name} "
            f"({predicate.words(exp.treated)} from {exp.start.date().isoformat()}). "
            f"Hypothesis: {exp.hypothesis} Verdict ({exp.verdict}): {exp.statement}")


def queue_writeback(s: Session, exp: ProcessExperiment, targets: TargetSpec,
                    item_ids: list[int]) -> int:
    """Queue the verdict as one comment on the epic of the treated items (`item_ids`), edited
    in place on later runs; returns how many writes were queued."""
    where = _write_target(s, exp, item_ids)
    if where is None:
        return 0
    conn = s.get(Connection, where[0])
    if conn is None or COMMENT not in surfaces_of(resolve_targets(targets.get(conn.kind, ()))):
        return 0
    payload = CommentPayload(text=comment_text(exp)[:30000], topic=f"process-experiment-{exp.id}")
    outbox.enqueue(s, where[0], where[1], COMMENT, payload.to_json(),
                   key=f"{where[0]}:{where[1]}:comment:process-experiment:{exp.id}")
    return 1


def evaluate_all(s: Session, run_id: int | None, targets: TargetSpec | None = None,
                 permutations: int = did.PERMUTATIONS,
                 isolate: Callable[[str, Callable[[], Any]], Any] | None = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Judge every experiment that is not stopped, each in isolation (`isolate(what, step)`
    runs a step so that its failure is recorded and the others go on).

    Returns:
        {"judged": n, "verdicts": {id: kind}, "findings": [ids], "proposals": [ids],
        "writes": n}
    """
    experiments = list(s.scalars(select(ProcessExperiment).where(
        ProcessExperiment.status != "stopped").order_by(ProcessExperiment.id)))
    summary: dict[str, Any] = {"judged": 0, "verdicts": {}, "findings": [], "proposals": [],
                               "writes": 0}
    if not experiments:
        return summary
    rows = panel.finished_rows(s)

    def one(exp: ProcessExperiment) -> None:
        before, was = exp.proposal_id, exp.verdict
        verdict, pan, finding = evaluate(s, exp, run_id, permutations, rows, now)
        summary["judged"] += 1
        summary["verdicts"][str(exp.id)] = verdict.kind
        if finding is not None:
            summary["findings"].append(finding.id)
        if exp.proposal_id is not None and exp.proposal_id != before:
            summary["proposals"].append(exp.proposal_id)
        # A comment only when the verdict changes (the first one included), not every run.
        if targets and verdict.kind != was:
            summary["writes"] += queue_writeback(s, exp, targets, pan.treated_ids)

    for exp in experiments:
        if isolate is None:
            one(exp)
        else:
            isolate(f"process experiment #{exp.id}", lambda e=exp: one(e))  # type: ignore[misc]
    return summary
