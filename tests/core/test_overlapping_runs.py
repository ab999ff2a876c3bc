"""Two learning runs that overlap anyway: the ledger does not double, one proposal stays
pending per rule (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core import policy
from core.learning import ledger
from core.learning.run import run_learning
from core.model import Forecast, Item, LearningRun, Proposal, utcnow
from core.store import open_store, unit_of_work
from tests.core.learning_data import load, records

CAPS = {"list": frozenset({"fields"})}


@pytest.fixture
def other(db_url: str) -> Iterator[Engine]:
    """A second engine on the same store: another process."""
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def _later(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `work` in a thread (it blocks on the first one's transaction); its result or error."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as exc:  # pragma: no cover - shown by the assertion
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _run(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        run = LearningRun(model_version="m1")
        s.add(run)
        s.flush()
        return run.id


def test_a_forecast_issued_by_an_overlapping_run_is_not_issued_again(
        engine: Engine, other: Engine) -> None:
    load(engine, records(40, seed=3))
    with unit_of_work(engine) as s:
        items = list(s.scalars(select(Item.id).order_by(Item.id)))[:10]
    first, second = _run(engine), _run(engine)  # both started before either issued

    def rows(run_id: int, bump: float = 0.0) -> list[dict[str, Any]]:
        return [{"item_id": i, "run_id": run_id, "measure": "effort", "model_version": "m1",
                 "segment": "", "planned": 2.0, "issued_at": utcnow(), "p50": 2.0 + bump,
                 "p80": 3.0, "p90": 4.0, "p95": None, "probability": None} for i in items]

    with unit_of_work(engine) as s:
        assert ledger.issue_many(s, rows(first)) == 10
        # the second run issues while the first has not committed: it waits, then skips
        thread, got = _later(lambda: _issue(other, rows(second)))
        time.sleep(0.5)
        s.get_one(LearningRun, first).status = "ok"
        s.get_one(LearningRun, first).finished_at = utcnow()
    thread.join(30)
    assert got == [0]
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Forecast)) == 10
        # a changed forecast is issued as usual
        assert ledger.issue_many(s, rows(second, bump=1.0)) == 10


def _issue(engine: Engine, rows: list[dict[str, Any]]) -> int:
    with unit_of_work(engine) as s:
        return ledger.issue_many(s, rows)


def _propose(engine: Engine, p80: float) -> int | None:
    with unit_of_work(engine) as s:
        made = policy.propose(s, key="effort:type=Bug", selector={"type": "Bug"},
                              params={"p80": p80}, hypothesis="Bugs run long",
                              evidence={"n": 40}, title=f"Bugs: plan {p80}x")
        return made.id if made else None


def test_two_runs_proposing_the_same_rule_leave_one_pending(engine: Engine,
                                                            other: Engine) -> None:
    with unit_of_work(engine) as s:
        policy.current_policy(s)  # the store's first policy version, made once
    with unit_of_work(engine) as s:
        first = policy.propose(s, key="effort:type=Bug", selector={"type": "Bug"},
                               params={"p80": 2.0}, hypothesis="Bugs run long",
                               evidence={"n": 40}, title="Bugs: plan 2x")
        assert first is not None
        thread, got = _later(lambda: _propose(other, 2.0))  # the same change, overlapping
        time.sleep(0.5)
    thread.join(30)
    assert got == [None]
    thread, got = _later(lambda: _propose(other, 2.5))  # a new change supersedes it
    thread.join(30)
    with unit_of_work(engine) as s:
        rows = [(p.change["new"], p.status) for p in s.scalars(
            select(Proposal).order_by(Proposal.id))]
    assert rows == [({"p80": 2.0}, "superseded"), ({"p80": 2.5}, "pending")]


def _meeting(barrier: threading.Barrier | None) -> Callable[[str], None]:
    """A progress callback that waits for the other run at the first forecast step."""
    met = []

    def progress(step: str) -> None:
        if barrier is not None and not met and step.startswith("forecast"):
            met.append(step)
            barrier.wait()
    return progress


def test_two_learning_runs_at_once_do_not_double_the_ledger(engine: Engine,
                                                            other: Engine) -> None:
    load(engine, records(600, seed=2))
    # On PostgreSQL both runs reach the forecasts together; SQLite lets one writer at a time,
    # so there the second waits at its first write.
    barrier = threading.Barrier(2, timeout=60) if engine.dialect.name == "postgresql" else None
    thread, got = _later(lambda: run_learning(other, CAPS, _meeting(barrier)))
    report = run_learning(engine, CAPS, _meeting(barrier))
    thread.join(120)
    assert not isinstance(got[0], Exception), got
    assert report.forecasts_issued + got[0].forecasts_issued == 120
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Forecast)) == 120
        pending = list(s.scalars(select(Proposal.dedupe_key).where(Proposal.status == "pending")))
    assert pending and len(pending) == len(set(pending))
