"""`learnloop bench learn`: time one learning run over N synthetic items in a fresh store."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert

from core.model import Connection, Deviation, Item
from core.store import open_store, unit_of_work

DIMENSIONS = {"project": 20, "type": 6, "team": 12, "assignee": 80, "component": 30,
              "priority": 5}
OPEN_SHARE = 0.1
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def fill(engine: Engine, n: int, seed: int = 1, chunk: int = 20_000) -> None:
    """Insert `n` synthetic items (10% open) with their deviations, in bulk."""
    rng = np.random.default_rng(seed)
    with unit_of_work(engine) as s:
        conn = Connection(kind="bench", name="bench")
        s.add(conn)
        s.flush()
        conn_id = conn.id
    effects = {d: rng.normal(0, 0.25, k) for d, k in DIMENSIONS.items()}
    next_id = 1
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        codes = {d: rng.integers(0, k, m) for d, k in DIMENSIONS.items()}
        est = rng.choice([0.5, 1, 2, 3, 5, 8, 13, 20], m)
        log_ratio = sum(effects[d][codes[d]] for d in DIMENSIONS) + rng.normal(0.1, 0.5, m)
        tie = rng.random(m) < 0.3
        actual = np.where(tie, est, np.round(est * np.exp(log_ratio), 2))
        slip = np.round(rng.normal(1, 4, m) + 2 * effects["team"][codes["team"]])
        is_open = rng.random(m) < OPEN_SHARE
        items, devs = [], []
        for j in range(m):
            when = T0 + dt.timedelta(minutes=int((start + j) * 1440 * 1500 / n))
            due = when + dt.timedelta(days=7)
            seg = {d: f"{d}-{codes[d][j]}" for d in DIMENSIONS}
            done = not is_open[j]
            end = due + dt.timedelta(days=float(slip[j])) if done else None
            items.append({
                "id": next_id + j, "connection_id": conn_id, "external_id": f"B-{start + j}",
                "kind": "task", "title": "", "segments": seg, "unit": "hours",
                "status": "done" if done else "open", "planned_estimate": float(est[j]),
                "estimated_at": when, "planned_at": when, "planned_due": due, "actual_end": end,
                "actual_effort": float(actual[j]) if done else None, "deleted": False,
                "raw": {}, "created_at": when, "updated_at": when,
            })
            if done:
                devs.append({"item_id": next_id + j, "measure": "effort_ratio",
                             "planned": float(est[j]), "actual": float(actual[j]),
                             "value": float(actual[j] / est[j]), "computed_at": when})
                devs.append({"item_id": next_id + j, "measure": "slip_days", "planned": 0.0,
                             "actual": float(slip[j]), "value": float(slip[j]),
                             "computed_at": when})
        with engine.begin() as c:
            c.execute(insert(Item), items)
            c.execute(insert(Deviation), devs)
        next_id += m



def reference_seconds() -> float:
    """CPU seconds of one fixed workload of the kinds a learning run does (Python loops over
    dicts, JSON encoding, numpy sorts), to tell a slower machine from slower code: on a
    shared host the same code's run time moves with the host's speed, and this moves with it.
    """
    rng = np.random.default_rng(7)
    keys = rng.random(200_000)
    rows: list[dict[str, Any]] = [{"id": i, "team": f"t{i % 12}", "p80": i * 0.5}
                                  for i in range(100_000)]
    started = time.process_time()
    for _ in range(8):
        np.argsort(keys)
    counts: dict[str, float] = {}
    for row in rows:
        counts[row["team"]] = counts.get(row["team"], 0.0) + row["p80"]
    for row in rows[:50_000]:
        json.dumps(row, sort_keys=True)
    return round(time.process_time() - started, 3)


def _load() -> str:
    """The 1, 5 and 15 minute load averages (what else the machine was doing)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # not Linux
        return "unknown"


def _child(url: str, queue: Any) -> None:
    from core.learning.run import run_learning

    engine = open_store(url)
    marks: list[tuple[str, float, float]] = []

    def progress(step: str) -> None:
        marks.append((step, time.perf_counter(), time.process_time()))

    load, reference = _load(), reference_seconds()
    started, cpu = time.perf_counter(), time.process_time()
    report = run_learning(engine, {"bench": frozenset({"fields"})}, progress=progress)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    marks.append(("", time.perf_counter(), time.process_time()))
    # Wall and CPU seconds of each step, from its start to the next one's; a wall time well
    # above the CPU time is time spent waiting (the disk, or other processes on the cores).
    steps = {a[0]: {"wall": round(b[1] - a[1], 2), "cpu": round(b[2] - a[2], 2)}
             for a, b in itertools.pairwise(marks)}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
               "reference_seconds": [reference, reference_seconds()],
               "peak_mb": round(peak_kb / 1024, 1), "timings": report.timings, "steps": steps,
               "load_before": load, "load_after": _load(), "findings": len(report.findings),
               "forecasts_issued": report.forecasts_issued, "writes_queued": report.writes_queued})


def bench_learn(items: int, url: str | None = None) -> dict[str, Any]:
    """Fill a fresh store (SQLite in a temp dir unless `url`) and time one learning run.

    The run happens in a child process so its peak memory is its own.
    """
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = open_store(url)
        t0 = time.perf_counter()
        fill(engine, items)
        fill_s = time.perf_counter() - t0
        engine.dispose()
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(url, queue))
        proc.start()
        result: dict[str, Any] = queue.get()
        proc.join()
    return {"items": items, **result, "fill_seconds": round(fill_s, 1)}
