"""The forecast ledger's reports, its feedback into forecasts, the gap trend, group forecasts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from core.learning import ledger
from core.learning.gap import gap_by_cycle
from core.learning.montecarlo import _sample_curves, group_forecast
from core.learning.run import run_learning
from core.model import Forecast, Item
from core.store import unit_of_work
from tests.core.learning_data import load, records

CAPS = {"list": frozenset({"fields"})}


def _finish_all(recs, factor_for_bug: float, seed: int = 0):
    rng = random.Random(seed)
    out = []
    for r in recs:
        if r.status != "open":
            out.append(r)
            continue
        f = factor_for_bug if r.segments["type"] == "Bug" else 1.0
        out.append(dataclasses.replace(
            r, status="done", actual_effort=r.planned_estimate * f * math.exp(rng.gauss(0.1, 0.4)),
            actual_end=r.planned_due + dt.timedelta(days=1)))
    return out


def test_report_per_cycle_and_segment_with_intervals(engine: Engine) -> None:
    recs = records(800, seed=9, open_share=0.25)
    load(engine, recs)
    run_learning(engine, CAPS)
    load(engine, _finish_all(recs, 2.0))
    run_learning(engine, CAPS)
    with unit_of_work(engine) as s:
        rep = ledger.report(s)
    assert rep["overall"]["n"] == 200
    assert [c["run_id"] for c in rep["cycles"]] == [1]
    p80 = rep["overall"]["p80"]
    assert p80["interval_90"][0] <= p80["coverage"] <= p80["interval_90"][1]
    assert "type=Bug" in rep["segments"] and rep["segments"]["type=Bug"]["n"] >= 20
    assert sum(rep["overall"]["pit_histogram"]) == 200


def test_a_segment_whose_p80_keeps_failing_is_recalibrated(engine: Engine) -> None:
    recs = records(1200, seed=10, open_share=0.3)
    load(engine, recs)
    run_learning(engine, CAPS)
    # The world changes: bugs now take three times as long as the model learned.
    load(engine, _finish_all(recs, 6.0))
    with unit_of_work(engine) as s:
        ledger.score_pending(s)
        fixes = ledger.recalibration(s)
    assert "type=Bug" in fixes and fixes["type=Bug"]["factor"] > 2.0
    assert fixes["type=Bug"]["coverage"] < 0.5
    assert "type=Story" not in fixes
    more = [dataclasses.replace(r, external_id=f"N-{i}", status="open", actual_effort=None,
                                actual_end=None) for i, r in enumerate(recs[:50])]
    load(engine, [*_finish_all(recs, 6.0), *more])
    report = run_learning(engine, CAPS)
    assert "type=Bug" in report.recalibrated
    with unit_of_work(engine) as s:
        bug = s.query(Item).filter(Item.external_id.in_([m.external_id for m in more]),
                                   Item.segments["type"].as_string() == "Bug").first()
        story = s.query(Item).filter(Item.external_id.in_([m.external_id for m in more]),
                                     Item.segments["type"].as_string() == "Story").first()
        assert bug is not None and story is not None
        fb = s.query(Forecast).filter_by(item_id=bug.id, measure="effort").one()
        fs = s.query(Forecast).filter_by(item_id=story.id, measure="effort").one()
        assert fb.p80 / bug.planned_estimate > 2.5 * fs.p80 / story.planned_estimate


def test_gap_trend_says_narrowing_when_it_narrows(engine: Engine) -> None:
    rng = random.Random(4)
    recs = []
    for month in range(8):
        for i in range(30):
            spread = 0.9 - 0.1 * month
            est = 4.0
            recs.append(records(1)[0].__class__(
                external_id=f"G-{month}-{i}", status="done", planned_estimate=est,
                actual_effort=est * math.exp(rng.gauss(0, spread)),
                actual_end=dt.datetime(2025, 1 + month, 10, tzinfo=dt.UTC)))
    load(engine, recs)
    with unit_of_work(engine) as s:
        gap = gap_by_cycle(s)
    assert [c["cycle"] for c in gap["cycles"]][:2] == ["2025-01", "2025-02"]
    assert all(c["n"] == 30 for c in gap["cycles"])
    assert gap["trend"]["verdict"] == "narrowing" and gap["trend"]["p_value"] < 0.05


def test_sampling_a_quantile_curve_reproduces_it() -> None:
    curves = np.array([[10.0, 14.0, 17.0, 20.0]])
    draws = _sample_curves(curves, [0.5, 0.8, 0.9, 0.95], np.random.default_rng(1), 100_000)
    assert np.quantile(draws, 0.5) == pytest.approx(10.0, abs=0.1)
    assert np.quantile(draws, 0.8) == pytest.approx(14.0, abs=0.1)
    assert np.quantile(draws, 0.9) == pytest.approx(17.0, abs=0.15)


def test_group_forecast_bottom_up_and_throughput(engine: Engine) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # after every generated item
    recs = records(600, seed=12)
    recent = [dataclasses.replace(r, external_id=f"R-{i}", status="done",
                                  actual_end=now - dt.timedelta(days=1 + i % 50), actual_effort=2.0)
              for i, r in enumerate(recs[:100])]
    load(engine, [*recs, *recent])
    run_learning(engine, CAPS, as_of=now)
    with unit_of_work(engine) as s:
        everything = group_forecast(s, {}, now)
        bugs = group_forecast(s, {"type": "Bug"}, now)
    assert everything["open_items"] == 60 and everything["bottom_up"]["items_forecast"] == 60
    b = everything["bottom_up"]
    assert now.date().isoformat() <= b["p50"] <= b["p80"] <= b["p90"]
    t = everything["throughput"]
    assert t["finished_in_window"] == 100 and t["p50"] <= t["p90"]
    # 60 open at 100 per 60 days: about five weeks out.
    assert "2026-01-25" <= t["p50"] <= "2026-02-20"
    assert bugs["open_items"] < 60
