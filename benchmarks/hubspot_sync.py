"""First and second sync of N HubSpot deals (with their contacts, companies and 3 emails per
deal) through hubspot-api-client against the local emulator, then write-back of one property
set per deal: time and requests per 1,000 records.

    python -m benchmarks.hubspot_sync --deals 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DAY_MS = 86_400_000
T0_MS = 1_736_150_400_000  # 2025-01-06


def seed(emu: Any, n: int) -> None:
    """`n` deals with histories, one contact each, n/10 companies, 3 emails per deal."""
    companies = max(1, n // 10)
    contacts_first = 10_000_000
    companies_first = 20_000_000
    deals_first = 30_000_000
    emails_first = 40_000_000
    stages = ("appointmentscheduled", "contractsent", "closedwon", "closedlost")

    def company(i: int) -> Any:
        return ({"name": f"Company {i}", "industry": ("RETAIL", "FINANCIAL_SERVICES")[i % 2],
                 "numberofemployees": str(10 + i % 900), "country": "Germany"},
                T0_MS, {}, {})

    def contact(i: int) -> Any:
        return ({"firstname": f"C{i}", "lastname": "Doe", "jobtitle": "VP Sales",
                 "lifecyclestage": "opportunity"}, T0_MS, {},
                {"companies": [companies_first + i % companies]})

    def deal(i: int) -> Any:
        created = T0_MS + (i % 300) * DAY_MS
        stage = stages[i % 4]
        history = {"dealstage": [("appointmentscheduled", created),
                                 (stage, created + 10 * DAY_MS)],
                   "closedate": [(str(created + 30 * DAY_MS), created),
                                 (str(created + 37 * DAY_MS), created + 11 * DAY_MS)],
                   "amount": [("1000", created), ("1200", created + 12 * DAY_MS)]}
        return ({"dealname": f"Deal {i}", "pipeline": "default", "dealtype": "newbusiness"},
                created + 12 * DAY_MS, history,
                {"contacts": [contacts_first + i], "companies": [companies_first + i % companies]})

    def email(i: int) -> Any:
        sent = T0_MS + (i % 300) * DAY_MS
        return ({"hs_email_subject": "Intro", "hs_email_direction": "EMAIL",
                 "hs_timestamp": str(sent), "hs_email_open_count": "1",
                 "hs_email_reply_count": str(i % 2)}, sent, {},
                {"contacts": [contacts_first + i // 3], "deals": [deals_first + i // 3]})

    emu.add_generated("companies", companies, company, first_id=companies_first)
    emu.add_generated("contacts", n, contact, first_id=contacts_first)
    emu.add_generated("deals", n, deal, first_id=deals_first)
    emu.add_generated("emails", 3 * n, email, first_id=emails_first)


def run(n: int) -> dict[str, Any]:
    """Seed, sync twice into a fresh SQLite store, write back, and count."""
    from connectors.hubspot import HubSpotConfig, HubSpotConnector
    from core.connections import add_connection
    from core.contract import FIELDS, Intent
    from core.store import open_store, unit_of_work
    from core.sync import run_sync
    from tests.connectors.hubspot.harness import emulator

    emu = emulator()
    emu.reset()
    emu.search_per_second = None  # HubSpot's 5/s would make the search part take minutes
    seed(emu, n)
    config = {"access_token": emu.token, "base_url": emu.base, "search_per_second": 1000}
    records = n + n + max(1, n // 10) + 3 * n
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
        connector.install()
        intents = [Intent(k, f"deal:{30_000_000 + k}", FIELDS,
                          {"risk": "medium", "insight": f"P80 close in {k % 40} days"})
                   for k in range(n)]
        before = len(emu.requests)
        started = time.perf_counter()
        results = connector.deliver(intents)
        write_seconds = time.perf_counter() - started
        written = len(emu.requests) - before
    return {"deals": n, "records": records, "created": report.created,
            "events": report.events, "quarantined": report.quarantined,
            "first_sync_seconds": round(seconds, 1),
            "first_sync_cpu_seconds": round(cpu, 1),  # connector, store and emulator together
            "first_sync_requests": first,
            "requests_per_1000_records": round(first * 1000 / records, 1),
            "no_change_sync_requests": second,
            "writeback_ok": sum(r.ok for r in results), "writeback_requests": written,
            "writeback_seconds": round(write_seconds, 1)}


def main() -> int:
    """Print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(run(args.deals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
