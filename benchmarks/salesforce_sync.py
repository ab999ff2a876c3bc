"""First sync of N Salesforce opportunities (3 OpportunityHistory rows each, N/10 accounts)
through simple-salesforce against the local emulator, on the REST path and on the Bulk API 2.0
path, each into a fresh SQLite store; then a sync with no change, and the write-back of one
field set per opportunity: time and API calls per 1,000 records.

    nice -n 10 python -m benchmarks.salesforce_sync --opportunities 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def sync_once(emu: Any, config: dict[str, Any], records: int) -> dict[str, Any]:
    """One first sync and one no-change sync into a fresh store."""
    from connectors.salesforce import SalesforceConfig, SalesforceConnector
    from core.connections import add_connection
    from core.store import open_store, unit_of_work
    from core.sync import run_sync

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        with unit_of_work(engine) as s:
            add_connection(s, SalesforceConnector, "bench", config, {})
        connector = SalesforceConnector(SalesforceConfig(**config), {})
        jobs = len(emu.bulk.jobs)
        before = emu.api_calls()
        started, cpu = time.perf_counter(), time.process_time()
        report = run_sync(engine, "bench", connector)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        calls = emu.api_calls() - before
        before = emu.api_calls()
        again = run_sync(engine, "bench", connector)
        engine.dispose()
    return {"created": report.created, "events": report.events,
            "quarantined": report.quarantined, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),  # connector, store and emulator together
            "api_calls": calls, "calls_per_1000_records": round(calls * 1000 / records, 2),
            "bulk_jobs": len(emu.bulk.jobs) - jobs,
            "no_change_sync_calls": emu.api_calls() - before,
            "no_change_sync_created": again.created + again.updated}


def run(n: int, paths: list[str], writes: int | None) -> dict[str, Any]:
    """Seed, sync on each path, write back, and count."""
    from connectors.salesforce import SalesforceConfig, SalesforceConnector
    from core.contract import FIELDS, Intent
    from tests.connectors.salesforce.harness import SalesforceHarness

    harness = SalesforceHarness(n=0)
    emu = harness.emu
    emu.daily_max = 10_000_000
    started = time.perf_counter()
    ids = emu.seed_pipeline(n, histories=3)
    # The accounts were imported long ago (seeding stamps them now, which would put all of
    # them inside the lookback window of the syncs below).
    emu.set_modstamp("Account", list(emu.tables["Account"].rows), "2026-01-04T00:00:00Z")
    seeded = time.perf_counter() - started
    records = n + 3 * n + max(1, n // 10) + 1  # opportunities, history rows, accounts, user
    out: dict[str, Any] = {"opportunities": n, "records": records,
                           "seed_seconds": round(seeded, 1),
                           "load_average_before": [round(x, 1) for x in os.getloadavg()]}
    base = harness.config()
    for path in paths:
        config = {**base, "bulk_threshold": 10_000 if path == "bulk" else 10 ** 9}
        out[path] = sync_once(emu, config, records)
        out[path]["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    count = n if writes is None else min(writes, n)
    connector = SalesforceConnector(SalesforceConfig(**base), {})
    connector.install()
    intents = [Intent(k, f"opportunity:{rid}", FIELDS,
                      {"forecast_finish_p80": "2026-06-30", "risk": "medium",
                       "insight": f"P80 close in {k % 40} days (n=400)"})
               for k, rid in enumerate(ids[:count], 1)]
    before = emu.api_calls()
    started = time.perf_counter()
    results = connector.deliver(intents)
    out["writeback"] = {"updates": count, "ok": sum(r.ok for r in results),
                        "api_calls": emu.api_calls() - before,
                        "seconds": round(time.perf_counter() - started, 1)}
    out["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
    out["unexpected"] = harness.unexpected()[:3]
    return out


def main() -> int:
    """Print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--paths", default="rest,bulk", help="rest, bulk or both (comma)")
    parser.add_argument("--writes", type=int, default=None,
                        help="field updates to write back (default: one per opportunity)")
    args = parser.parse_args()
    print(json.dumps(run(args.opportunities, args.paths.split(","), args.writes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
