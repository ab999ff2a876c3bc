"""Declared process experiments in the store: judged by the learning run, proposed when they
worked, kept as negative results when they did not, written back on the epic."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import audit, policy
from core.errors import ConfigError
from core.learning.run import run_learning
from core.model import Finding, Proposal, WriteIntent
from core.model.process import ProcessExperiment
from core.process import evaluate, store
from core.store import unit_of_work
from tests.core.learning_data import load
from tests.core.process_data import CHANGE, records, teams


def _declare(engine: Engine, **kw: object) -> int:
    args: dict[str, object] = {
        "name": "2-week sprints", "hypothesis": "Shorter sprints cut team A's slip.",
        "treated": "team=A", "start": CHANGE.date().isoformat(), "measures": ["slip"],
        "min_effect": 1.0, "owner": "owner@example.com"}
    args.update(kw)
    with unit_of_work(engine) as s:
        return store.declare(s, **args).id  # type: ignore[arg-type]


def test_a_planted_change_is_judged_proposed_and_adopted_through_the_policy(
        engine: Engine) -> None:
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    exp_id = _declare(engine)
    report = run_learning(engine, {"list": ["insights"]})
    assert report.process_experiments["verdicts"] == {str(exp_id): "worked"}
    with unit_of_work(engine) as s:
        exp = s.get_one(ProcessExperiment, exp_id)
        assert exp.status == "worked" and exp.verdict == "worked"
        assert exp.statement is not None
        assert exp.statement.startswith("2-week sprints cut team A's slip against the committed")
        did = exp.evidence["measures"]["slip"]["did"]
        assert did["low"] < -3.0 < did["high"] < 0
        finding = s.get_one(Finding, exp.finding_id)
        assert finding.kind == "process_experiment" and finding.run_id == report.run_id
        assert finding.segment == {"team": "A"} and finding.n == did["counts"]["treated_pre"] \
            + did["counts"]["treated_post"]
        proposal = s.get_one(Proposal, exp.proposal_id)
        assert proposal.title == "Extend 2-week sprints to team B, C, D, E and F"
        assert {"id": proposal.id, "title": proposal.title} in report.proposals
        assert any(f["id"] == finding.id for f in report.findings)
        (page,) = s.scalars(select(WriteIntent).where(WriteIntent.surface == "insights")).all()
        assert [exp.statement] == [r[0] for r in page.payload["rows"]
                                   if r[0].startswith("2-week sprints")]
        version = policy.current_policy(s).version
        policy.accept(s, proposal.id, "owner@example.com", "extend it")
        rule = policy.active_rules(s)[evaluate.rule_key(exp)]
        assert rule.kind == "process" and rule.selector == {"team": ["B", "C", "D", "E", "F"]}
        assert policy.current_policy(s).version == version + 1
    run_learning(engine)  # judged again; a decided proposal is not made again
    with unit_of_work(engine) as s:
        assert s.scalars(select(Proposal).where(
            Proposal.dedupe_key == f"process:{exp_id}")).all()[-1].status == "accepted"


def test_a_change_that_did_nothing_is_kept_as_a_negative_result(engine: Engine) -> None:
    load(engine, records(teams(8, effect=0.0, per_week=4, post_weeks=25)))
    exp_id = _declare(engine, min_effect=3.0)
    with unit_of_work(engine) as s:
        summary = evaluate.evaluate_all(s, None, permutations=199)
        exp = s.get_one(ProcessExperiment, exp_id)
        assert summary["verdicts"][str(exp_id)] in ("failed", "inconclusive")
        assert exp.verdict != "worked" and exp.proposal_id is None
    with unit_of_work(engine) as s:
        assert [e.id for e in store.listing(s)] == [exp_id]  # never deleted


def test_not_enough_data_yet_is_said_with_how_many_more(engine: Engine) -> None:
    few = [i for i in teams(9, per_week=2) if i.when < 10]
    load(engine, records(few))
    exp_id = _declare(engine)
    with unit_of_work(engine) as s:
        evaluate.evaluate_all(s, None, permutations=199)
        exp = s.get_one(ProcessExperiment, exp_id)
        assert exp.verdict == "not_enough_data" and exp.finding_id is None
        assert exp.statement is not None and "more finished items needed" in exp.statement


def test_unknown_treated_values_are_named(engine: Engine) -> None:
    load(engine, records(teams(9, per_week=1, pre_weeks=4, post_weeks=2)))
    exp_id = _declare(engine, treated="team=Z")
    with unit_of_work(engine) as s:
        evaluate.evaluate_all(s, None, permutations=199)
        exp = s.get_one(ProcessExperiment, exp_id)
        assert exp.statement is not None
        assert "no finished item matches team=Z (values seen: team: A, B, C, D, E, F)" \
            in exp.statement


def test_a_measure_of_another_kind_is_named(engine: Engine) -> None:
    load(engine, records(teams(9, per_week=1, pre_weeks=4, post_weeks=2)))
    exp_id = _declare(engine, measures=["reply_rate"], min_effect=2.0)
    with unit_of_work(engine) as s:
        evaluate.evaluate_all(s, None, permutations=199)
        statement = s.get_one(ProcessExperiment, exp_id).statement
        assert statement == ("2-week sprints: reply rate is measured on enrollment items; the "
                             "items of team=A are task items")


def test_a_failing_experiment_does_not_stop_the_run(engine: Engine) -> None:
    load(engine, records(teams(10, per_week=1, pre_weeks=4, post_weeks=2)))
    exp_id = _declare(engine)
    with unit_of_work(engine) as s:  # a stored measure nobody knows: this one fails alone
        s.get_one(ProcessExperiment, exp_id).measures = ["no such measure"]
    good = _declare(engine)
    report = run_learning(engine)
    assert any(f"process experiment #{exp_id}" in x for x in report.left_out)
    assert str(good) in report.process_experiments["verdicts"]


BAD = [
    ("treated", "team", "treated: 'team' is not KEY=VALUE"),
    ("measures", ["speed"], "unknown measure 'speed'"),
    ("start", "March", "start 'March' is not a date"),
    ("min_effect", -1.0, "minimum effect -1.0"),
    ("direction", "sideways", "direction 'sideways'"),
    ("end", "2020-01-01", "end 2020-01-01 is not after the start"),
    ("name", " ", "name is empty"),
]


def test_bad_declarations_say_what_is_wrong(engine: Engine) -> None:
    for field, value, message in BAD:
        with pytest.raises(ConfigError, match=message):
            _declare(engine, **{field: value})
    with unit_of_work(engine) as s:
        assert store.listing(s) == []


def test_the_verdict_is_written_on_the_epic_once_per_change_of_verdict(engine: Engine) -> None:
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    exp_id = _declare(engine, epic="PAY-1")
    with unit_of_work(engine) as s:
        summary = evaluate.evaluate_all(s, None, {"list": ["comment"]}, permutations=199)
        assert summary["writes"] == 1
    with unit_of_work(engine) as s:
        again = evaluate.evaluate_all(s, None, {"list": ["comment"]}, permutations=199)
        assert again["writes"] == 0  # same verdict: the comment is left alone
        (write,) = s.scalars(select(WriteIntent).where(WriteIntent.target == "PAY-1")).all()
        assert write.surface == "comment" and write.payload["topic"] == f"process-experiment-{exp_id}"
        assert write.payload["text"].startswith(f"learnloop process experiment #{exp_id}: "
                                                "2-week sprints (team A from 2025-03-03)")
        assert "Verdict (worked): 2-week sprints cut team A's slip" in write.payload["text"]


def test_the_audit_counts_experiments_verdicts_and_policy_changes(engine: Engine) -> None:
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    first = _declare(engine)
    _declare(engine, name="no estimates", treated="team=B", start="2025-05-05")
    now = CHANGE + dt.timedelta(days=120)
    with unit_of_work(engine) as s:
        evaluate.evaluate_all(s, None, permutations=199)
        cadence = audit.measure(s, now)["experimentation_cadence"]
        assert cadence.figures["process_experiments"] == 2
        assert cadence.figures["process_started_6m"] == 2
        assert cadence.figures["process_published"] >= 1
        assert cadence.per_quarter[0] == {"quarter": "2025-Q1", "declared": 1, "published": 1}
        assert cadence.per_quarter[1]["quarter"] == "2025-Q2"
        assert "2 declared process experiments" in cadence.evidence
        assert cadence.score == 3  # 1, +1 for having any, +1 for one started in 6 months
        feedback = audit.measure(s, now)["feedback_loop_integrity"]
        assert feedback.figures["changed_policy_process_experiments"] == 0
        proposal_id = s.get_one(ProcessExperiment, first).proposal_id
        assert proposal_id is not None
        policy.accept(s, proposal_id, "owner@example.com")
        feedback = audit.measure(s, now)["feedback_loop_integrity"]
        assert feedback.figures["changed_policy_process_experiments"] == 1
        assert "Changed the policy through an accepted proposal: 1 process experiments." \
            in feedback.evidence
