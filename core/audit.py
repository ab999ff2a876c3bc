"""The six-dimension learning audit: self-scored by people, measured from the store.

Every dimension is measured with SQL aggregates (never by loading items) and scored 1-5: it
starts at 1 and gains one point per criterion met. With nothing to measure it stays at 1 and
the evidence says what is missing.

| dimension               | +1                         | +1                       | +1                               | +1                               |
| ----------------------- | -------------------------- | ------------------------ | -------------------------------- | -------------------------------- |
| signal_capture          | >=50% finished items have  | >=80% have both          | >=1 event per item               | every connection synced in 7 d   |
|                         | a plan and an actual       |                          |                                  |                                  |
| feedback_loop_integrity | >=80% finished forecast    | >=95% scored             | >=95% of settled write-backs     | a learning run finished in 30 d  |
|                         | items had it scored        |                          | delivered (not dead)             |                                  |
| planned_vs_actual       | a deviation or scored      | P80 coverage within +-15 | P80 coverage within +-5 points   | a finding with n>=10 in 90 d     |
|                         | forecast exists            | points of 80%, n>=30     | of 80%, n>=30 (last 180 d)       |                                  |
| institutional_memory    | an active rule in the      | >=2 policy versions      | >=1 proposal accepted/applied    | a template with >=2 versions     |
|                         | current policy             |                          |                                  |                                  |
| experimentation_cadence | an experiment (>=2 arms)   | one started in 6 months  | >=3 started in 6 months          | >=6 started in 6 months (1/mo)   |
|                         | or a declared process one  | (outreach tests and declared process experiments both count)        |
| agent_human_loop        | >=80% proposals decided or | median decision <=7 days | >=50% of decisions have a note   | >=95% write-backs delivered      |
|                         | younger than 14 days       |                          |                                  |                                  |

Experimentation cadence also counts, per quarter, the declared process experiments that
started in it and how many of them have a published verdict (worked, or a negative result
kept); feedback-loop integrity counts what changed the policy through an accepted proposal, by
source (`policy_changes`: process experiments today).
Institutional memory has a fifth criterion, a lesson tested on later work; feedback-loop
integrity one too, a lesson that changed the policy (a dimension still scores at most 5).

Maturity (sum of the six, 6..30): 6-11 Ad hoc, 12-17 Reactive, 18-23 Learning, 24-30 Compounding.
Quadrant: team learning = mean(signal_capture, planned_vs_actual, experimentation_cadence),
organisational learning = mean(feedback_loop_integrity, institutional_memory,
agent_human_loop); each is high when >= 3.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.learning import ledger
from core.measures import ALIASES, ENROLLMENT
from core.model import (
    Audit,
    Connection,
    Deviation,
    Enrollment,
    Event,
    Finding,
    Forecast,
    Item,
    LearningRun,
    Lesson,
    Policy,
    Proposal,
    Rule,
    Template,
    WriteIntent,
    utcnow,
)
from core.model.process import ProcessExperiment
from core.process.verdict import CONCLUDED


@dataclass(frozen=True)
class Dimension:
    """One audit dimension: its key, a title and the question a person self-scores 1-5."""

    key: str
    title: str
    question: str


DIMENSIONS: Mapping[str, Dimension] = {d.key: d for d in (
    Dimension("signal_capture", "Signal capture",
              "Are plans and outcomes captured for every piece of work, automatically?"),
    Dimension("feedback_loop_integrity", "Feedback-loop integrity",
              "Is every forecast scored against its actual and the learning written back "
              "into the tools people use?"),
    Dimension("planned_vs_actual", "Planned vs actual",
              "Do you study the gap between plan and actual, and are your forecasts "
              "calibrated?"),
    Dimension("institutional_memory", "Institutional memory",
              "Are lessons written down as versioned rules and templates that apply to "
              "everyone?"),
    Dimension("experimentation_cadence", "Experimentation cadence",
              "Do you run deliberate experiments (variants compared) every month?"),
    Dimension("agent_human_loop", "Agent-human loop",
              "Do people decide promptly, with reasons, on the changes the system proposes?"),
)}
KEYS = tuple(DIMENSIONS)
TEAM = ("signal_capture", "planned_vs_actual", "experimentation_cadence")
ORG = ("feedback_loop_integrity", "institutional_memory", "agent_human_loop")
BANDS = ((11, "Ad hoc"), (17, "Reactive"), (23, "Learning"), (30, "Compounding"))
QUADRANTS = {
    (False, False): ("Stuck", "Neither teams nor the organisation learn from plan vs actual, "
                     "so the same surprises repeat."),
    (True, False): ("Siloed learning", "Teams learn from their own work, but the lessons "
                    "stay with them and never become shared policy."),
    (False, True): ("Top-down", "The organisation keeps rules and reviews, but teams feed "
                    "them little evidence from their actual work."),
    (True, True): ("Learning organisation", "Teams learn from every cycle and the "
                   "organisation turns that into policy that applies to everyone."),
}


@dataclass
class Measured:
    """A dimension measured from the store: score 1-5, a plain-language why, sample size."""

    score: int
    evidence: str
    n: int
    figures: dict[str, float | int] = field(default_factory=dict)
    per_quarter: list[dict[str, Any]] = field(default_factory=list)
    """Counts by calendar quarter where a dimension has them (oldest first)."""


@dataclass(frozen=True)
class Placement:
    """Where scores sit on the 2x2: team and organisational learning (1-5 means)."""

    team: float
    org: float
    quadrant: str
    description: str


def _pct(part: int, whole: int, what: str) -> str:
    """E.g. '812 of 1,020 finished items (80%)'."""
    return f"{part:,} of {whole:,} {what}" + (f" ({part / whole:.0%})" if whole else "")


def _n(session: Session, stmt: Select[Any]) -> int:
    return int(session.execute(stmt).scalar() or 0)


def _result(checks: list[tuple[bool, str]], n: int, figures: dict[str, float | int],
            missing: str | None) -> Measured:
    if missing:
        return Measured(1, missing, n, figures)
    # A dimension with a fifth criterion (lessons) still scores at most 5.
    return Measured(min(5, 1 + sum(ok for ok, _ in checks)), " ".join(s for _, s in checks), n,
                    figures)


ENROLLMENT_KINDS = tuple(k for k, family in ALIASES.items() if family == ENROLLMENT)


def _signal(s: Session, now: dt.datetime) -> Measured:
    # An enrollment's plan is its arm, not a figure: it is judged by the experiments, and
    # counting it here would drag the capture of tasks and deals down.
    live = and_(Item.deleted.is_(False), func.lower(Item.kind).not_in(ENROLLMENT_KINDS))
    plan = or_(Item.planned_estimate.is_not(None), Item.planned_due.is_not(None),
               Item.planned_amount.is_not(None), Item.expected_outcome.is_not(None))
    actual = or_(Item.actual_effort.is_not(None), Item.actual_end.is_not(None),
                 Item.actual_amount.is_not(None), Item.outcome.is_not(None))
    items, finished, both = (int(v or 0) for v in s.execute(select(
        func.count(Item.id), func.count(case((Item.status == "done", Item.id))),
        func.count(case((and_(Item.status == "done", plan, actual), Item.id))),
    ).where(live)).one())
    events = _n(s, select(func.count(Event.id)).join(Item, Item.id == Event.item_id).where(live))
    conns, fresh = (int(v or 0) for v in s.execute(select(
        func.count(Connection.id),
        func.count(case((Connection.last_sync_at >= now - dt.timedelta(days=7), Connection.id))),
    )).one())
    share = both / finished if finished else 0.0
    per_item = events / items if items else 0.0
    return _result([
        (share >= 0.5, f"{_pct(both, finished, 'finished items')} have both a plan and an actual."),
        (share >= 0.8, "80% or more is the mark for capture you can learn from."),
        (per_item >= 1, f"{events:,} events were captured for {items:,} items "
                        f"({per_item:.1f} per item)."),
        (0 < fresh == conns, f"{_pct(fresh, conns, 'connections')} synced in the last 7 days."),
    ], finished, {"items": items, "finished": finished, "both": both, "events": events,
                  "connections": conns, "synced_7d": fresh},
        None if items else "No items captured yet: connect a tool and sync it.")


def _delivery(s: Session) -> tuple[int, int]:
    rows = {str(k): int(v) for k, v in s.execute(
        select(WriteIntent.status, func.count()).where(
            WriteIntent.status.in_(("delivered", "dead"))).group_by(WriteIntent.status))}
    return rows.get("delivered", 0), rows.get("dead", 0)


def _feedback(s: Session, now: dt.datetime) -> Measured:
    forecast_items, scored = (int(v or 0) for v in s.execute(
        select(func.count(distinct(Forecast.item_id)),
               func.count(distinct(case((Forecast.scored_at.is_not(None), Forecast.item_id)))))
        .join(Item, Item.id == Forecast.item_id)
        .where(Item.status == "done", Item.deleted.is_(False))).one())
    delivered, dead = _delivery(s)
    runs = _n(s, select(func.count(LearningRun.id)).where(
        LearningRun.status == "ok", LearningRun.started_at >= now - dt.timedelta(days=30)))
    share = scored / forecast_items if forecast_items else 0.0
    settled = delivered + dead
    changes = policy_changes(s)
    out = _result([
        (share >= 0.8, f"{_pct(scored, forecast_items, 'finished items with a forecast')} "
                       "had it scored against the actual."),
        (share >= 0.95, "95% or more is the mark for a closed loop."),
        (delivered > 0 and delivered >= 0.95 * settled,
         f"{_pct(delivered, settled, 'finished write-backs')} were delivered ({dead:,} dead)."),
        (runs > 0, f"{runs:,} learning runs finished in the last 30 days."),
        ((lessons := _lessons(s))["lessons_in_policy"] > 0,
         f"{_pct(lessons['lessons_in_policy'], lessons['lessons'], 'lessons')} changed the "
         "policy (the rule they were proposed as was accepted)."),
    ], forecast_items, {"finished_with_forecast": forecast_items, "scored": scored,
                        "delivered": delivered, "dead": dead, "runs_30d": runs,
                        "lessons_in_policy": lessons["lessons_in_policy"],
                        **{f"changed_policy_{k}": v for k, v in changes.items()}},
        None if forecast_items or settled or runs or any(changes.values()) else
        "No forecast, write-back or learning run yet: run learning once items are synced.")
    if any(changes.values()):
        out.evidence += " Changed the policy through an accepted proposal: " + ", ".join(
            f"{n:,} {CHANGE_SOURCES.get(k, k)}" for k, n in changes.items()) + "."
    return out


CHANGE_SOURCES = {"process_experiments": "process experiments"}
"""Source key of `policy_changes` -> its name in the evidence."""


def policy_changes(s: Session) -> dict[str, int]:
    """What changed the policy through an accepted (or applied) proposal, by source.

    The hook for every source of learning that becomes policy: a new source (lessons) adds
    its count here and its name to CHANGE_SOURCES.
    """
    adopted = Proposal.status.in_(("accepted", "applied"))
    return {"process_experiments": _n(s, select(func.count(ProcessExperiment.id)).join(
        Proposal, Proposal.id == ProcessExperiment.proposal_id).where(adopted))}


def _planned_vs_actual(s: Session, now: dt.datetime) -> Measured:
    deviations = _n(s, select(func.count(func.distinct(Deviation.item_id)))
                    .where(Deviation.against == "committed"))
    # The same figure as the overview's: the effort P80 coverage of every scored forecast.
    p80 = ledger.report(s, "effort")["overall"]["p80"]
    scored = int(p80["n"])
    covered = round((p80["coverage"] or 0.0) * scored)
    findings = _n(s, select(func.count(Finding.id)).where(
        Finding.created_at >= now - dt.timedelta(days=90), Finding.n >= 10))
    coverage = covered / scored if scored else 0.0
    gap = abs(coverage - 0.8) * 100
    cover = (f"P80 effort forecasts covered the actual in {_pct(covered, scored, 'cases')} "
             f"(target 80%, {gap:.0f} points off; 30 needed to judge)." if scored else
             "No effort forecast has been scored yet.")
    return _result([
        (bool(deviations or scored), f"{deviations:,} items have a plan-vs-actual deviation "
                                     f"computed and {scored:,} forecasts were scored."),
        (scored >= 30 and gap <= 15, cover),
        (scored >= 30 and gap <= 5, "Within 5 points of 80% counts as calibrated."),
        (findings > 0, f"{findings:,} findings with at least 10 items of evidence in the "
                       "last 90 days."),
    ], scored, {"deviations": deviations, "scored": scored, "p80_covered": covered,
                "p80_coverage": round(coverage, 4), "findings_90d": findings},
        None if deviations or scored or findings else
        "No plan has been compared with its actual yet.")


def _lessons(s: Session) -> dict[str, int]:
    """Lessons, those tested on later work, those still holding, those that changed the policy
    (the estimation rule they were proposed as was accepted)."""
    tested = Lesson.status.in_(("holds", "no longer holds"))
    total, done, holding = (int(v or 0) for v in s.execute(select(
        func.count(Lesson.id), func.count(case((tested, Lesson.id))),
        func.count(case((Lesson.status == "holds", Lesson.id))))).one())
    adopted = _n(s, select(func.count(Lesson.id)).join(Proposal, Proposal.id == Lesson.proposal_id)
                 .where(Proposal.status.in_(("accepted", "applied"))))
    return {"lessons": total, "lessons_tested": done, "lessons_holding": holding,
            "lessons_in_policy": adopted}


def _lesson_memory(lessons: dict[str, int]) -> tuple[bool, str]:
    total, done, holding = (lessons[k] for k in ("lessons", "lessons_tested", "lessons_holding"))
    return (done > 0, f"{_pct(done, total, 'lessons')} were tested on later work; {holding:,} "
                      f"still hold (the mistake recurs), {done - holding:,} no longer do.")


def _memory(s: Session) -> Measured:
    versions, current = (int(v or 0) for v in s.execute(
        select(func.count(Policy.id), func.max(Policy.version))).one())
    rules = _n(s, select(func.count(Rule.id)).join(Policy, Policy.id == Rule.policy_id).where(
        Policy.version == current, Rule.status == "active"))
    adopted = _n(s, select(func.count(Proposal.id)).where(
        Proposal.status.in_(("accepted", "applied"))))
    revised = _n(s, select(func.count()).select_from(
        select(Template.name).group_by(Template.name)
        .having(func.count(Template.id) >= 2).subquery()))
    return _result([
        (rules > 0, f"The current policy (version {current}) has {rules:,} active rules."),
        (versions >= 2, f"The policy has {versions:,} versions."),
        (adopted > 0, f"{adopted:,} proposals were accepted or applied."),
        (revised > 0, f"{revised:,} templates have been revised at least once."),
        _lesson_memory(lessons := _lessons(s)),
    ], rules, {"policy_versions": versions, "active_rules": rules, "adopted": adopted,
               "revised_templates": revised, **lessons},
        None if versions or adopted or revised or lessons["lessons"] else
        "No policy has been written down yet.")


def _experiments(s: Session, now: dt.datetime) -> Measured:
    rows = select(Enrollment.test.label("test"), Enrollment.arm.label("arm"),
                  func.coalesce(Enrollment.assigned_at, Item.planned_at, Item.created_at)
                  .label("at")).join(Item, Item.id == Enrollment.item_id).where(
        Item.deleted.is_(False)).subquery()
    tests = select(rows.c.test, func.min(rows.c.at).label("started")).group_by(rows.c.test) \
        .having(func.count(distinct(rows.c.arm)) >= 2).subquery()
    six = now - dt.timedelta(days=183)
    outreach, recent_tests = (int(v or 0) for v in s.execute(select(
        func.count(tests.c.test),
        func.count(case((tests.c.started >= six, tests.c.test))),
    )).one())
    declared = list(s.execute(select(ProcessExperiment.start, ProcessExperiment.verdict)))
    recent_process = sum(1 for start, _ in declared if six <= start <= now)
    published = sum(1 for _, verdict in declared if verdict in CONCLUDED)
    total, recent = outreach + len(declared), recent_tests + recent_process
    quarters = _quarters(declared, now)
    said = (f" {len(declared):,} declared process experiments, {published:,} with a published "
            "verdict" + (" (by quarter started: " + "; ".join(
                f"{q['quarter']} {q['declared']} declared, {q['published']} published"
                for q in quarters) + ")" if quarters else "") + ".") if declared else ""
    out = _result([
        (True, f"{outreach:,} experiments (two or more variants) are in the store.{said}"),
        (recent >= 1, f"{recent:,} started in the last 6 months ({recent / 6:.1f} a month)."),
        (recent >= 3, "Three or more in 6 months is a cadence."),
        (recent >= 6, "One or more a month compounds."),
    ], total, {"experiments": outreach, "started_6m": recent, "per_month": round(recent / 6, 2),
               "process_experiments": len(declared), "process_started_6m": recent_process,
               "process_published": published},
        None if total else "No experiment found: no test has enrollments in two or more arms "
                           "and no process experiment is declared.")
    out.per_quarter = quarters
    return out


QUARTERS = 4


def _quarters(declared: list[Any], now: dt.datetime) -> list[dict[str, Any]]:
    """Declared process experiments and their published verdicts per quarter they started
    in, for the last QUARTERS quarters that had any (oldest first)."""
    by: dict[str, dict[str, Any]] = {}
    for start, verdict in declared:
        if start > now:
            continue
        key = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        row = by.setdefault(key, {"quarter": key, "declared": 0, "published": 0})
        row["declared"] += 1
        row["published"] += int(verdict in CONCLUDED)
    return [by[k] for k in sorted(by)][-QUARTERS:]


def _agent_human(s: Session, now: dt.datetime) -> Measured:
    open_ = Proposal.status != "superseded"
    total, stale, noted = (int(v or 0) for v in s.execute(select(
        func.count(Proposal.id),
        func.count(case((and_(Proposal.status == "pending",
                              Proposal.created_at < now - dt.timedelta(days=14)), Proposal.id))),
        func.count(case((and_(Proposal.decided_at.is_not(None),
                              func.length(func.coalesce(Proposal.decision_note, "")) > 0),
                         Proposal.id))),
    ).where(open_)).one())
    waits = [(d - c).total_seconds() / 86400 for c, d in s.execute(
        select(Proposal.created_at, Proposal.decided_at).where(
            open_, Proposal.decided_at.is_not(None))) if d is not None]
    median = statistics.median(waits) if waits else 0.0
    delivered, dead = _delivery(s)
    prompt = (total - stale) / total if total else 0.0
    return _result([
        (prompt >= 0.8, f"{_pct(total - stale, total, 'proposals')} were decided or are under 14 "
                        f"days old; {stale:,} waited longer."),
        (bool(waits) and median <= 7, f"Median time to decision: {median:.1f} days over "
                                      f"{len(waits):,} decisions."),
        (bool(waits) and noted >= 0.5 * len(waits),
         f"{_pct(noted, len(waits), 'decisions')} carry a note."),
        (delivered > 0 and delivered >= 0.95 * (delivered + dead),
         f"{_pct(delivered, delivered + dead, 'write-backs')} were delivered."),
    ], total, {"proposals": total, "stale_pending": stale, "decided": len(waits),
               "median_days": round(median, 2), "with_note": noted, "delivered": delivered,
               "dead": dead}, None if total else "No proposals have been made yet.")


def measure(session: Session, now: dt.datetime | None = None) -> dict[str, Measured]:
    """Score the six dimensions 1-5 from the store (SQL aggregates), in DIMENSIONS order."""
    now = now or utcnow()
    return {"signal_capture": _signal(session, now),
            "feedback_loop_integrity": _feedback(session, now),
            "planned_vs_actual": _planned_vs_actual(session, now),
            "institutional_memory": _memory(session),
            "experimentation_cadence": _experiments(session, now),
            "agent_human_loop": _agent_human(session, now)}


def maturity(total: int) -> str:
    """The maturity level of a total over six dimensions (6..30); see BANDS."""
    if not 6 <= total <= 30:
        raise ValueError(f"an audit total is between 6 and 30, not {total}")
    return next(name for top, name in BANDS if total <= top)


def placement(scores: Mapping[str, int]) -> Placement:
    """Where the scores sit on the 2x2 of team x organisational learning."""
    team = statistics.fmean(scores[k] for k in TEAM)
    org = statistics.fmean(scores[k] for k in ORG)
    name, description = QUADRANTS[(team >= 3, org >= 3)]
    return Placement(round(team, 2), round(org, 2), name, description)


def quadrant(scores: Mapping[str, int]) -> str:
    """The name of the 2x2 quadrant the scores fall in."""
    return placement(scores).quadrant


def _validate(self_scores: Mapping[str, int]) -> dict[str, int]:
    for key in self_scores:
        if key not in DIMENSIONS:
            raise ConfigError(f"unknown audit dimension {key!r}; expected {', '.join(KEYS)}")
    for key in KEYS:
        value = self_scores.get(key)
        if value is None:
            raise ConfigError(f"self score for {key!r} is missing (give a whole number 1-5)")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ConfigError(f"self score for {key!r} must be a whole number 1-5, not {value!r}")
    return {k: int(self_scores[k]) for k in KEYS}


def record(session: Session, self_scores: Mapping[str, int], by: str,
           now: dt.datetime | None = None) -> Audit:
    """Validate the self scores, measure the store and store both as one Audit.

    Raises:
        ConfigError: naming the first dimension whose self score is missing or not 1-5.
    """
    scores = _validate(self_scores)
    now = now or utcnow()
    measured = measure(session, now)
    stored: dict[str, Any] = {k: asdict(m) for k, m in measured.items()}
    m_scores = {k: m.score for k, m in measured.items()}
    m_place = placement(m_scores)
    stored["_summary"] = {"total": sum(m_scores.values()),
                          "maturity_level": maturity(sum(m_scores.values())),
                          "quadrant": m_place.quadrant, "team": m_place.team, "org": m_place.org}
    audit = Audit(created_at=now, created_by=by, self_scores=scores, measured_scores=stored,
                  total=sum(scores.values()), maturity_level=maturity(sum(scores.values())),
                  quadrant=quadrant(scores))
    session.add(audit)
    session.flush()
    return audit


def latest(session: Session) -> Audit | None:
    """The most recent audit, or None."""
    return session.scalars(select(Audit).order_by(Audit.created_at.desc(), Audit.id.desc())
                           .limit(1)).first()
