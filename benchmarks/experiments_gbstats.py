"""`learnloop experiments analyze` against GrowthBook's engine (gbstats 0.8.0) on the same
pre-aggregated tests: per test a sample-ratio check and a Bayesian comparison of every
treatment with the control, each side a whole process, timed in the same run.

    python -m benchmarks.experiments_gbstats --tests 10000 --arms 4

gbstats runs in its own virtual environment (default /tmp/gbvenv), created with
`pip install gbstats==0.8.0` when it is missing.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GBSTATS = "gbstats==0.8.0"
PRIOR_SD = 0.3  # learnloop's proper prior on the relative lift, given to gbstats too

# Runs inside the gbstats venv: read the CSV, then per test GrowthBook's SRM check and one
# EffectBayesianABTest per treatment; writes chance to win per (test, arm) as JSON.
GB_SCRIPT = r"""
import csv, json, sys
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm

path, out, prior_var = sys.argv[1], sys.argv[2], float(sys.argv[3])
tests = {}
with open(path, newline="") as f:
    for row in csv.DictReader(f):
        tests.setdefault(row["test"], []).append((row["arm"], int(row["sent"]),
                                                  int(row["replies"])))
config = EffectBayesianConfig(prior_effect=GaussianPrior(0, prior_var, True),
                              prior_type="relative")
result = {}
for name, arms in tests.items():
    srm = check_srm([n for _, n, _ in arms], [1 / len(arms)] * len(arms))
    control = next(a for a in arms if a[0] == "control")
    stat_a = ProportionStatistic(n=control[1], sum=control[2])
    ctw = {}
    for arm, n, c in arms:
        if arm == "control":
            continue
        res = EffectBayesianABTest(stat_a, ProportionStatistic(n=n, sum=c), config).compute_result()
        ctw[arm] = res.chance_to_win
    result[name] = {"srm_p": srm, "ctw": ctw}
json.dump(result, open(out, "w"))
"""


def write_tests(path: Path, tests: int, arms: int, seed: int = 0) -> None:
    """Pre-aggregated tests: `arms` arms each (the first is the control) splitting 8,000 to
    24,000 sends evenly, one test in ten with a real 25% lift on arm B and one in a hundred
    with a broken split (arm B short of 10%); reply rates 3-15%."""
    rng = random.Random(seed)
    names = ["control", *(chr(ord("B") + i) for i in range(arms - 1))]
    lines = ["test,arm,sent,replies"]
    for t in range(tests):
        base = rng.uniform(0.03, 0.15)
        total = rng.randint(8000, 24000)
        for arm in names:
            share = 1 / arms
            n = round(total * share + rng.gauss(0, (total * share * (1 - share)) ** 0.5))
            if arm == "B" and t % 100 == 1:
                n = round(n * 0.9)
            p = base * (1.25 if arm == "B" and t % 10 == 0 else 1.0)
            c = round(n * p + rng.gauss(0, (n * p * (1 - p)) ** 0.5))
            lines.append(f"t{t},{arm},{n},{max(0, min(n, c))}")
    path.write_text("\n".join(lines) + "\n")


def gb_python(venv: Path) -> Path:
    """The gbstats venv's python, creating the venv and installing gbstats when missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import gbstats, importlib.metadata as m; "
             "assert m.version('gbstats') == '0.8.0'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", GBSTATS], check=True)
    return python


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(cmd: list[str], stdout: Path | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one whole process (CPU time barely moves when other
    work shares the machine; wall-clock does)."""
    cpu, started = _cpu(), time.perf_counter()
    with open(stdout or "/dev/null", "w") as sink:
        subprocess.run(cmd, check=True, stdout=sink)
    return time.perf_counter() - started, _cpu() - cpu


def run(tests: int, arms: int, venv: Path, repeat: int = 1) -> dict[str, float | int]:
    """Time both whole processes on the same file (best of `repeat`) and compare their
    chances to win."""
    python = gb_python(venv)
    learnloop = Path(sys.executable).parent / "learnloop"
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, ours, theirs = Path(tmp) / "tests.csv", Path(tmp) / "ll.json", \
            Path(tmp) / "gb.json"
        write_tests(csv_path, tests, arms)
        ll_cmd = [str(learnloop), "experiments", "analyze", str(csv_path), "--test", "test",
                  "--arm", "arm", "--units", "sent", "--conversions", "replies", "--json"]
        gb_cmd = [str(python), "-c", GB_SCRIPT, str(csv_path), str(theirs), str(PRIOR_SD ** 2)]
        ll = [_timed(ll_cmd, ours) for _ in range(repeat)]
        gb = [_timed(gb_cmd) for _ in range(repeat)]
        ll_s, gb_s = min(w for w, _ in ll), min(w for w, _ in gb)
        mine = {t["test"]: t for t in json.loads(ours.read_text())["tests"]}
        gb_result = json.loads(theirs.read_text())
    diff = max(abs(mine[name]["metrics"]["replies"][arm]["chance_to_win"] - ctw)
               for name, r in gb_result.items() for arm, ctw in r["ctw"].items())
    srm = max(abs(mine[name]["srm_p"] - r["srm_p"]) for name, r in gb_result.items())
    decisions = [t["decision"] for t in mine.values()]
    return {"tests": tests, "arms": arms, "learnloop_seconds": round(ll_s, 2),
            "gbstats_seconds": round(gb_s, 2), "ratio": round(gb_s / ll_s, 1),
            "learnloop_cpu_seconds": round(min(c for _, c in ll), 2),
            "gbstats_cpu_seconds": round(min(c for _, c in gb), 2),
            "cpu_ratio": round(min(c for _, c in gb) / min(c for _, c in ll), 1),
            "winners": decisions.count("winner"), "unhealthy": decisions.count("unhealthy"),
            "dispersion": next(iter(mine.values()))["dispersion"],
            "max_chance_to_win_difference": round(diff, 4),
            "max_srm_p_difference": float(f"{srm:.2g}")}


def main() -> int:
    """Print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--arms", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/gbvenv"))
    args = parser.parse_args()
    print(json.dumps(run(args.tests, args.arms, args.venv, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
