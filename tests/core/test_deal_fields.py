"""Win probabilities and recommended variants in the quiet per-item values: an open deal's
chance to be won from the won/lost model, and the variant to send to its (linked) segment from
an accepted playbook or a randomised test's segment finding."""

from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import insights, policy
from core.contract import (
    FIELDS,
    EnrollmentRecord,
    FieldsPayload,
    ItemRecord,
    LinkRecord,
    PayloadError,
    WriteTarget,
)
from core.learning.run import queue_writeback, run_learning
from core.model import Finding, Forecast, Item, Proposal, Rule, WriteIntent
from core.store import unit_of_work
from tests.core.learning_data import load

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
AS_OF = T0 + dt.timedelta(days=240)  # before the open deals' planned close dates
WIN_RATE = {"EU": 0.85, "US": 0.15}
COMPANIES = 40  # even ones are in financial services ("fin"), odd ones in retail
ACCOUNTS = 200
TARGETS = {"list": (WriteTarget("win_probability", "number", FIELDS, "win probability"),
                    WriteTarget("recommended_variant", "text", FIELDS, "variant to send"),
                    WriteTarget("insight", "text", FIELDS, "one line"))}
QUIET = {"list": (WriteTarget("forecast_p80", "number", FIELDS, "P80"),
                  WriteTarget("risk", "text", FIELDS, "risk band"))}


def _deals(n: int = 140, open_from: int = 110, seed: int = 4
           ) -> tuple[list[ItemRecord], list[LinkRecord]]:
    """Deals without an industry of their own, each linked to a company that has one."""
    rng = random.Random(seed)
    items = [ItemRecord(f"CO-{c}", kind="company", title=f"company {c}",
                        segments={"industry": ("fin", "retail")[c % 2]})
             for c in range(COMPANIES)]
    links = []
    for i in range(n):
        region = rng.choice(["EU", "US"])
        created = T0 + dt.timedelta(days=2 * i)
        close = created + dt.timedelta(days=30)
        is_open = i >= open_from
        won = rng.random() < WIN_RATE[region]
        items.append(ItemRecord(
            f"D-{i}", kind="deal", title=f"deal {i}", segments={"region": region},
            status="open" if is_open else "done",
            outcome=None if is_open else ("won" if won else "lost"),
            estimated_at=created, planned_due=close,
            actual_end=None if is_open else close + dt.timedelta(days=rng.randint(0, 9))))
        links.append(LinkRecord(f"D-{i}", f"CO-{i % COMPANIES}", "company"))
    return items, links


def _enrollments(n: int = 4000, seed: int = 1) -> tuple[list[ItemRecord],
                                                        list[EnrollmentRecord]]:
    """A randomised test 'seq1': in financial services variant B gets 3.5x the replies."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    items, enrolled = [], []
    for i in range(n):
        account = i % ACCOUNTS
        industry = ("fin", "retail")[account % 2]
        variant = rng.choice(["A", "B"])
        p = 0.35 if (industry == "fin" and variant == "B") else 0.1
        when = start + dt.timedelta(minutes=i)
        items.append(ItemRecord(
            f"E-{i}", kind="enrollment", status="done", segments={"industry": industry},
            estimated_at=when, outcome="replied" if rng.random() < p else "no reply"))
        enrolled.append(EnrollmentRecord(f"E-{i}", "seq1", variant, unit=f"acct-{account}",
                                         assigned_at=when, random=True))
    return items, enrolled


def _fields(engine: Engine) -> dict[str, dict[str, Any]]:
    """The newest FIELDS payload queued per item external id."""
    with unit_of_work(engine) as s:
        rows = s.execute(select(Item.external_id, WriteIntent.payload)
                         .join(WriteIntent, WriteIntent.item_id == Item.id)
                         .where(WriteIntent.surface == FIELDS).order_by(WriteIntent.id))
        return {ext: dict(payload) for ext, payload in rows}


def test_open_deals_get_win_probabilities_and_linked_segments_their_variant(
        engine: Engine) -> None:
    deals, links = _deals()
    enrolled_items, enrolled = _enrollments()
    load(engine, [*deals, *enrolled_items], enrollments=enrolled, links=links)
    report = run_learning(engine, TARGETS, as_of=AS_OF)
    assert report.models["deal/won"]["dimension"] == "region"
    fields = _fields(engine)
    with unit_of_work(engine) as s:
        won = {ext: p for ext, p in s.execute(
            select(Item.external_id, Forecast.probability).join(Item, Item.id == Forecast.item_id)
            .where(Forecast.measure == "win"))}
        region = {i.external_id: i.segments["region"] for i in s.scalars(
            select(Item).where(Item.kind == "deal"))}
    open_deals = [f"D-{i}" for i in range(110, 140)]
    assert sorted(won) == sorted(open_deals)
    for ext in open_deals:
        got = fields[ext]
        assert got["win_probability"] == pytest.approx(won[ext], abs=5e-4)
        assert "win probability " in got["insight"] and "80% interval" in got["insight"]
        assert f"{got['win_probability']:.0%}" in got["insight"] and "n=" in got["insight"]
    eu = [fields[e]["win_probability"] for e in open_deals if region[e] == "EU"]
    us = [fields[e]["win_probability"] for e in open_deals if region[e] == "US"]
    assert min(eu) > 0.6 > 0.4 > max(us)
    # A finished deal has no win probability (the property is cleared).
    recent = [e for e in fields if e.startswith("D-") and e not in open_deals]
    assert recent and all(fields[e]["win_probability"] is None for e in recent)
    # The variant comes from the test's finding for financial services, reached through the
    # deal's company link (the deal has no industry of its own); retail has none.
    for ext in open_deals:
        fin = int(ext[2:]) % COMPANIES % 2 == 0
        assert fields[ext]["recommended_variant"] == ("B" if fin else None), ext
        if fin:
            assert "send B ('seq1', industry=fin: B beats A on reply" in fields[ext]["insight"]
    assert fields["CO-0"]["recommended_variant"] == "B"  # the company itself, in fin
    assert "CO-1" not in fields  # nothing learned about a retail company: nothing written

    # The owner accepts the playbook: from then on the accepted rule is the recommendation.
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(
            Proposal.dedupe_key == "playbook:seq1:industry=fin")).one()
        policy.accept(s, prop.id, "owner@example.com", "ok")
        queue_writeback(s, TARGETS, as_of=AS_OF)
    after = _fields(engine)
    assert after["D-110"]["recommended_variant"] == "B"  # company CO-30, in fin
    assert "playbook for industry=fin in 'seq1', accepted by owner@example.com" in \
        after["CO-0"]["insight"]


def test_a_connector_that_does_not_declare_them_gets_neither(engine: Engine) -> None:
    deals, links = _deals()
    load(engine, deals, links=links)
    run_learning(engine, QUIET, as_of=AS_OF)
    fields = _fields(engine)
    assert fields and all(set(p) <= {"forecast_p80", "risk"} for p in fields.values())


def _rule(key: str, selector: dict[str, str], variant: str, n: int) -> Rule:
    return Rule(key=key, selector=selector, params={"variant": variant, "n": n},
                hypothesis=f"{selector} reply best to {variant}", owner="ann", evidence={})


def _finding(kind: str, segment: dict[str, str], best: str, impact: float) -> Finding:
    return Finding(kind=kind, measure="reply", segment=segment, impact=impact,
                   statement=f"{segment}: {best} wins (n=100)",
                   evidence={"test": "seq1", "best_arm": best})


def test_variant_index_prefers_policy_then_the_most_specific_segment() -> None:
    rules = {"p1": _rule("playbook:seq1:industry=fin", {"industry": "fin", "test": "seq1"},
                         "B", 400),
             "e1": _rule("effort:type=Bug", {"type": "Bug"}, "X", 10)}  # not a playbook
    findings = [_finding("experiment", {"industry": "fin", "seniority": "vp"}, "C", 9.0),
                _finding("experiment", {"region": "EU"}, "D", 5.0),
                _finding("hypothesis", {"region": "US"}, "E", 50.0)]  # observational: never
    index = insights.VariantIndex(rules, findings)
    fin_vp = index.match({"industry": "fin", "seniority": "vp", "region": "EU"})
    assert fin_vp is not None and (fin_vp.variant, fin_vp.policy) == ("B", True)
    assert "accepted by ann" in fin_vp.why and "n=400" in fin_vp.why
    eu = index.match({"region": "EU", "seniority": "vp"})
    assert eu is not None and (eu.variant, eu.test, eu.policy) == ("D", "seq1", False)
    assert index.match({"region": "US"}) is None and index.match({}) is None
    only_findings = insights.VariantIndex({}, findings)
    best = only_findings.match({"industry": "fin", "seniority": "vp", "region": "EU"})
    assert best is not None and best.variant == "C"  # two columns beat one
    assert not insights.VariantIndex({}, [])


def test_win_probability_is_a_probability() -> None:
    assert FieldsPayload(win_probability=0.42, recommended_variant="B").json_of(
        ["win_probability", "recommended_variant", "risk"]) == {
        "win_probability": 0.42, "recommended_variant": "B"}
    with pytest.raises(PayloadError, match="win_probability"):
        FieldsPayload.from_json({"win_probability": 1.5})
    item = Item(kind="deal", status="open", external_id="D-1", segments={})
    known = SimpleNamespace(probability=0.6667, n=40, low=0.55, high=0.77)
    ins = insights.for_item(item, None, None, {}, insights.FindingIndex([], "effort"),
                            cast(Any, known))
    assert ins.fields.win_probability == 0.667
    assert ins.fields.insight == "win probability 67% (80% interval 55%-77%, n=40)"
    # From the ledger alone (no n, no interval) the value is written, not the words.
    bare = SimpleNamespace(probability=0.6667)
    ins = insights.for_item(item, None, None, {}, insights.FindingIndex([], "effort"),
                            cast(Any, bare))
    assert ins.fields.win_probability == 0.667 and ins.fields.insight is None
