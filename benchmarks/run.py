"""Run the benchmarks and print one JSON line per result: `make bench` (or python -m benchmarks.run)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    """Learning-run timings at several sizes, then the SiP backtest when the data is here."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--jira-issues", type=int, default=50_000)
    args = parser.parse_args()
    from webapp.bench import bench_learn

    for n in args.items:
        result = bench_learn(n)
        print(json.dumps(result), flush=True)
    if args.jira_issues:
        from benchmarks.jira_sync import run as jira_run

        print(json.dumps({"jira_sync": jira_run(args.jira_issues)}), flush=True)
    sip = SHARED / "sip-effort-estimates"
    if not sip.is_dir():
        print(json.dumps({"skipped": f"{sip} not found (a clone without ../shared)"}))
        return 0
    from benchmarks.sip import sip_backtest

    print(json.dumps(sip_backtest(sip)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
