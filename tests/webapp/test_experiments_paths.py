"""One engine: `learnloop experiments analyze` on a CSV and the learning run's stored path on
the same enrollments (synced from that CSV through a file connection) decide alike."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from core.connections import add_connection
from core.experiments.analyze import analyze_test, segment_findings
from core.experiments.learn import from_store
from core.store import unit_of_work
from core.sync import run_sync
from webapp.cli import main

DAY0 = dt.date(2025, 3, 1)


def _csv(path: Path, seed: int = 4) -> None:
    """4,000 enrollments of 800 accounts (industry per account), three randomised arms, B
    better and far better in finance, and days whose reply rates swing (so dispersion is
    estimated)."""
    rng = random.Random(seed)
    swing = [rng.uniform(0.8, 1.25) for _ in range(30)]
    lines = ["id,status,arm,reply,account,assigned,industry,assignment"]
    for i in range(4000):
        account = rng.randrange(800)
        industry = ("finance", "retail", "health")[account % 3]
        arm = rng.choice(["control", "B", "C"])
        day = rng.randrange(30)
        rate = {"B": 0.3 if industry == "finance" else 0.12}.get(arm, 0.08) * swing[day]
        lines.append(f"E-{i},done,{arm},{int(rng.random() < rate)},acct-{account},"
                     f"{DAY0 + dt.timedelta(days=day)},{industry},random")
    path.write_text("\n".join(lines) + "\n")


def test_the_cli_and_the_stored_path_give_the_same_decision(
        engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outbound.csv"
    _csv(path)
    code = main(["experiments", "analyze", str(path), "--arm", "arm", "--metric", "reply",
                 "--account", "account", "--date", "assigned", "--segment", "industry",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    cli = json.loads(captured.out)
    (cli_test,) = cli["tests"]

    mapping = {"id": "id", "status": "status", "outcome": "reply", "arm": "arm",
               "account": "account", "assigned_at": "assigned", "assignment": "assignment",
               "segments": ["industry"]}
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "outbound", {"path": str(path)}, mapping)
    report = run_sync(engine, "outbound", FileConnector(FileConfig(path=str(path)), mapping))
    assert (report.created, report.quarantined) == (4000, 0)
    with unit_of_work(engine) as s:
        (stored,) = from_store(s)
        result = analyze_test(stored.experiment, stored.dispersion)
        findings = segment_findings(stored.experiment, observational=not stored.randomized,
                                    dispersion=stored.dispersion)
    assert stored.randomized and stored.experiment.name == cli_test["test"] == "outbound"
    for key in ("decision", "winner", "control"):
        assert result[key] == cli_test[key], key
    assert (cli_test["decision"], cli_test["winner"], cli_test["control"]) == \
        ("winner", "B", "control")
    assert result["dispersion"] == pytest.approx(cli_test["dispersion"]) and \
        cli_test["dispersion"] > 1  # the day-to-day swings were seen, the same way
    assert result["srm_p"] == pytest.approx(cli_test["srm_p"])
    for arm, row in cli_test["metrics"]["reply"].items():
        mine = result["metrics"]["reply"][arm]
        assert mine["n"] == row["n"] < 1300  # accounts in the arm, not enrollments
        assert mine["mean"] == pytest.approx(row["mean"])
        if row["chance_to_win"] is not None:
            assert round(mine["chance_to_win"], 4) == round(row["chance_to_win"], 4)
    stored_findings = [(f["segment"], f["best_arm"], f["kind"], round(f["q_value"], 6))
                       for f in findings if f["metric"] == "reply"]
    assert stored_findings == [(f["segment"], f["best_arm"], f["kind"], round(f["q_value"], 6))
                               for f in cli["segment_findings"]]
    assert ("industry=finance", "B", "policy") in [f[:3] for f in stored_findings]
