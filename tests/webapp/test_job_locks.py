"""One sync per connection and one learning run at a time, whoever starts them: the worker,
"Sync now", `learnloop sync` and `learnloop learn` hold the same locks."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from core.connections import add_connection
from core.model import Connection, Forecast, Item, JobRun, utcnow
from core.scheduler import (
    ABANDONED,
    LEARN_LOCK,
    claim_job,
    finish_job,
    heartbeat,
    sync_lock,
    take_lock,
)
from core.store import unit_of_work
from tests.core.learning_data import load, records
from tests.fakes import FakeConnector
from tests.webapp.cli_proc import GatedConnector
from webapp import jobs, worker
from webapp.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _runs(engine: Engine) -> list[JobRun]:
    with unit_of_work(engine) as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def _age(engine: Engine, run_id: int, seconds: float) -> None:
    """Make a run look as if its process stopped renewing it `seconds` ago."""
    with unit_of_work(engine) as s:
        s.execute(update(JobRun).where(JobRun.id == run_id).values(
            heartbeat_at=utcnow() - dt.timedelta(seconds=seconds)))


def test_a_lock_has_one_live_holder_and_a_dead_one_is_taken_over(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 s: the heartbeat renews every 0.67 s, with room for a busy machine (at 0.6 s a
    # renewal delayed by a loaded core let the live holder look dead).
    monkeypatch.setenv("LEARNLOOP_CLAIM_TIMEOUT", "2")
    first = claim_job(engine, "cli_sync", lock="sync:7")
    assert first is not None and claim_job(engine, "sync_job", "sync:7:slot", lock="sync:7") is None
    assert claim_job(engine, "cli_sync", lock="sync:8") is not None  # another connection
    with heartbeat(engine, first):  # alive past three timeouts: never taken over
        for _ in range(6):
            time.sleep(1.0)
            assert claim_job(engine, "cli_sync", lock="sync:7") is None
    finish_job(engine, first, "ok")
    second = claim_job(engine, "cli_sync", lock="sync:7")  # released when it ended
    assert second is not None
    time.sleep(2.2)  # its process died: no heartbeat for a timeout
    third = claim_job(engine, "cli_sync", lock="sync:7")
    assert third is not None
    runs = {r.id: r for r in _runs(engine)}
    assert runs[first].status == "ok" and runs[first].lock is None
    assert (runs[second].status, runs[second].lock, runs[second].error) == (
        "abandoned", None, ABANDONED)
    assert runs[third].status == "running" and runs[third].lock == "sync:7"
    assert [r.key for r in runs.values()].count("sync:7:slot") == 0  # the refused claim left none


def test_cli_sync_and_learn_refuse_while_one_runs(
        engine: Engine, use_store: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("Key,Summary,Estimate,Spent,Status\n" + "".join(
        f"T-{i},Task {i},4,{3 + i % 5},Done\n" for i in range(30)))
    assert main(["connections", "add", "file", "plan", "--set", f"path={plan}", "--map",
                 "id=Key", "--map", "title=Summary", "--map", "planned_estimate=Estimate",
                 "--map", "actual_effort=Spent", "--map", "status=Status"]) == 0
    with unit_of_work(engine) as s:
        cid = s.scalars(select(Connection.id).where(Connection.name == "plan")).one()
    elsewhere = claim_job(engine, "sync_job", "sync:1:slot", cid, lock=sync_lock(cid))
    assert elsewhere is not None
    capsys.readouterr()
    assert main(["sync", "plan"]) == 2
    assert capsys.readouterr().err == "error: a sync of plan is already running\n"
    assert main(["sync"]) == 2  # all connections: refused before any is synced
    assert capsys.readouterr().err == "error: a sync of plan is already running\n"
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 0
    finish_job(engine, elsewhere, "ok")
    assert main(["sync", "plan"]) == 0
    learning = claim_job(engine, "learn_job", "learn:slot", lock=LEARN_LOCK)
    assert learning is not None
    capsys.readouterr()
    assert main(["learn", "--no-deliver"]) == 2
    assert capsys.readouterr().err == "error: a learning run is already running\n"
    _age(engine, learning, 120)  # that process died: the next learn takes over
    assert main(["learn", "--no-deliver"]) == 0
    runs = _runs(engine)
    assert {r.id: r.status for r in runs}[learning] == "abandoned"
    assert [(r.job, r.status) for r in runs if r.job.startswith("cli_")] == [
        ("cli_sync", "ok"), ("cli_learn", "ok")]
    assert all(r.lock is None for r in runs)
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 30


def test_the_worker_and_sync_now_skip_what_is_running(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        cid = add_connection(s, FakeConnector, "tool", {"items": 8}, {"id": "key"},
                             "every 1h").id
        queued, _ = jobs.queue_sync(s, s.get_one(Connection, cid))
        queued_id = queued.id
    cli = claim_job(engine, "cli_sync", lock=sync_lock(cid))
    assert cli is not None
    from connectors import registry

    saved = registry.BUILTINS
    registry.BUILTINS = (*saved, "tests.fakes:FakeConnector")
    try:
        assert worker.sync_job(cid, engine=engine)["status"] == "skipped"
        (done,) = worker.queued_job(engine=engine)["jobs"]
        assert done["status"] == "error" and done["error"] == "a sync of tool is already running"
        finish_job(engine, cli, "ok")
        assert worker.sync_job(cid, engine=engine)["status"] == "ok"
    finally:
        registry.BUILTINS = saved
    runs = {r.id: r for r in _runs(engine)}
    assert runs[queued_id].lock is None and runs[queued_id].status == "error"
    assert take_lock(engine, queued_id, LEARN_LOCK)  # nothing else holds it now


def _cli(db_url: str, home: Path, go: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEARNLOOP_DATABASE_URL": db_url,
           "LEARNLOOP_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "tests.webapp.cli_proc", str(go), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_two_cli_syncs_at_once_one_runs_the_other_says_so(
        db_url: str, engine: Engine, learnloop_home: Path, tmp_path: Path) -> None:
    gate, go = tmp_path / "gate", tmp_path / "go"
    with unit_of_work(engine) as s:
        cid = add_connection(s, GatedConnector, "gated", {"items": 40, "batch_size": 10,
                                                          "gate": str(gate)}, {"id": "key"}).id
    go.touch()
    first = _cli(db_url, learnloop_home, go, "sync", "gated")
    deadline = time.monotonic() + 60
    while not any(r.lock == sync_lock(cid) for r in _runs(engine)):  # it holds the lock
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = _cli(db_url, learnloop_home, go, "sync", "gated")
    out2, err2 = second.communicate(timeout=60)
    gate.touch()
    out1, err1 = first.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (0, 2), (err1, err2)
    assert err2 == "error: a sync of gated is already running\n" and out2 == ""
    assert "gated: 40 new" in out1
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 40
    assert [(r.job, r.status) for r in _runs(engine) if r.job == "cli_sync"] == [
        ("cli_sync", "ok")]


def test_two_cli_learns_at_once_do_not_double_the_ledger(
        db_url: str, engine: Engine, learnloop_home: Path, tmp_path: Path) -> None:
    load(engine, records(600, seed=2))
    go = tmp_path / "go"
    procs = [_cli(db_url, learnloop_home, go, "learn", "--no-deliver") for _ in range(2)]
    time.sleep(1.5)  # both imported and waiting
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    errs = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode]
    # one runs; the other was refused, or (when the first had finished) repeated nothing
    assert codes in ([0, 2], [0, 0]), outs
    assert errs in ([], ["error: a learning run is already running\n"])
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Forecast)) == 120
