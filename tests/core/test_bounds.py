"""No single record stops learning: extreme values are quarantined or shortened at sync, and a
learning run leaves out what it cannot handle, says so, and goes on."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core import bounds, outbox, policy
from core.contract import FIELDS, EventRecord, ItemRecord
from core.errors import LearnloopError
from core.learning.run import RunReport, _isolated, run_learning
from core.model import Connection, Event, Item, LearningRun, Policy, Proposal, QuarantinedRow
from core.store import unit_of_work
from tests.core.learning_data import T0, load, records

LONG = "x" * 10_000
TARGETS = {"list": [FIELDS]}


def _extremes() -> tuple[list[ItemRecord], list[EventRecord]]:
    """300 ordinary tasks, 60 of them in a team with a 10,000-character name that runs three
    times over, and rows with every kind of out-of-range value."""
    recs = records(300, seed=2)
    for i in range(60):
        r = recs[i]
        recs[i] = dataclasses.replace(
            r, title=LONG, segments={**r.segments, "team": LONG + "team"},
            actual_effort=None if r.actual_effort is None else r.actual_effort * 3)
    far = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
    recs += [
        ItemRecord("FAR", "far", status="open", planned_due=far, planned_estimate=3.0,
                   estimated_at=T0, segments={"type": "Bug", "team": "A"}),
        ItemRecord("ANCIENT", "ancient", status="done", planned_estimate=2.0, actual_effort=3.0,
                   estimated_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC), actual_end=T0),
        ItemRecord("NAN", "nan", status="done", planned_estimate=float("nan"),
                   actual_effort=float("inf"), estimated_at=T0, actual_end=T0,
                   raw={"Estimate": float("nan")}),
        ItemRecord("HUGE", "huge", status="done", planned_estimate=2.0, actual_effort=1e308,
                   estimated_at=T0, actual_end=T0),
        ItemRecord("NEGATIVE", "negative", status="done", planned_estimate=-5.0,
                   actual_effort=3.0, estimated_at=T0, actual_end=T0),
        ItemRecord("E" * 500, "long id", status="open", planned_estimate=2.0, estimated_at=T0),
        ItemRecord("JS", "js", url="javascript:alert(1)", status="open", planned_estimate=2.0,
                   estimated_at=T0, kind="k" * 400, segments={"s" * 400: "v"}),
    ]
    events = [
        EventRecord("T-299", "ev-" + "9" * 1000, T0, "estimate_changed", actor="a" * 500,
                    attributes={"from": 1.0, "to": float("nan")}),
        EventRecord("T-298", "ev-far", far, "estimate_changed"),
    ]
    return recs, events


def test_extreme_values_are_quarantined_or_shortened_and_learning_goes_through(
        engine: Engine) -> None:
    recs, events = _extremes()
    connector = load(engine, recs, events=events)
    with unit_of_work(engine) as s:
        reasons = dict(s.execute(select(QuarantinedRow.locator, QuarantinedRow.reason)).all())
        stored = {i.external_id: i for i in s.scalars(select(Item))}
        assert "planned_due 9999-12-30" in reasons["FAR"] and "1900-2200" in reasons["FAR"]
        assert "estimated_at 0001-01-01" in reasons["ANCIENT"]
        assert "planned_estimate is nan" in reasons["NAN"]
        assert "actual_effort is inf" in reasons["NAN"]
        assert "actual_effort 1e+308 is beyond" in reasons["HUGE"]
        long_id = next(k for k in reasons if k.startswith("EEE"))
        assert "500 characters long" in reasons[long_id] and len(long_id) <= 300
        assert "ev-far" in reasons and "occurred_at 9999-12-30" in reasons["ev-far"]
        assert {"FAR", "ANCIENT", "NAN", "HUGE"}.isdisjoint(stored)
        assert stored["NEGATIVE"].planned_estimate == -5.0  # finite: kept, never learned from
        js = stored["JS"]
        assert js.url is None and len(js.kind) == 50 and all(len(k) <= 40 for k in js.segments)
        team = stored["T-0"].segments["team"]
        assert len(team) == 100 and team == bounds.shorten(LONG + "team", 100) != LONG[:100]
        assert stored["T-0"].title == LONG
        event = s.scalars(select(Event).where(Event.external_id.startswith("ev-9"))).one()
        assert len(event.external_id) == 300 and len(event.actor or "") == 200
        assert event.attributes == {"from": 1.0, "to": "nan"}
    load(engine, recs, events=events)  # a second sync finds the same, shortened, event
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1

    report = run_learning(engine, TARGETS)
    assert report.left_out == []
    assert report.writes_queued > 0
    with unit_of_work(engine) as s:
        props = list(s.scalars(select(Proposal)))
        long_team = [p for p in props if p.change["selector"].get("team", "").startswith("xxx")]
        assert long_team, "the long team runs three times over: a proposal for it"
        assert all(len(p.dedupe_key) <= 300 for p in props)
    delivered = outbox.deliver(engine, lambda conn: connector)
    assert delivered.delivered == report.writes_queued and delivered.dead == 0


def test_a_store_with_out_of_range_rows_from_an_older_release_still_learns(
        engine: Engine) -> None:
    """Rows stored before these checks existed: the run leaves the item out and says why."""
    load(engine, records(300, seed=2))
    with unit_of_work(engine) as s:
        conn_id = s.scalars(select(Connection.id)).one()
        s.add(Item(connection_id=conn_id, external_id="FAR", status="open", planned_estimate=3.0,
                   estimated_at=T0, planned_due=dt.datetime(9999, 12, 30),
                   segments={"type": "Bug", "team": "A"}))
    report = run_learning(engine, TARGETS)
    assert len(report.left_out) == 1, report.left_out
    assert report.left_out[0].startswith("item FAR:") and "out of range" in report.left_out[0]
    assert report.writes_queued > 0
    with unit_of_work(engine) as s:
        assert s.scalars(select(LearningRun.status)).one() == "ok"


def test_a_failing_step_is_rolled_back_to_its_savepoint_and_reported(engine: Engine) -> None:
    report = RunReport(run_id=0)

    def broken() -> None:
        with unit_of_work(engine) as other:
            other.add(Policy(version=1, created_by="x"))
        s.add(Policy(version=1, created_by="y"))  # the same version: refused by the store
        s.flush()

    with unit_of_work(engine) as s:
        assert _isolated(s, report, "the proposal for segment team=A", broken) is None
        s.add(Policy(version=2, created_by="z"))  # the session goes on after the failure
    assert len(report.left_out) == 1
    assert report.left_out[0].startswith("the proposal for segment team=A: ")
    assert "INSERT" not in report.left_out[0] and len(report.left_out[0]) < 400
    with unit_of_work(engine) as s:
        assert sorted(s.scalars(select(Policy.created_by))) == ["x", "z"]


@pytest.mark.parametrize(("edit", "message"), [
    ({"p80": float("nan")}, "p80 is nan"),
    ({"p80": float("inf")}, "p80 is inf"),
    ({"p50": -5.0}, "p50 is -5"),
    ({"p90": 1e308}, "p90 is 1e+308"),
    ({"p50": 3.0, "p80": 2.0}, "out of order"),
    ({"p80": "a lot"}, "p80 must be a number"),
])
def test_accepting_refuses_multipliers_that_are_not_finite_and_ordered(
        engine: Engine, edit: dict[str, object], message: str) -> None:
    load(engine, records(600, seed=2))
    run_learning(engine, TARGETS)
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(Proposal.status == "pending")).first()
        assert prop is not None
        prop_id, before = prop.id, dict(prop.change["new"])
    with (pytest.raises(LearnloopError, match="0 < p50 <= p80 <= p90 < 100") as caught,
          unit_of_work(engine) as s):
        policy.accept(s, prop_id, "owner", params=edit)  # type: ignore[arg-type]
    assert message in str(caught.value)
    with unit_of_work(engine) as s:
        prop = s.get_one(Proposal, prop_id)
        assert prop.status == "pending" and prop.change["new"] == before
        assert policy.current_policy(s).version == 1
        ok = {"p50": 1.2, "p80": 1.5, "p90": 1.5}
        assert policy.accept(s, prop_id, "owner", params=ok).version == 2


def test_shorten_is_stable_and_keeps_distinct_values_distinct() -> None:
    a, b = "v" * 500 + "a", "v" * 500 + "b"
    assert bounds.shorten(a, 100) == bounds.shorten(a, 100) != bounds.shorten(b, 100)
    assert len(bounds.shorten(a, 100)) == 100 and bounds.shorten("short", 100) == "short"
    assert bounds.safe_url(" https://x.example/1 ") == "https://x.example/1"
    assert [bounds.safe_url(u) for u in ("javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x",
                                         "ftp://x", "//x.example", "https://")] == [None] * 6
