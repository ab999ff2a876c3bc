"""Measure seeding the Salesforce emulator with many opportunities (not a test: a figure).

    .venv/bin/python -m tests.emulators.salesforce.measure_seed [N]

Prints the seconds and the peak resident memory for N opportunities (default 100,000), each
with 3 OpportunityHistory rows and one account per 10 opportunities, then the time of one
REST page and of a full `SystemModstamp >=` queryAll through simple-salesforce.
"""

from __future__ import annotations

import os
import resource
import sys
import time


def main() -> None:
    from simple_salesforce import Salesforce

    from tests.emulators.salesforce.server import SalesforceEmulator

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emu = SalesforceEmulator()
    started = time.perf_counter()
    emu.seed_pipeline(n, histories=3)
    seeded = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"seeded {n:,} opportunities + {3 * n:,} history rows + {n // 10:,} accounts in "
          f"{seeded:.1f} s; peak RSS {peak:.0f} MB ({peak - base:.0f} MB above the start)")
    emu.start()
    os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_file
    sf = Salesforce(instance_url=emu.base, session_id=emu.issue_token(), session=emu.session())
    started = time.perf_counter()
    records = 0
    for _ in sf.query_all_iter("SELECT Id, Name, StageName, Amount, CloseDate, SystemModstamp "
                               "FROM Opportunity WHERE SystemModstamp >= 2020-01-01T00:00:00Z "
                               "ORDER BY SystemModstamp, Id", include_deleted=True):
        records += 1
    took = time.perf_counter() - started
    print(f"queryAll of {records:,} records in {emu.api_calls():,} calls: {took:.1f} s")
    emu.stop()


if __name__ == "__main__":
    main()
