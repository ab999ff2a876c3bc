"""First and second sync of N Jira issues (with changelogs) through the real client against the
local emulator: requests per 1,000 issues and issues per second.

    python -m benchmarks.jira_sync --issues 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def run(n: int) -> dict[str, float | int]:
    """Seed the emulator, sync twice into a fresh SQLite store, count requests and time."""
    from connectors.jira import JiraConfig, JiraConnector
    from core.connections import add_connection
    from core.store import open_store, unit_of_work
    from core.sync import run_sync
    from tests.connectors.jira.harness import emulator, seed

    emu = emulator()
    emu.issues.clear()
    seed(emu, n)
    config = {"url": emu.base, "email": "bot@example.com", "api_token": "bench-token-1234",
              "jql": "project = PAY"}
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        with unit_of_work(engine) as s:
            add_connection(s, JiraConnector, "bench", config, {})
        connector = JiraConnector(JiraConfig(**config), {})
        before = len(emu.requests)
        started = time.perf_counter()
        report = run_sync(engine, "bench", connector)
        seconds = time.perf_counter() - started
        first = len(emu.requests) - before
        before = len(emu.requests)
        run_sync(engine, "bench", connector)
        second = len(emu.requests) - before
    return {"issues": n, "created": report.created, "events": report.events,
            "seconds": round(seconds, 1), "issues_per_second": round(n / seconds, 1),
            "requests": first, "requests_per_1000_issues": round(first * 1000 / n, 1),
            "second_sync_requests": second}


def main() -> int:
    """Print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(run(args.issues)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
