"""Playbook rules from outreach in the store: proposed, accepted into a sequence template,
then tested against new evidence and revised."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import policy
from core.contract import ItemRecord
from core.learning.run import run_learning
from core.model import Finding, Proposal, Template
from core.store import unit_of_work
from tests.core.learning_data import load

CAPS = {"list": frozenset({"fields"})}


def _enrollments(n: int, start: dt.datetime, fin_best: str, seed: int,
                 prefix: str, assignment: str = "random") -> list[ItemRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        industry = rng.choice(["fin", "retail"])
        variant = rng.choice(["A", "B"])
        p = 0.35 if (industry == "fin" and variant == fin_best) else 0.1
        out.append(ItemRecord(
            external_id=f"{prefix}-{i}", kind="enrollment", status="done",
            segments={"sequence": "seq1", "variant": variant, "industry": industry,
                      "account": f"acct-{i % 40}", "assignment": assignment},
            estimated_at=start + dt.timedelta(minutes=i),
            outcome="replied" if rng.random() < p else "no reply"))
    return out


def test_playbook_rule_is_proposed_accepted_and_then_challenged(engine: Engine) -> None:
    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    first = _enrollments(4000, past, "B", seed=1, prefix="E")
    load(engine, first)
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
    load(engine, [*first, *_enrollments(4000, later, "A", seed=2, prefix="L")])
    run_learning(engine, CAPS)
    with unit_of_work(engine) as s:
        check = s.scalars(select(Finding).where(Finding.kind == "assumption")).one()
        assert "failed for" in check.statement and "A won" in check.statement
        switch = s.scalars(select(Proposal).where(
            Proposal.dedupe_key == "playbook:seq1:industry=fin",
            Proposal.status == "pending")).one()
        assert switch.change["new"]["variant"] == "A" and switch.change["old"]["variant"] == "B"


def test_observational_outreach_only_yields_hypotheses(engine: Engine) -> None:
    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    load(engine, _enrollments(4000, past, "B", seed=3, prefix="O", assignment="rep choice"))
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

    past = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    recs = [dataclasses.replace(r, outcome=None)
            for r in _enrollments(400, past, "B", seed=5, prefix="V")]
    events = [EventRecord(r.external_id, f"{r.external_id}:reply", past, "reply received")
              for r in recs[:40]]
    events += [EventRecord(r.external_id, f"{r.external_id}:meet", past, "meeting booked")
               for r in recs[:10]]
    load(engine, recs, events=events)
    with unit_of_work(engine) as s:
        (stored,) = from_store(s)
    arms = stored.experiment.arms
    assert sum(m["reply"].total for m in arms.values()) == 40
    assert sum(m["meeting"].total for m in arms.values()) == 10
    assert sum(m["reply"].n for m in arms.values()) == 400
