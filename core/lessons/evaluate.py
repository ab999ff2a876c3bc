"""Test every lesson on the evidence since its date (a step of each learning run).

For each lesson that could be read: is its prediction still true (the deviation of its
segment since its date, with n and a 90% interval), did behaviour change (estimates of the
segment rising against before, its multiplier in the policy, the deviation shrinking since),
and where did it fail again (per project since its date). The recurrence becomes a finding;
a lesson that keeps failing is proposed as an estimation rule through the policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import policy
from core.learning.stats import benjamini_hochberg, median_interval
from core.lessons.evidence import Evidence, Point, held, selector, threshold
from core.lessons.parse import EFFORT, FINISH, OVER, phrase, prediction_words
from core.model import Finding, Lesson, Proposal, utcnow
from core.settings import get_settings

MIN_EVIDENCE = 8
"""Finished items since its date before a lesson is judged."""
MIN_GROUP = 3
"""Items a project needs since the lesson before it counts in the recurrence."""
RECENT = 12
"""The last items the "held for k of the last n" count is taken over."""
KEEP_RUNS = 10
LEVEL = 0.9
RISING_P = 0.1


def _fmt(lesson: Lesson, value: float) -> str:
    if lesson.measure == FINISH:
        return f"{value:+.1f} days"
    return f"{value:.2f}x"


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def _shift_interval(before: Sequence[float], after: Sequence[float], log: bool,
                    ) -> tuple[float, float, float]:
    """median(after) / median(before) (their difference, for days) with a 90% interval.

    Each median's distribution-free 90% interval gives its standard error (half its width
    over 1.645, on the log scale for ratios); the two are combined as independent, which
    costs two sorts instead of a bootstrap's thousands of medians on a large segment.
    """
    def view(values: Sequence[float]) -> np.ndarray[Any, Any]:
        x = np.asarray(values, dtype=np.float64)
        return np.log(x) if log else x

    z = float(stats.norm.isf((1 - LEVEL) / 2))
    a, b = view(after), view(before)
    (alo, ahi), (blo, bhi) = median_interval(list(a), LEVEL), median_interval(list(b), LEVEL)
    se = math.hypot((ahi - alo) / (2 * z), (bhi - blo) / (2 * z))
    shift = float(np.median(a) - np.median(b))
    lo, hi = shift - z * se, shift + z * se
    return (math.exp(shift), math.exp(lo), math.exp(hi)) if log else (shift, lo, hi)


def _change(lesson: Lesson, before: list[Point], after: list[Point]) -> dict[str, Any] | None:
    """Did the deviation shrink since the lesson: medians before and after, their ratio (or
    difference in days) with a 90% interval, and a one-sided rank test."""
    if len(before) < MIN_GROUP or len(after) < MIN_GROUP:
        return None
    log = lesson.measure != FINISH
    b, a = [p.value for p in before], [p.value for p in after]
    toward = "less" if lesson.direction == OVER else "greater"  # the deviation moving back
    p = float(stats.mannwhitneyu(a, b, alternative=toward).pvalue)
    shift, lo, hi = _shift_interval(b, a, log)
    mb, ma = _median(b), _median(a)
    return {"median_before": round(mb, 3), "median_after": round(ma, 3),
            "ratio" if log else "difference": round(shift, 3),
            "interval": [round(lo, 3), round(hi, 3)], "p": round(p, 4),
            "shrunk": p < RISING_P, "n_before": len(b), "n_after": len(a)}


def _estimates(lesson: Lesson, before: list[Point], after: list[Point]) -> dict[str, Any] | None:
    """Are the segment's estimates rising since the lesson (what planning for it looks like)."""
    if lesson.measure == FINISH or len(before) < MIN_GROUP or len(after) < MIN_GROUP:
        return None
    b, a = [p.planned for p in before], [p.planned for p in after]
    rising = "greater" if lesson.direction == OVER else "less"
    p = float(stats.mannwhitneyu(a, b, alternative=rising).pvalue)
    mb, ma = _median(b), _median(a)
    return {"median_before": round(mb, 2), "median_after": round(ma, 2),
            "ratio": round(ma / mb, 3) if mb else None, "p": round(p, 4),
            "rising": p < RISING_P, "n_before": len(b), "n_after": len(a)}


def _in_policy(session: Session, lesson: Lesson, sel: dict[str, str]) -> dict[str, Any]:
    """The active estimation rule that covers the lesson's segment, and whether its P80
    multiplier plans for what the lesson predicts."""
    rule = policy.rule_for(policy.active_rules(session), sel) if lesson.measure == EFFORT \
        else None
    if rule is None or "p80" not in rule.params:
        return {"rule": None, "p80": None, "in_policy": False}
    p80 = float(rule.params["p80"])
    wanted = lesson.multiplier if lesson.multiplier is not None else 1.0
    enough = p80 >= 0.9 * wanted if lesson.direction == OVER else p80 <= wanted / 0.9
    return {"rule": rule.key, "p80": round(p80, 3), "in_policy": bool(enough and rule.selector)}


def _recurrence(lesson: Lesson, after: list[Point]) -> dict[str, Any]:
    """Per project since the lesson: did the predicted deviation happen again."""
    groups: dict[str, list[float]] = {}
    for p in after:
        groups.setdefault(p.group, []).append(p.value)
    rows = []
    for name, values in sorted(groups.items()):
        if len(values) >= MIN_GROUP:
            med = _median(values)
            rows.append({"name": name, "n": len(values), "median": round(med, 3),
                         "failed": held(lesson, med)})
    return {"groups": rows, "failed": sum(r["failed"] for r in rows), "of": len(rows)}


def _verdict(lesson: Lesson, ev: dict[str, Any]) -> str:
    since = ev["since"][:10]
    who = phrase(lesson.segment, lesson.kind)
    lo, hi = ev["interval_after"]
    what = ("finished a median " + _fmt(lesson, ev["median_after"]) + " against their due date"
            if lesson.measure == FINISH else
            f"took a median {_fmt(lesson, ev['median_after'])} their "
            + ("estimate" if lesson.measure == EFFORT else "planned duration"))
    text = (f"{'holds' if ev['holds'] else 'no longer holds'}: since {since}, {who} {what} "
            f"(n={ev['n_after']}, 90% interval {_fmt(lesson, lo)} to {_fmt(lesson, hi)}); "
            f"held for {ev['held_recent']} of the last {ev['recent']}")
    rec = ev["recurrence"]
    if rec["of"]:
        text += (f"; failed again in {rec['failed']} of the {rec['of']} "
                 f"project{'s' if rec['of'] != 1 else ''} since")
    return text


def judge(session: Session, lesson: Lesson, points: list[Point]) -> dict[str, Any]:
    """The evidence of one lesson, stored on it (status, evidence, tested_at)."""
    since = lesson.created_at
    after = [p for p in points if p.at >= since]
    before = [p for p in points if p.at < since]
    runs = list((lesson.evidence or {}).get("runs", []))
    base: dict[str, Any] = {"since": since.isoformat(), "n_after": len(after),
                            "n_before": len(before), "threshold": round(threshold(lesson), 3)}
    if len(after) < MIN_EVIDENCE:
        lesson.status = "untested"
        lesson.reason = (f"{len(after)} finished {phrase(lesson.segment, lesson.kind)} planned "
                         f"since {since.date().isoformat()}; {MIN_EVIDENCE} are needed to test it")
        base["verdict"] = f"not tested yet: {lesson.reason}"
        base["runs"] = runs
        return base
    values = [p.value for p in after]
    log = lesson.measure != FINISH
    lo, hi = median_interval(values, LEVEL)
    med = _median(values)
    recent = after[-RECENT:]
    sel = selector(lesson, after)
    k = sum(held(lesson, v) for v in values)
    side = "greater" if lesson.direction == OVER else "less"
    ev: dict[str, Any] = {
        **base, "median_after": round(med, 3), "interval_after": [round(lo, 3), round(hi, 3)],
        "median_before": round(_median([p.value for p in before]), 3) if before else None,
        "held_after": k, "held_recent": sum(held(lesson, p.value) for p in recent),
        "recent": len(recent), "holds": held(lesson, med),
        "p": float(stats.binomtest(k, len(values), 0.5, alternative=side).pvalue),
        "change": _change(lesson, before, after), "estimates": _estimates(lesson, before, after),
        "policy": _in_policy(session, lesson, sel), "recurrence": _recurrence(lesson, after),
        "selector": sel, "log": log,
    }
    ev["behaviour_changed"] = bool((ev["estimates"] or {}).get("rising")
                                   or ev["policy"]["in_policy"]
                                   or (ev["change"] or {}).get("shrunk"))
    ev["runs"] = [*runs, bool(ev["holds"])][-KEEP_RUNS:]
    ev["verdict"] = _verdict(lesson, ev)
    lesson.status = "holds" if ev["holds"] else "no longer holds"
    lesson.reason = None
    return ev


def keeps_failing(ev: dict[str, Any], after: int) -> bool:
    """Failed again in `after` projects since the lesson, or held in the last `after` runs."""
    runs = ev.get("runs", [])
    return bool(ev.get("holds")) and (
        ev["recurrence"]["failed"] >= after or (len(runs) >= after and all(runs[-after:])))


def _finding(run_id: int | None, lesson: Lesson, ev: dict[str, Any], ids: list[int]) -> Finding:
    rec = ev["recurrence"]
    when = lesson.created_at.strftime("%Y-%m")
    words = prediction_words(lesson.segment, lesson.kind, lesson.measure, lesson.multiplier,
                             lesson.direction)
    if rec["of"]:
        head = (f"The lesson of {when} ({words}) failed again in {rec['failed']} of the "
                f"{rec['of']} project{'s' if rec['of'] != 1 else ''} since")
    else:
        head = f"The lesson of {when} ({words}) {'still holds' if ev['holds'] else 'no longer holds'}"
    lo, hi = ev["interval_after"]
    statement = (f"{head}: {phrase(lesson.segment, lesson.kind)} came to a median "
                 f"{_fmt(lesson, ev['median_after'])} (n={ev['n_after']}, 90% interval "
                 f"{_fmt(lesson, lo)} to {_fmt(lesson, hi)}); held for {ev['held_after']} "
                 f"of {ev['n_after']} items")
    center = ev["median_after"]
    effect_scale = abs(math.log(center)) if ev["log"] and center > 0 else abs(center)
    return Finding(run_id=run_id, kind="lesson", measure=f"lesson/{lesson.measure}",
                   segment=ev["selector"], statement=statement, n=ev["n_after"],
                   effect=center, interval_low=lo, interval_high=hi, interval_level=LEVEL,
                   p_value=ev["p"], q_value=ev["p"], impact=ev["n_after"] * effect_scale,
                   item_ids={"ids": ids[:5000]},
                   evidence={"lesson_id": lesson.id, **{k: v for k, v in ev.items()
                                                        if k != "verdict"}})


def _quantiles(values: list[float]) -> dict[str, float]:
    q = np.quantile(np.asarray(values, dtype=np.float64), [0.5, 0.8, 0.9])
    out = [min(max(round(float(v), 3), 0.01), policy.MAX_MULTIPLIER - 1) for v in q]
    return {"p50": out[0], "p80": max(out[1], out[0]), "p90": max(out[2], out[1], out[0])}


def _propose(session: Session, run_id: int | None, lesson: Lesson, ev: dict[str, Any],
             after: list[Point], finding: Finding) -> Proposal | None:
    """The estimation rule a lesson that keeps failing asks for (effort lessons only: the
    policy's rules are estimate multipliers). A pending proposal for the same rule (the
    findings' own) is linked rather than superseded."""
    if lesson.measure != EFFORT:
        return None
    sel = ev["selector"]
    key = policy.GLOBAL_KEY if not sel else "effort:" + ",".join(
        f"{k}={v}" for k, v in sorted(sel.items()))
    pending = session.scalar(select(Proposal).where(Proposal.dedupe_key == key,
                                                    Proposal.status == "pending"))
    if pending is not None:
        return pending
    params: dict[str, Any] = {**_quantiles([p.value for p in after]), "n": len(after)}
    rec = ev["recurrence"]
    who = phrase(lesson.segment, lesson.kind)
    hyp = (f"{who} take {params['p50']:.1f}x their estimate (P80 {params['p80']:.1f}x; "
           f"n={len(after)} since the lesson of {lesson.created_at.date().isoformat()}, which "
           f"failed again in {rec['failed']} of {rec['of']} projects): {lesson.words[:300]}")
    return policy.propose(session, key=key, selector=sel, params=params, hypothesis=hyp,
                          evidence={"lesson_id": lesson.id, "n": len(after),
                                    "median_ci_90": ev["interval_after"],
                                    "recurrence": rec},
                          title=f"Lesson #{lesson.id}: plan for {params['p80']:.1f}x the "
                                f"estimate for {who}", run_id=run_id, finding_id=finding.id)


def judge_all(session: Session, run_id: int | None,
                 leave_out: Callable[[str, BaseException], None] | None = None,
                 ) -> dict[str, Any]:
    """Test every readable lesson; store its status and evidence, a finding per tested
    lesson (its recurrence), and a proposal for each that keeps failing.

    Args:
        session: the store.
        run_id: the learning run doing it.
        leave_out: told about a lesson whose test failed (the others are tested all the same).

    Returns:
        Counts: lessons, tested, holding, findings, proposals.
    """
    evidence = Evidence(session)
    after_runs = get_settings().lesson_rule_after
    out = {"lessons": 0, "tested": 0, "holding": 0, "findings": 0, "proposals": 0}
    made: list[Finding] = []
    for lesson in session.scalars(select(Lesson).where(Lesson.measure.is_not(None))
                                  .order_by(Lesson.id)):
        out["lessons"] += 1
        try:
            with session.begin_nested():
                points = evidence.of(lesson)
                ev = judge(session, lesson, points)
                lesson.evidence, lesson.tested_at, lesson.run_id = ev, utcnow(), run_id
                if "holds" not in ev:
                    continue
                out["tested"] += 1
                out["holding"] += bool(ev["holds"])
                after = [p for p in points if p.at >= lesson.created_at]
                finding = _finding(run_id, lesson, ev, [p.item_id for p in after])
                session.add(finding)
                session.flush()
                made.append(finding)
                if keeps_failing(ev, after_runs):
                    proposal = _propose(session, run_id, lesson, ev, after, finding)
                    if proposal is not None:
                        lesson.proposal_id = proposal.id
                        out["proposals"] += 1
        except Exception as exc:
            if leave_out is None:
                raise
            leave_out(f"lesson #{lesson.id}", exc)
    for finding, q in zip(made, benjamini_hochberg([f.p_value for f in made]), strict=True):
        finding.q_value = q
    out["findings"] = len(made)
    session.flush()
    return out
