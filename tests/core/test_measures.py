"""Measures per kind of item: one model per (kind, measure), deal close dates and win
probabilities in the ledger, and mappings that do not fit the kind of items refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any, ClassVar

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.file import FileConnector
from core import measures
from core.connections import add_connection
from core.contract import EventRecord, ItemRecord, MappingField
from core.errors import ConfigError
from core.learning import dataset, ledger
from core.learning.rates import Outcome, RateModel
from core.learning.run import run_learning
from core.model import Connection, Forecast, Item
from core.store import alembic_config, make_engine, migrate, unit_of_work
from core.sync import run_sync
from tests.core.learning_data import load
from tests.fakes import FakeConfig, FakeConnector, FakeTool, make_items

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CAPS = {"fake": frozenset({"fields"}), "file": frozenset({"fields"})}
DEAL_HEADER = "Id,Kind,Region,Owner,Status,Outcome,Created,Close,Closed,Amount,Won\n"
WIN_RATE = {"EU": 0.8, "US": 0.25}
SLIP = {"EU": 3, "US": 20}


def _deal_rows(n: int, open_from: int, seed: int = 3) -> list[dict[str, Any]]:
    """Deals D-0..D-n-1: EU deals win 80% and close 3 days late, US 25% and 20 days late."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        region, owner = rng.choice(["EU", "US"]), rng.choice(["ann", "bob", "cy"])
        created = T0 + dt.timedelta(days=2 * i)
        close = created + dt.timedelta(days=30)
        won = rng.random() < WIN_RATE[region]
        amount = rng.choice([1000, 5000, 20000])
        rows.append({"Id": f"D-{i}", "Kind": "deal", "Region": region, "Owner": owner,
                     "Created": created.date(), "Close": close.date(), "Amount": amount,
                     "open": i >= open_from, "won": won,
                     "Closed": (close + dt.timedelta(days=SLIP[region] + rng.randint(-2, 2))
                                ).date(),
                     "Won": round(amount * rng.uniform(0.7, 1.1)) if won else ""})
    return rows


def _write_deals(path: Path, rows: list[dict[str, Any]]) -> None:
    lines = [DEAL_HEADER]
    for r in rows:
        status, outcome = ("open", "") if r["open"] else ("done", "won" if r["won"] else "lost")
        closed, won = ("", "") if r["open"] else (r["Closed"], r["Won"])
        lines.append(f"{r['Id']},{r['Kind']},{r['Region']},{r['Owner']},{status},{outcome},"
                     f"{r['Created']},{r['Close']},{closed},{r['Amount']},{won}\n")
    path.write_text("".join(lines))


DEAL_MAPPING = {"id": "Id", "kind": "Kind", "status": "Status", "outcome": "Outcome",
                "estimated_at": "Created", "planned_due": "Close", "actual_end": "Closed",
                "planned_amount": "Amount", "actual_amount": "Won",
                "segments": ["Region", "Owner"]}


def _jira_like_tasks(n: int) -> FakeTool:
    """Fake tool items shaped like Jira issues: kinds Story and Bug (both tasks)."""
    tool = FakeTool()
    for i, (ext, rec) in enumerate(make_items(n, seed=5).items()):
        tool.items[ext] = dataclasses.replace(rec, kind="Story" if i % 2 else "Bug")
    return tool


def _store(engine: Engine, tmp_path: Path) -> tuple[Path, list[dict[str, Any]], FakeTool]:
    tool = _jira_like_tasks(200)  # 160 done, 40 open
    deals = _deal_rows(140, open_from=110)  # 110 closed, 30 open
    path = tmp_path / "deals.csv"
    _write_deals(path, deals)
    with unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "jira-like", {}, {"id": "key"})
        add_connection(s, FileConnector, "deals", {"path": str(path)}, DEAL_MAPPING)
    run_sync(engine, "jira-like", FakeConnector(FakeConfig(items=200), {"id": "key"}, tool=tool))
    runtime.sync(engine, "deals")
    return path, deals, tool


def test_kind_families_and_measures() -> None:
    assert measures.family("Story") == measures.family("bug") == measures.TASK
    assert measures.family("Opportunity") == measures.DEAL
    assert measures.family("milestone") == "milestone"  # its own family, never pooled
    assert measures.family("milestone", {"Milestone": "task"}) == measures.TASK
    assert [m.name for m in measures.for_family("milestone")] == ["effort", "finish", "duration"]
    deal = Item(kind="deal", status="done", outcome="Closed Won", planned_amount=100.0,
                actual_amount=80.0, planned_due=T0, actual_end=T0 + dt.timedelta(days=4))
    got = measures.compute(deal, measures.plan_of(deal))
    assert got == {"close_slip_days": (0.0, 4.0, 4.0), "amount_ratio": (100.0, 80.0, 0.8),
                   "won": (1.0, 1.0, 1.0)}
    lost = Item(kind="deal", status="cancelled", planned_due=T0)
    assert measures.compute(lost, measures.plan_of(lost)) == {"won": (1.0, 0.0, 0.0)}
    # Against another plan (the committed one) the same item deviates differently.
    assert measures.compute(deal, {"planned_due": T0 - dt.timedelta(days=10)}
                            )["close_slip_days"][2] == 14.0
    enrolled = Item(kind="enrollment", status="done", outcome="meeting booked")
    assert measures.compute(enrolled, measures.plan_of(enrolled)) == {
        "reply": (0.0, 1.0, 1.0), "meeting": (0.0, 1.0, 1.0), "conversion": (0.0, 0.0, 0.0)}
    task = Item(kind="Bug", status="done", planned_estimate=2.0, actual_effort=3.0)
    assert measures.compute(task, measures.plan_of(task)) == {"effort_ratio": (2.0, 3.0, 1.5)}


def test_days_in_each_stage_from_status_changes() -> None:
    day = dt.timedelta(days=1)
    changes = [(T0 + 5 * day, "qualify", "proposal"), (T0, None, "qualify"),
               (T0 + 12 * day, "proposal", "negotiate")]
    assert measures.stage_days(changes, T0 + 20 * day) == {
        "qualify": 5.0, "proposal": 7.0, "negotiate": 8.0}
    assert measures.stage_days(changes, None) == {"qualify": 5.0, "proposal": 7.0}


def test_one_model_per_kind_and_measure_with_deal_forecasts_and_win_probabilities(
        engine: Engine, tmp_path: Path) -> None:
    path, deals, _ = _store(engine, tmp_path)
    as_of = T0 + dt.timedelta(days=240)  # before the open deals' planned close dates
    report = run_learning(engine, CAPS, as_of=as_of)
    models = report.models
    assert {"task/effort", "task/finish", "deal/finish", "deal/won", "deal/amount"} <= set(models)
    # Tasks and deals are never pooled: each model saw its own kind's finished items only.
    assert models["task/effort"]["n_train"] == models["task/finish"]["n_train"] == 160
    assert models["deal/finish"]["n_train"] == models["deal/won"]["n_train"] == 110
    closed_won = sum(1 for d in deals if not d["open"] and d["won"])
    assert models["deal/amount"]["n_train"] == closed_won
    assert all(m["kind"] == k.split("/")[0] for k, m in models.items())
    assert models["deal/won"]["dimension"] == "Region"  # chosen on the hold-out
    assert report.finished["deal/won"] == 110 and "deal/effort" not in report.finished

    with unit_of_work(engine) as s:
        kinds = dict(s.execute(select(Item.id, Item.kind)).all())
        rows = s.scalars(select(Forecast)).all()
        by_measure: dict[str, list[Forecast]] = {}
        for f in rows:
            by_measure.setdefault(f.measure, []).append(f)
        assert {kinds[f.item_id] for f in by_measure["effort"]} == {"Story", "Bug"}
        assert len(by_measure["effort"]) == 40
        assert sorted({kinds[f.item_id] for f in by_measure["finish"]}) == ["Bug", "Story",
                                                                            "deal"]
        deal_finish = [f for f in by_measure["finish"] if kinds[f.item_id] == "deal"]
        assert len(deal_finish) == 30
        for f in deal_finish:
            assert f.p50 is not None and f.p80 is not None and f.p90 is not None
            assert f.p50 <= f.p80 <= f.p90 and f.probability is None
        wins = by_measure["win"]
        assert len(wins) == 30 and {kinds[f.item_id] for f in wins} == {"deal"}
        assert all(f.p50 is None and 0 < (f.probability or 0) < 1 for f in wins)
        region = {i.id: i.segments["Region"] for i in s.scalars(select(Item).where(
            Item.kind == "deal"))}
        eu = [f.probability or 0 for f in wins if region[f.item_id] == "EU"]
        us = [f.probability or 0 for f in wins if region[f.item_id] == "US"]
        assert min(eu) > 0.6 > 0.4 > max(us)
        # A US deal's P80 close date sits further past its planned close than an EU deal's.
        slip = {region[f.item_id]: f.p80 - (f.planned or 0) for f in deal_finish if f.p80}
        assert slip["US"] > slip["EU"] + 8
        issued = {f.item_id: f.probability or 0 for f in wins}
    first_run = report.run_id

    again = run_learning(engine, CAPS, as_of=as_of)
    assert again.forecasts_issued == 0  # nothing changed: no repeated forecast

    # The open deals close: the win probabilities are scored with a Brier score.
    _write_deals(path, [{**d, "open": False} for d in deals])
    runtime.sync(engine, "deals")
    third = run_learning(engine, CAPS, as_of=as_of)
    assert third.forecasts_scored == 60  # 30 close dates and 30 win probabilities
    outcome = {f"D-{i}": d["won"] for i, d in enumerate(deals)}
    with unit_of_work(engine) as s:
        ext = dict(s.execute(select(Item.id, Item.external_id)).all())
        expected = sum((p - float(outcome[ext[i]])) ** 2 for i, p in issued.items()) / 30
        win = ledger.report(s, "win")
        cal = ledger.calibration(s, "win")
        deal_cov = ledger.report(s, "finish", family="deal")
        task_cov = ledger.report(s, "finish", family="task")
    assert win["overall"]["n"] == cal["n"] == 30
    assert win["overall"]["brier"] == pytest.approx(expected, abs=1e-4)
    assert win["overall"]["brier"] < 0.22  # better than a coin; the regions differ
    low, high = win["overall"]["brier_interval_90"]
    assert low <= win["overall"]["brier"] <= high
    table = win["overall"]["reliability"]
    assert sum(b["n"] for b in table) == 30
    assert all(b["bin"][0] <= b["predicted"] < b["bin"][1] for b in table)
    assert [c["run_id"] for c in win["cycles"]] == [first_run]
    assert deal_cov["overall"]["n"] == 30 and task_cov["overall"]["n"] == 0
    words = ledger.in_words(win["overall"])
    assert words.startswith("30 win probabilities scored: Brier score 0.") and "90%" in words


def test_findings_are_examined_per_kind_and_measure(engine: Engine, tmp_path: Path) -> None:
    _store(engine, tmp_path)
    report = run_learning(engine, CAPS)
    deal = [f["statement"] for f in report.findings if "deals" in f["statement"]]
    assert any(s.startswith("Region US deals closed a median") and "planned close date" in s
               and "n=" in s for s in deal), deal
    assert not any("deals" in s and "estimate" in s for s in deal)


def test_kind_map_is_the_only_way_kinds_are_pooled(engine: Engine) -> None:
    def recs(prefix: str, kind: str) -> list[ItemRecord]:
        return [ItemRecord(external_id=f"{prefix}-{i}", kind=kind, status="done",
                           planned_estimate=2.0, actual_effort=3.0,
                           estimated_at=T0 + dt.timedelta(days=i)) for i in range(12)]
    load(engine, recs("T", "task"), name="tasks")
    load(engine, recs("M", "milestone"), name="milestones")
    with unit_of_work(engine) as s:
        got = {k: len(v) for k, v in dataset.finished(s).items()}
    assert got == {"task/effort": 12, "milestone/effort": 12}
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection).where(Connection.name == "milestones")).one()
        conn.scope = {"kind_map": {"milestone": "task"}}
    with unit_of_work(engine) as s:
        got = {k: len(v) for k, v in dataset.finished(s).items()}
    assert got == {"task/effort": 24}


def test_deal_stage_days_come_from_status_changes(engine: Engine) -> None:
    recs, events = [], []
    for i in range(12):
        start = T0 + dt.timedelta(days=10 * i)
        recs.append(ItemRecord(external_id=f"D-{i}", kind="Opportunity", status="done",
                               outcome="won", estimated_at=start,
                               actual_end=start + dt.timedelta(days=9)))
        for n, (days, to) in enumerate(((0, "qualify"), (2, "proposal"))):
            events.append(EventRecord(f"D-{i}", f"D-{i}:{n}", start + dt.timedelta(days=days),
                                      "status_changed", attributes={"from": None, "to": to}))
    load(engine, recs, events=events)
    with unit_of_work(engine) as s:
        stages = dataset.finished(s)["deal/stage_days"]
    assert len(stages) == 24
    assert {(o.segments["stage"], o.value) for o in stages} == {("qualify", 2.0),
                                                                ("proposal", 7.0)}


def test_rate_model_shrinks_thin_segments_toward_the_pooled_rate() -> None:
    rng = random.Random(1)
    data = [Outcome(rng.random() < (0.7 if r == "a" else 0.2), {"r": r})
            for r in (rng.choice("ab") for _ in range(400))]
    data.append(Outcome(True, {"r": "thin"}))
    model = RateModel.fit(data)
    assert model.dimension == "r"
    p_a, n_a, low, high = model.predict({"r": "a"})
    assert 0.6 < p_a < 0.8 and low < p_a < high and n_a > 150
    p_thin, n_thin, _, _ = model.predict({"r": "thin"})
    assert n_thin == 1 and abs(p_thin - model.p0) < abs(1.0 - model.p0) / 2
    noise = [Outcome(rng.random() < 0.4, {"r": rng.choice("ab")}) for _ in range(400)]
    assert RateModel.fit(noise).predict({"r": "a"})[0] == pytest.approx(0.4, abs=0.06)


class EnrollmentConnector(FakeConnector):
    """A connector whose items are enrollments, mapping fields like a CRM sequence export."""

    name: ClassVar[str] = "enrollments"
    item_kind: ClassVar[str] = "enrollment"
    mapping_fields: ClassVar[tuple[MappingField, ...]] = (
        *FakeConnector.mapping_fields, MappingField("outcome", "Reply or meeting"))


def test_a_mapped_column_no_measure_of_the_kind_uses_is_one_clear_error(
        engine: Engine, tmp_path: Path) -> None:
    with unit_of_work(engine) as s, pytest.raises(ConfigError) as caught:
        add_connection(s, EnrollmentConnector, "outreach", {},
                       {"id": "key", "outcome": "reply", "actual_effort": "spent"})
    message = str(caught.value)
    assert "actual_effort" in message and "enrollment" in message and "\n" not in message
    with unit_of_work(engine) as s:
        add_connection(s, EnrollmentConnector, "outreach", {}, {"id": "key", "outcome": "r"})
        path = tmp_path / "plan.csv"
        path.write_text("Key,Amount\nT-1,5\n")
        with pytest.raises(ConfigError, match="planned_amount is mapped, but the items are "
                           "task items"):
            add_connection(s, FileConnector, "plan", {"path": str(path)},
                           {"id": "Key", "planned_amount": "Amount"})
        # Mapped onto deals by the connection's kind map, the same column is a measure.
        add_connection(s, FileConnector, "plan", {"path": str(path)},
                       {"id": "Key", "planned_amount": "Amount"},
                       scope={"kind_map": {"task": "deal"}})


def test_cli_refuses_a_column_the_kind_has_no_measure_for(
        capsys: pytest.CaptureFixture[str], use_store: str, tmp_path: Path) -> None:
    from webapp.cli import main

    path = tmp_path / "plan.csv"
    path.write_text("Key,Amount\nT-1,5\n")
    code = main(["connections", "add", "file", "plan", "--set", f"path={path}",
                 "--map", "id=Key", "--map", "planned_amount=Amount"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "planned_amount" in err and "task items" in err


def test_a_store_of_the_previous_release_keeps_its_forecasts(empty_url: str) -> None:
    url = empty_url
    old = make_engine(url)
    command.upgrade(alembic_config(old), "0010")
    with old.begin() as c:
        c.execute(text("INSERT INTO connections (kind, name, config, mapping, scope, health, "
                       "created_at) VALUES ('file', 'old', '{}', '{}', '{}', 'ok', "
                       "'2025-01-01 00:00:00')"))
        c.execute(text("INSERT INTO items (connection_id, external_id, kind, title, segments, "
                       "unit, status, deleted, raw, created_at, updated_at) VALUES (1, 'T-1', "
                       "'task', 't', '{}', 'hours', 'open', false, '{}', '2025-01-01 00:00:00', "
                       "'2025-01-01 00:00:00')"))
        c.execute(text("INSERT INTO forecasts (item_id, measure, issued_at, model_version, "
                       "segment, p50, p80, p90) VALUES (1, 'effort', '2025-01-02 00:00:00', "
                       "'sqm-2', '', 1.0, 2.0, 3.0)"))
    old.dispose()
    new = make_engine(url)
    migrate(new)
    with unit_of_work(new) as s:
        kept = s.scalars(select(Forecast)).one()
        assert (kept.p50, kept.p80, kept.p90, kept.probability) == (1.0, 2.0, 3.0, None)
        s.add(Forecast(item_id=1, measure="win", model_version="ebbeta-1", probability=0.4))
    with unit_of_work(new) as s:
        assert s.scalar(select(Forecast.probability).where(Forecast.measure == "win")) == 0.4
    new.dispose()
