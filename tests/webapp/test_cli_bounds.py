"""The CLI at its edges: a store that refuses writes, unknown names, --json on failure, and
runs whose process was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.connections import add_connection
from core.model import JobRun, LearningRun
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector, FakeTool

ROOT = Path(__file__).resolve().parents[2]


def _plan(cli, tmp_path: Path, name: str = "plan") -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text("Key,Summary,Estimate,Due\nA,a,3,2025-01-10\nB,b,2,9999-12-30\n")
    code, _, err = cli("connections", "add", "file", name, "--set", f"path={path}",
                       "--map", "id=Key", "--map", "title=Summary", "--map",
                       "planned_estimate=Estimate", "--map", "planned_due=Due")
    assert code == 0, err


def test_quarantine_of_an_unknown_connection_says_so(cli, tmp_path: Path) -> None:
    _plan(cli, tmp_path)
    code, out, err = cli("quarantine", "nosuch")
    assert code == 2 and out == "" and err.strip().splitlines() == [
        "error: unknown connection 'nosuch' (see `learnloop connections list`)"]
    code, out, _ = cli("quarantine", "plan")
    assert code == 0 and out == "nothing quarantined\n"


def test_sync_json_reports_failures_and_far_dates_as_json(cli, tmp_path: Path) -> None:
    _plan(cli, tmp_path)
    _plan(cli, tmp_path, "gone")
    (tmp_path / "gone.csv").unlink()
    code, out, err = cli("sync", "plan", "gone", "nosuch", "--json")
    assert code == 2 and "error:" not in err
    plan, gone, nosuch = json.loads(out)
    assert (plan["connection"], plan["created"], plan["quarantined"]) == ("plan", 1, 1)
    assert "planned_due 9999-12-30" in plan["problems"][0]["reason"]
    assert gone["connection"] == "gone" and "gone.csv" in gone["error"]
    assert nosuch == {"connection": "nosuch", "error": "unknown connection 'nosuch' (known: "
                                                       "gone, plan)"}
    code, out, err = cli("quarantine", "plan")
    assert code == 0 and out.startswith("plan: B: planned_due 9999-12-30 is outside the years 1900-2200"), out
    code, out, err = cli("learn", "--no-deliver")
    assert code == 0, err


def test_a_store_that_refuses_writes_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only SQLite file stands in for a full disk, so this runs on SQLite only (its own
    # store, not the backend-parametrized one: nothing is skipped on PostgreSQL).
    from webapp.cli import main

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        got = capsys.readouterr()
        assert "Traceback" not in got.err
        return code, got.out, got.err

    path = str(tmp_path / "store.db")
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", f"sqlite:///{path}")
    _plan(cli, tmp_path)
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    code, out, err = cli("sync")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: the store sqlite:///file:{path}?mode=ro&uri=true failed: attempt to write a "
        "readonly database (check that its disk has space and that it is writable and "
        "reachable)"]


KILLED = """
import sys
from core.store import open_store
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector, FakeTool
engine = open_store(sys.argv[1])
run_sync(engine, "fake", FakeConnector(FakeConfig(items=40, batch_size=1, latency=0.2),
                                       {"id": "key"}, tool=FakeTool()))
"""


def test_a_killed_sync_is_closed_as_interrupted_by_the_next_run(
        engine: Engine, db_url: str) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "fake", {}, {"id": "key"})
    proc = subprocess.Popen([sys.executable, "-c", KILLED, db_url], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with unit_of_work(engine) as s:
                if s.scalars(select(JobRun)).first() is not None:
                    break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with unit_of_work(engine) as s:
        killed = s.scalars(select(JobRun)).one()
        assert killed.status == "running" and killed.stats["pid"] == proc.pid
    run_sync(engine, "fake", FakeConnector(FakeConfig(items=3), {"id": "key"}, tool=FakeTool()))
    with unit_of_work(engine) as s:
        first, second = s.scalars(select(JobRun).order_by(JobRun.id)).all()
        assert first.status == "interrupted" and first.finished_at is not None
        assert f"pid {proc.pid}" in (first.error or "")
        assert second.status == "ok"
        s.add(LearningRun(model_version="x", inputs={**killed.stats}))  # the same dead process
    from core.learning.run import run_learning

    run_learning(engine, {})
    with unit_of_work(engine) as s:
        assert [r.status for r in s.scalars(select(LearningRun).order_by(LearningRun.id))] == [
            "interrupted", "ok"]
