"""The worker: slot claims, the job functions, the scheduler loop, several processes at once."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from core import outbox
from core.connections import add_connection
from core.model import Item, JobRun, WriteIntent, utcnow
from core.schedule import parse_schedule
from core.scheduler import JobScheduler, JobSpec, abandon_stale, claim_job, finish_job
from core.store import unit_of_work
from tests.fakes import FakeConnector
from tests.webapp import worker_proc
from webapp import worker
from webapp.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 6, 2, 10, 20, tzinfo=dt.UTC)


@pytest.fixture
def fake_registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The fake connectors findable by kind in this process; returns the delivery log."""
    from connectors import registry

    log = tmp_path / "writes.log"
    monkeypatch.setattr(registry, "BUILTINS", registry.BUILTINS)  # restored after the test
    monkeypatch.setattr(worker_proc.RecordingConnector, "log_path", str(log))
    worker_proc.register(str(log))
    return log


def _connection(engine: Engine, name: str = "tool", schedule: str | None = "every 1h",
                factory: type[FakeConnector] = FakeConnector, **config: object) -> int:
    with unit_of_work(engine) as s:
        conn = add_connection(s, factory, name, {"items": 20, **config}, {"id": "key"}, schedule)
        return conn.id


def _seed(engine: Engine, connection_id: int, n: int, items: int = 20) -> None:
    with unit_of_work(engine) as s:
        for i in range(n):
            outbox.enqueue(s, connection_id, f"F-{i % items + 1}", "comment",
                           {"text": f"seed {i}"}, key=f"seed:{i}")


def _runs(engine: Engine) -> list[JobRun]:
    with unit_of_work(engine) as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def test_claim_job_once_per_key(engine: Engine) -> None:
    first = claim_job(engine, "sync_job", "sync:1:2025-01-01T10:00:00Z")
    assert first is not None
    assert claim_job(engine, "sync_job", "sync:1:2025-01-01T10:00:00Z") is None
    other = claim_job(engine, "sync_job", "sync:1:2025-01-01T11:00:00Z")
    assert other is not None and other != first
    finish_job(engine, first, "ok", {"created": 3})
    runs = {r.id: r for r in _runs(engine)}
    assert runs[first].status == "ok" and runs[first].stats == {"created": 3}
    assert runs[first].finished_at is not None
    assert runs[other].status == "running"
    # a claim whose worker died is marked, never re-run: the next slot has its own key
    assert abandon_stale(engine, dt.timedelta(hours=6)) == 0
    assert abandon_stale(engine, dt.timedelta(0)) == 1
    assert {r.id: r.status for r in _runs(engine)} == {first: "ok", other: "abandoned"}


def test_sync_job_runs_each_slot_once_then_learns(engine: Engine,
                                                  fake_registered: Path) -> None:
    cid = _connection(engine, schedule="every 15m")
    first = worker.sync_job(cid, engine=engine, now=NOW)
    assert first["status"] == "ok" and first["key"] == f"sync:{cid}:2025-06-02T10:15:00Z"
    assert first["stats"]["created"] == 20 and first["learn"]["status"] == "ok"
    again = worker.sync_job(cid, engine=engine, now=NOW + dt.timedelta(minutes=5))
    assert again["status"] == "skipped" and "learn" not in again
    later = worker.sync_job(cid, engine=engine, now=NOW + dt.timedelta(minutes=15))
    assert later["status"] == "ok" and later["learn"]["key"] == "learn:2025-06-02T10:30:00Z"
    keyed = [(r.job, r.key, r.status) for r in _runs(engine) if r.key]
    assert keyed == [
        ("sync_job", f"sync:{cid}:2025-06-02T10:15:00Z", "ok"),
        ("learn_job", "learn:2025-06-02T10:15:00Z", "ok"),
        ("sync_job", f"sync:{cid}:2025-06-02T10:30:00Z", "ok"),
        ("learn_job", "learn:2025-06-02T10:30:00Z", "ok"),
    ]
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 20
    assert worker.sync_job(cid + 100, engine=engine)["status"] == "gone"


def test_sync_errors_are_one_line_without_the_token(engine: Engine,
                                                    fake_registered: Path) -> None:
    token = "tok-SECRET-12345"
    cid = _connection(engine, "leaky", factory=worker_proc.LeakyConnector, api_token=token)
    result = worker.sync_job(cid, engine=engine, now=NOW)
    assert result["status"] == "error" and "learn" not in result
    (run,) = [r for r in _runs(engine) if r.job == "sync_job"]
    assert run.status == "error" and run.error == result["error"]
    assert run.error == "RuntimeError: 401 Unauthorized for token ***"
    # a bad schedule is named, and nothing is claimed for it
    bad = _connection(engine, "odd", schedule="whenever")
    result = worker.sync_job(bad, engine=engine, now=NOW)
    assert result["status"] == "error" and "invalid schedule 'whenever'" in result["error"]
    assert len([r for r in _runs(engine) if r.job == "sync_job"]) == 1


def test_deliver_job_records_only_passes_that_did_something(engine: Engine,
                                                            fake_registered: Path) -> None:
    cid = _connection(engine)
    assert worker.deliver_job(engine=engine)["delivered"] == 0
    assert _runs(engine) == []
    _seed(engine, cid, 30)
    assert worker.deliver_job(engine=engine)["delivered"] == 30
    (run,) = _runs(engine)
    assert run.job == "deliver_job" and run.stats == {"delivered": 30, "retrying": 0, "dead": 0}
    assert len(fake_registered.read_text().splitlines()) == 30


def test_job_scheduler_reconciles_jobs() -> None:
    sched = JobScheduler()
    hourly, daily = parse_schedule("every 1h"), parse_schedule("0 6 * * *")
    a = JobSpec("webapp.worker:sync_job", (1,), hourly, run_now=True)
    changes = sched.set_jobs({"sync:1": a, "deliver": JobSpec("webapp.worker:deliver_job", (),
                                                              hourly)})
    assert changes == {"added": ["deliver", "sync:1"], "changed": [], "removed": []}
    same = JobSpec("webapp.worker:sync_job", (1,), hourly, run_now=False)
    changes = sched.set_jobs({"sync:1": same, "sync:2": a})
    assert changes == {"added": ["sync:2"], "changed": [], "removed": ["deliver"]}
    changes = sched.set_jobs({"sync:1": JobSpec("webapp.worker:sync_job", (1,), daily),
                              "sync:2": a})
    assert changes == {"added": [], "changed": ["sync:1"], "removed": []}
    sched.shutdown()


def test_run_worker_schedules_reloads_and_stops_on_sigterm(engine: Engine,
                                                           fake_registered: Path) -> None:
    first = _connection(engine, "one")
    _seed(engine, first, 12)
    added: list[int] = []

    def later() -> None:
        time.sleep(0.4)
        added.append(_connection(engine, "two", schedule="every 30m"))  # seen on a re-read
        time.sleep(0.8)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=later)
    helper.start()
    started = time.monotonic()
    summary = worker.run_worker(engine, run_for=20, deliver_every=0.2, reload_every=0.3)
    helper.join()
    assert summary["stopped_by"] == "signal" and time.monotonic() - started < 10
    assert summary["reloads"] >= 2
    (second,) = added
    assert summary["jobs"] == ["deliver", "queued", f"sync:{first}", f"sync:{second}"]
    runs = _runs(engine)
    synced = sorted(r.connection_id for r in runs if r.job == "sync_job")
    assert synced == [first, second]
    assert all(r.status == "ok" for r in runs)
    with unit_of_work(engine) as s:
        seeded = list(s.scalars(select(WriteIntent.status).where(
            WriteIntent.idempotency_key.like("seed:%"))))
    assert seeded == ["delivered"] * 12
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_worker_once_cli_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    # both runs inside one 15-minute slot, wherever the clock is (a run at 14:59:59 and
    # the next at 15:00:01 would be two slots, both due)
    mid_slot = dt.datetime(2026, 3, 2, 10, 7, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(worker, "utcnow", lambda: mid_slot)
    plan = tmp_path / "plan.csv"
    rows = [f"T-{i},Task {i},{'Bug' if i % 3 else 'Story'},4,{3 + i % 5},"
            f"2025-02-{1 + i % 27:02d},Done" for i in range(40)]
    plan.write_text("Key,Summary,Type,Estimate,Spent,Done,Status\n" + "\n".join(rows) + "\n")

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={plan}",
                       "--map", "id=Key", "--map", "title=Summary", "--map",
                       "planned_estimate=Estimate", "--map", "actual_effort=Spent",
                       "--map", "actual_end=Done", "--map", "status=Status",
                       "--map", "segments=Type", "--schedule", "every 15m")
    assert code == 0, err
    code, out, err = cli("worker", "--once")
    assert code == 0, err
    assert "sync plan: 40 new" in out and "learning run #1" in out and "write-back:" in out
    code, out, _ = cli("worker", "--once", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["syncs"][0]["status"] == "skipped"  # same 15-minute slot
    assert summary["learn"]["status"] == "skipped"
    from core.store import open_store

    engine = open_store()
    keyed = [(r.job, r.status) for r in _runs(engine) if r.key]
    engine.dispose()
    assert keyed == [("sync_job", "ok"), ("learn_job", "ok")]
    code, _, err = cli("worker", "--once", "--run-for", "5")
    assert code == 2 and err.count("\n") == 1 and "--once or --run-for" in err
    code, _, err = cli("worker", "--deliver-every", "0")
    assert code == 2 and err == "error: --deliver-every must be more than 0 seconds, not 0\n"


def test_worker_once_cli_fails_in_one_line_for_a_bad_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    plan = tmp_path / "plan.csv"
    plan.write_text("Key,Summary\nT-1,one\n")
    assert main(["connections", "add", "file", "plan", "--set", f"path={plan}", "--map",
                 "id=Key", "--schedule", "every fortnight"]) == 0
    capsys.readouterr()
    assert main(["worker", "--once"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid schedule 'every fortnight'" in err


def test_three_processes_deliver_each_intent_once_and_sync_each_slot_once(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Three OS processes on one PostgreSQL run the same sync slot and the same outbox."""
    if not os.environ.get("LEARNLOOP_TEST_DATABASE_URL"):
        pytest.skip("LEARNLOOP_TEST_DATABASE_URL is not set: the multi-process proof needs "
                    "PostgreSQL")
    if not db_url.startswith("postgresql"):
        pytest.skip("the multi-process proof runs on the PostgreSQL store only")
    seeded = 300
    cid = _connection(engine, items=seeded, batch_size=50, latency=0.002)
    _seed(engine, cid, seeded, items=seeded)
    log, ready = tmp_path / "writes.log", tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    now = utcnow()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.webapp.worker_proc", db_url, str(log), str(cid),
         now.isoformat(), str(ready), str(i)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)]
    try:
        deadline = time.monotonic() + 60
        while len(list(ready.glob("ready-*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        (ready / "go").touch()
        outputs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    slot = parse_schedule("every 1h").slot(now)

    # the sync slot ran in exactly one process; the others found it claimed
    assert sorted(r["sync"] for r in results) == ["ok", "skipped", "skipped"]
    assert {r["key"] for r in results} == {f"sync:{cid}:{slot}"}
    runs = _runs(engine)
    assert [(r.key, r.status) for r in runs if r.job == "sync_job"] == [
        (f"sync:{cid}:{slot}", "ok")]
    assert [(r.key, r.status) for r in runs if r.job == "learn_job"] == [
        (f"learn:{slot}", "ok")]
    assert len([r for r in runs if r.job == "sync"]) == 1  # run_sync's own row: one sync ran

    # every intent (the 300 seeded and those the learning run queued) written exactly once
    lines = log.read_text().splitlines()
    written = collections.Counter(int(line.split()[0]) for line in lines)
    with unit_of_work(engine) as s:
        intents = {i.id: (i.status, i.attempts, i.idempotency_key)
                   for i in s.scalars(select(WriteIntent))}
        assert s.scalar(select(func.count()).select_from(Item)) == seeded
    assert len(intents) >= seeded
    assert set(written) == set(intents) and max(written.values()) == 1
    assert len(lines) == len(intents)
    assert {status for status, _, _ in intents.values()} == {"delivered"}
    assert {attempts for _, attempts, _ in intents.values()} == {1}
    assert sum(r["delivered"] for r in results) == len(intents)
    assert sum(r["retrying"] + r["dead"] for r in results) == 0
    by_process = {int(line.split()[3]) for line in lines}
    print(f"\n{len(intents)} intents ({seeded} seeded), {len(lines)} writes, "
          f"{len(by_process)} processes wrote: {[r['delivered'] for r in results]}")
