"""Playbook rules from outreach in the store: proposed, accepted into a sequence template,
then tested against new evidence and revised."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import policy
from core.contract import EnrollmentRecord, ItemRecord
from core.learning.run import run_learning
from core.model import Finding, Proposal, Template
from core.store import unit_of_work
from tests.core.learning_data import load

CAPS = {"list": frozenset({"fields"})}


ACCOUNTS = 200  # 20 enrollments per account: the account, not the enrollment, is the unit


def _enrollments(n: int, start: dt.datetime, fin_best: str, seed: int,
                 prefix: str, random_arms: bool = True
                 ) -> tuple[list[ItemRecord], list[EnrollmentRecord]]:
    rng = random.Random(seed)
    items, enrolled = [], []
    for i in range(n):
        account = i % ACCOUNTS
        industry = ("fin", "retail")[account % 2]  # an account's industry
        variant = rng.choice(["A", "B"])
        p = 0.35 if (industry == "fin" and variant == fin_best) else 0.1
        ext = f"{prefix}-{i}"
        when = start + dt.timedelta(minutes=i)
        items.append(ItemRecord(
            external_id=ext, kind="enrollment", status="done", segments={"industry": industry},
            estimated_at=when, outcome="replied" if rng.random() < p else "no reply"))
        enrolled.append(EnrollmentRecord(ext, "seq1", variant, unit=f"acct-{account}",
                                         assigned_at=when, random=random_arms))
    return items, enrolled


def test_playbook_rule_is_proposed_accepted_and_then_challenged(engine: Engine) -> None:
    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    first, first_enrolled = _enrollments(4000, past, "B", seed=1, prefix="E")
    load(engine, first, enrollments=first_enrolled)
    with unit_of_work(engine) as s:
        s.add(Template(name="outbound", kind="sequence", body={"test": "seq1"}))
    report = run_learning(engine, CAPS)
    assert any(t["test"] == "seq1" and t["randomized"] for t in report.experiments["tests"])
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(
            Proposal.dedupe_key == "playbook:seq1:industry=fin")).one()
        assert prop.change["new"]["variant"] == "B"
        assert "+segment industry=fin: send variant B" in prop.diff
        policy.accept(s, prop.id, "owner", "ok")
        tpl = s.scalars(select(Template).where(Template.name == "outbound",
                                               Template.version == 2)).one()
        assert tpl.body["rendered"][0]["variant"] == "B"
    assert not any("retail" in (p.get("title") or "") for p in report.proposals)
    # The world changes: financial-services contacts now answer variant A.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    new, new_enrolled = _enrollments(4000, later, "A", seed=2, prefix="L")
    load(engine, [*first, *new], enrollments=[*first_enrolled, *new_enrolled])
    run_learning(engine, CAPS)
    with unit_of_work(engine) as s:
        check = s.scalars(select(Finding).where(Finding.kind == "assumption")).one()
        assert "failed for" in check.statement and "A won" in check.statement
        # p and q under their own names: one rule checked, so BH leaves q equal to p here,
        # and the segment findings keep the claim's p beside its adjusted q.
        assert check.q_value == pytest.approx(check.p_value) and check.p_value < 0.05
        assert check.evidence["failed"] > check.evidence["held"]
        for f in s.scalars(select(Finding).where(Finding.kind == "experiment")):
            assert 0 <= f.p_value <= f.q_value <= 0.05
            assert f.evidence["claim_p"] == f.p_value and f.evidence["claim_q"] == f.q_value
        switch = s.scalars(select(Proposal).where(
            Proposal.dedupe_key == "playbook:seq1:industry=fin",
            Proposal.status == "pending")).one()
        assert switch.change["new"]["variant"] == "A" and switch.change["old"]["variant"] == "B"


def test_observational_outreach_only_yields_hypotheses(engine: Engine) -> None:
    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    items, enrolled = _enrollments(4000, past, "B", seed=3, prefix="O", random_arms=False)
    load(engine, items, enrollments=enrolled)
    report = run_learning(engine, CAPS)
    assert report.experiments["proposals"] == 0
    with unit_of_work(engine) as s:
        kinds = set(s.scalars(select(Finding.kind).where(Finding.measure == "reply")))
        assert kinds == {"hypothesis"}
        assert not s.scalars(select(Proposal).where(Proposal.dedupe_key.like("playbook:%"))).all()


def test_replies_and_meetings_captured_as_events_count(engine: Engine) -> None:
    import dataclasses

    from core.contract import EventRecord
    from core.experiments.learn import from_store
    from core.experiments.stats import RatioMoments

    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    items, enrolled = _enrollments(400, past, "B", seed=5, prefix="V")
    recs = [dataclasses.replace(r, outcome=None) for r in items]
    events = [EventRecord(r.external_id, f"{r.external_id}:reply", past, "reply received")
              for r in recs[:40]]
    events += [EventRecord(r.external_id, f"{r.external_id}:meet", past, "meeting booked")
               for r in recs[:10]]
    load(engine, recs, events=events, enrollments=enrolled)
    with unit_of_work(engine) as s:
        (stored,) = from_store(s)
    arms = stored.experiment.arms
    assert sum(m["reply"].total for m in arms.values()) == 40
    assert sum(m["meeting"].total for m in arms.values()) == 10
    # 400 enrollments of 200 accounts: counted per account and arm, each enrollment once
    reply = [m["reply"] for m in arms.values()]
    assert all(isinstance(m, RatioMoments) for m in reply)
    assert sum(m.den for m in reply if isinstance(m, RatioMoments)) == 400
    assert sum(m.n for m in reply) < 400
