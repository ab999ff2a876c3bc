"""First and second sync of N HubSpot deals (with their contacts, companies and 3 email
engagements per deal, sent by sequences with A/B variants: `tests/emulators/hubspot/portal.py`)
through hubspot-api-client against the local emulator, then write-back of one property set per
deal: time and requests per 1,000 records.

    nice -n 10 python -m benchmarks.hubspot_sync --deals 100000
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


def run(n: int) -> dict[str, Any]:
    """Seed, sync twice into a fresh SQLite store, write back, and count."""
    from sqlalchemy import func, select

    from connectors.hubspot import HubSpotConfig, HubSpotConnector
    from core.connections import add_connection
    from core.contract import FIELDS, Intent
    from core.model import Enrollment, Item, ItemLink
    from core.store import open_store, unit_of_work
    from core.sync import run_sync
    from tests.connectors.hubspot.harness import emulator
    from tests.emulators.hubspot.portal import DEAL0, seed_portal

    load = os.getloadavg()
    emu = emulator()
    emu.reset()
    emu.search_per_second = None  # HubSpot's 5/s would make the search part take minutes
    portal = seed_portal(emu, deals=n, emails_per_deal=3)
    config = {"access_token": emu.token, "base_url": emu.base, "search_per_second": 1000}
    records = n + n + portal.companies + portal.emails
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        with unit_of_work(engine) as s:
            add_connection(s, HubSpotConnector, "bench", config, {})
        connector = HubSpotConnector(HubSpotConfig(**config), {})
        before = len(emu.requests)
        started, cpu = time.perf_counter(), time.process_time()
        report = run_sync(engine, "bench", connector)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        first = len(emu.requests) - before
        before = len(emu.requests)
        run_sync(engine, "bench", connector)
        second = len(emu.requests) - before
        with unit_of_work(engine) as s:
            kinds = dict(s.execute(select(Item.kind, func.count()).group_by(Item.kind)).all())
            enrollments = s.scalar(select(func.count()).select_from(Enrollment))
            links = s.scalar(select(func.count()).select_from(ItemLink))
        connector.install()
        intents = [Intent(k, f"deal:{DEAL0 + k}", FIELDS,
                          {"risk": "medium", "insight": f"P80 close in {k % 40} days",
                           "win_probability": round(k % 100 / 100, 2),
                           "recommended_variant": ("500", "501")[k % 2]})
                   for k in range(n)]
        before = len(emu.requests)
        started = time.perf_counter()
        results = connector.deliver(intents)
        write_seconds = time.perf_counter() - started
        written = len(emu.requests) - before
    return {"deals": n, "records": records, "created": report.created, "items": kinds,
            "enrollments": enrollments, "links": links, "batches": report.batches,
            "events": report.events, "quarantined": report.quarantined,
            "first_sync_seconds": round(seconds, 1),
            "first_sync_cpu_seconds": round(cpu, 1),  # connector, store and emulator together
            "first_sync_requests": first,
            "requests_per_1000_records": round(first * 1000 / records, 1),
            "no_change_sync_requests": second,
            "writeback_ok": sum(r.ok for r in results), "writeback_requests": written,
            "writeback_seconds": round(write_seconds, 1),
            "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    """Print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(run(args.deals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
