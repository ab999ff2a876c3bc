"""Calibration of the process-experiment judge on generated teams (tests/core/process_data):
six teams, a common trend, team levels, team-by-week shocks and item noise; team A changes
at day 0. Per scenario, over `--seeds` data sets: how often the verdict is `worked`, how often
the 90% interval covers the true effect, how often the pre-period trends are flagged.

    python -m benchmarks.process_did --seeds 300 --permutations 999
"""

from __future__ import annotations

import argparse
import json
import time

from core.process.did import Design, estimate
from core.process.measures import get
from core.process.verdict import WORKED, judge
from tests.core.process_data import observations, teams

SCENARIOS = {"null": (0.0, 0.0), "planted -3 days": (3.0, 0.0),
             "diverging pre-trend": (0.0, 0.15)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--min-effect", type=float, default=1.0)
    args = parser.parse_args()
    slip = get("slip")
    out = {}
    for name, (effect, diverge) in SCENARIOS.items():
        worked = covered = flagged = 0
        started = time.perf_counter()
        for seed in range(args.seeds):
            res = estimate(observations(teams(seed, effect=effect, diverge=diverge)),
                           Design(start=0.0, period_days=7, permutations=args.permutations,
                                  seed=seed))
            verdict = judge(res, slip, "decrease", args.min_effect, "change", "team A")
            worked += verdict.kind == WORKED
            covered += res.low <= -effect <= res.high
            flagged += res.diverging
        n = args.seeds
        out[name] = {"seeds": n, "worked": round(worked / n, 3),
                     "interval_covers_truth": round(covered / n, 3),
                     "trends_flagged": round(flagged / n, 3),
                     "seconds_per_estimate": round((time.perf_counter() - started) / n, 4)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
