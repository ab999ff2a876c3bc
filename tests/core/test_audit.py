"""The learning audit: measured scores from the store, maturity bands, quadrant, recording."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core import audit
from core.errors import ConfigError
from core.model import (
    Connection,
    Enrollment,
    Event,
    Finding,
    Forecast,
    Item,
    LearningRun,
    Policy,
    Proposal,
    Rule,
    Template,
    WriteIntent,
)
from core.store import unit_of_work

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
ALL3 = dict.fromkeys(audit.KEYS, 3)


def _rich_store(s: Session, covered: int = 32) -> None:
    """A well-run store: 52 finished items captured, forecast, scored, 6 experiments this
    half-year, decided proposals, a revised policy and template, write-backs delivered."""
    conn = Connection(kind="fake", name="fake", last_sync_at=NOW - DAY)
    s.add(conn)
    s.flush()
    items = []
    for i in range(40):
        items.append(Item(connection_id=conn.id, external_id=f"T-{i}", status="done",
                          planned_estimate=4.0, actual_effort=5.0, estimated_at=NOW - 60 * DAY))
    for t in range(6):
        for arm in ("A", "B"):
            items.append(Item(connection_id=conn.id, external_id=f"E-{t}-{arm}", kind="enrollment",
                              status="done", segments={"sequence": f"seq{t}", "variant": arm},
                              expected_outcome="reply", outcome="no reply",
                              planned_at=NOW - (20 + 20 * t) * DAY))
    s.add_all(items)
    s.flush()
    s.add_all(Enrollment(connection_id=conn.id, item_id=i.id, test=i.segments["sequence"],
                         arm=i.segments["variant"]) for i in items if i.kind == "enrollment")
    run = LearningRun(model_version="m1", status="ok", started_at=NOW - 2 * DAY)
    s.add(run)
    s.flush()
    for n, item in enumerate(items):
        s.add(Event(connection_id=conn.id, item_id=item.id, external_id=f"ev{n}",
                    occurred_at=NOW - 30 * DAY, kind="created"))
    for n, item in enumerate(items[:40]):
        s.add(Forecast(item_id=item.id, run_id=run.id, measure="effort", model_version="m1",
                       p50=4.0, p80=6.0 if n < covered else 4.5, p90=7.0, actual=5.0,
                       issued_at=NOW - 50 * DAY, scored_at=NOW - 10 * DAY,
                       score={"covered": {"p50": False, "p80": n < covered, "p90": True}}))
    for n in range(20):
        s.add(WriteIntent(connection_id=conn.id, item_id=items[n].id, target=f"T-{n}",
                          surface="fields", idempotency_key=f"k{n}", payload_hash="h",
                          status="delivered", delivered_at=NOW - DAY))
    s.add(Finding(run_id=run.id, measure="effort", statement="Bugs take 1.25x", n=40,
                  effect=1.25, interval_low=1.1, interval_high=1.4, p_value=0.01, q_value=0.02,
                  created_at=NOW - 10 * DAY))
    s.add_all([Policy(version=1, created_at=NOW - 90 * DAY), Policy(version=2)])
    s.flush()
    current = s.query(Policy).filter_by(version=2).one()
    s.add(Rule(policy_id=current.id, key="estimation:type=Bug", hypothesis="Bugs take 1.25x"))
    s.add_all([Template(name="onboarding", version=1), Template(name="onboarding", version=2)])
    for n, status in enumerate(("accepted", "applied", "rejected", "applied")):
        s.add(Proposal(dedupe_key=f"p{n}", title=f"p{n}", status=status, decided_by="ann",
                       created_at=NOW - 20 * DAY, decided_at=NOW - 18 * DAY,
                       decision_note="evidence is solid" if n != 2 else None))


def test_empty_store_scores_all_ones_and_says_what_is_missing(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        measured = audit.measure(s, NOW)
    assert list(measured) == list(audit.KEYS)
    assert {k: m.score for k, m in measured.items()} == dict.fromkeys(audit.KEYS, 1)
    assert measured["signal_capture"].evidence.startswith("No items captured yet")
    assert "No proposals" in measured["agent_human_loop"].evidence
    assert "No experiment" in measured["experimentation_cadence"].evidence
    assert all(m.n == 0 and m.evidence for m in measured.values())


def test_well_run_store_scores_high_with_numbers_in_the_evidence(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        _rich_store(s)
    with unit_of_work(engine) as s:
        measured = audit.measure(s, NOW)
    assert {k: m.score for k, m in measured.items()} == dict.fromkeys(audit.KEYS, 5), {
        k: m.evidence for k, m in measured.items()}
    # the 12 enrollments are experiment units: they neither help nor drag signal capture
    assert "40 of 40 finished items (100%) have both a plan and an actual" in \
        measured["signal_capture"].evidence
    assert "40 events were captured for 40 items" in measured["signal_capture"].evidence
    assert "32 of 40 cases (80%)" in measured["planned_vs_actual"].evidence
    assert measured["planned_vs_actual"].figures["p80_coverage"] == pytest.approx(0.8)
    assert measured["experimentation_cadence"].figures["started_6m"] == 6
    assert measured["agent_human_loop"].figures["median_days"] == pytest.approx(2.0)
    assert "3 of 4 decisions (75%) carry a note" in measured["agent_human_loop"].evidence


def test_miscalibration_dead_writes_and_stale_proposals_lower_their_dimensions(
        engine: Engine) -> None:
    with unit_of_work(engine) as s:
        _rich_store(s, covered=24)  # P80 covers 60%: 20 points off
        conn_id = s.query(Connection.id).scalar()
        s.add_all([WriteIntent(connection_id=conn_id, target="x", surface="fields",
                               idempotency_key=f"d{n}", payload_hash="h", status="dead")
                   for n in range(5)])
        s.add_all([Proposal(dedupe_key=f"old{n}", title="old", created_at=NOW - 30 * DAY)
                   for n in range(4)])
    with unit_of_work(engine) as s:
        measured = audit.measure(s, NOW)
    assert measured["planned_vs_actual"].score == 3
    assert measured["feedback_loop_integrity"].score == 4
    assert measured["agent_human_loop"].score == 3  # 4 of 8 pending > 14 days, 5 dead writes
    assert "4 waited longer" in measured["agent_human_loop"].evidence
    assert measured["signal_capture"].score == 5


@pytest.mark.parametrize(("total", "level"), [
    (6, "Ad hoc"), (11, "Ad hoc"), (12, "Reactive"), (17, "Reactive"), (18, "Learning"),
    (23, "Learning"), (24, "Compounding"), (30, "Compounding")])
def test_maturity_bands(total: int, level: str) -> None:
    assert audit.maturity(total) == level


@pytest.mark.parametrize("total", [5, 31])
def test_maturity_outside_the_range_is_rejected(total: int) -> None:
    with pytest.raises(ValueError, match="between 6 and 30"):
        audit.maturity(total)


def test_quadrant_placement() -> None:
    team_high = {**ALL3, "signal_capture": 5, "planned_vs_actual": 4,
                 "feedback_loop_integrity": 1, "institutional_memory": 2, "agent_human_loop": 2}
    place = audit.placement(team_high)
    assert (place.team, place.org, place.quadrant) == (4.0, pytest.approx(1.67), "Siloed learning")
    assert place.description.endswith(".")
    assert audit.quadrant(ALL3) == "Learning organisation"  # a mean of exactly 3 is high
    assert audit.quadrant(dict.fromkeys(audit.KEYS, 2)) == "Stuck"
    org_high = {k: (1 if k in audit.TEAM else 4) for k in audit.KEYS}
    assert audit.quadrant(org_high) == "Top-down"


@pytest.mark.parametrize(("scores", "named"), [
    ({k: v for k, v in ALL3.items() if k != "agent_human_loop"}, "'agent_human_loop' is missing"),
    ({**ALL3, "signal_capture": 0}, "'signal_capture' must be a whole number 1-5, not 0"),
    ({**ALL3, "planned_vs_actual": 6}, "'planned_vs_actual'"),
    ({**ALL3, "institutional_memory": "4"}, "'institutional_memory'"),
    ({**ALL3, "experimentation_cadence": True}, "'experimentation_cadence'"),
    ({**ALL3, "speed": 3}, "unknown audit dimension 'speed'"),
])
def test_bad_self_scores_are_rejected_naming_the_key(engine: Engine, scores: dict[str, int],
                                                     named: str) -> None:
    with unit_of_work(engine) as s, pytest.raises(ConfigError, match=named):
        audit.record(s, scores, by="ann", now=NOW)


def test_record_round_trips(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        assert audit.latest(s) is None
        _rich_store(s)
        audit.record(s, ALL3, by="ann", now=NOW - DAY)
        mine = {**ALL3, "signal_capture": 5, "experimentation_cadence": 4}
        audit.record(s, mine, by="bob", now=NOW)
    with unit_of_work(engine) as s:
        got = audit.latest(s)
    assert got is not None
    assert (got.created_by, got.created_at) == ("bob", NOW)
    assert got.self_scores == mine and got.total == 21
    assert (got.maturity_level, got.quadrant) == ("Learning", "Learning organisation")
    assert got.measured_scores["_summary"] == {"total": 30, "maturity_level": "Compounding",
                                               "quadrant": "Learning organisation",
                                               "team": 5.0, "org": 5.0}
    signal = got.measured_scores["signal_capture"]
    assert signal["score"] == 5 and signal["n"] == 40 and "plan and an actual" in signal["evidence"]
