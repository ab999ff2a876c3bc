"""`learnloop experiments analyze FILE.csv`: decide tests and find segment policies; the
process-experiment commands (`declare`, `list`, `show`, `stop`) are in `webapp.cli.process`.

Arguments and rendering only: the engine is `core.experiments` (the learning run's too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.file.client import read_table
from core.errors import InputError
from core.experiments import aggregated, columns
from core.experiments.analyze import Experiment, analyze_test, analyze_tests, segment_findings
from core.experiments.build import Units, build
from webapp.cli import process
from webapp.cli.common import JSON_HELP, emit_json, out

app = typer.Typer(help="Analyse outreach experiments (A/B/n tests); declare and follow process "
                  "experiments.", no_args_is_help=True)
process.register(app)


def _ratio_columns(ratios: list[str]) -> dict[str, tuple[str, str]]:
    found = {}
    for spec in ratios:
        num, sep, den = spec.partition("/")
        if not sep or not num.strip() or not den.strip():
            raise InputError(f"--ratio expects NUMERATOR/DENOMINATOR columns, got {spec!r}")
        found[spec] = (num.strip(), den.strip())
    return found


def _unit_level(path: Path, encoding: str, arm: str, control: str | None, metrics: list[str],
                segments: list[str], ratios: list[str], account: str | None,
                date: str | None) -> tuple[Experiment, dict[str, float]]:
    ratio_cols = _ratio_columns(ratios)
    parts = [c for pair in ratio_cols.values() for c in pair]
    extra = [c for c in (account, date) if c]
    cols = columns.columns(read_table(str(path), encoding).rows,
                           [arm, *metrics, *parts, *segments, *extra], path.name)
    arms = columns.labels(cols[arm])
    if "" in arms:
        raise InputError(f"{path.name} row {arms.index('') + columns.FIRST_ROW}: column "
                         f"'{arm}' (the arm) is empty")
    units = Units(
        arms=arms,
        metrics={m: columns.numbers(path.name, m, cols[m]) for m in metrics},
        ratios={spec: (columns.numbers(path.name, n, cols[n]),
                       columns.numbers(path.name, d, cols[d]))
                for spec, (n, d) in ratio_cols.items()},
        segments={s: columns.labels(cols[s]) for s in segments},
        accounts=columns.labels(cols[account]) if account else None,
        days=columns.days(path.name, date, cols[date]) if date else None)
    return build(path.stem, units, control, f"{path.name}: column '{arm}'")


@app.command("analyze")
def analyze(
    file: Annotated[Path, typer.Argument(help="CSV: one row per unit, or per test and arm.")],
    arm: Annotated[str, typer.Option(help="Column naming the arm (variant).")],
    metric: Annotated[list[str] | None, typer.Option(help="Unit-level metric column (repeat).")]
    = None,
    ratio: Annotated[list[str] | None, typer.Option(
        help="Unit-level ratio metric NUM/DEN (e.g. replies/contacts per account; repeat).")]
    = None,
    control: Annotated[str | None, typer.Option(help="The control arm (default: guessed).")]
    = None,
    segment: Annotated[list[str] | None, typer.Option(help="Segment column (repeatable).")]
    = None,
    test: Annotated[str | None, typer.Option(help="Pre-aggregated: column naming the test.")]
    = None,
    units: Annotated[str | None, typer.Option(help="Pre-aggregated: units column.")] = None,
    conversions: Annotated[str | None, typer.Option(help="Pre-aggregated: conversions column.")]
    = None,
    account: Annotated[str | None, typer.Option(
        help="Unit-level: column naming each unit's account; units of one account in one arm "
             "are analysed together (the account is the unit).")] = None,
    date: Annotated[str | None, typer.Option(
        help="Unit-level: column with each unit's assignment date, for each metric's "
             "day-to-day dispersion.")] = None,
    observational: Annotated[bool, typer.Option(
        help="Not randomised: segment results are hypotheses, never policies.")] = False,
    encoding: Annotated[str, typer.Option(help="Text encoding.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Per test: sample-ratio check, lifts with intervals, chance to win, and a decision that
    does not fool itself; per segment: policies that survive interaction tests and BH."""
    if test or units or conversions:
        if not (test and units and conversions):
            raise InputError("pre-aggregated input needs --test, --units and --conversions")
        cols = columns.columns(read_table(str(file), encoding).rows,
                               [test, arm, units, conversions], file.name)
        tests = aggregated.tests_from_rows(
            file.name, cols[test], cols[arm], columns.numbers(file.name, units, cols[units]),
            columns.numbers(file.name, conversions, cols[conversions]), units, conversions,
            control)
        phi = aggregated.dispersion(tests)
        result = {"tests": analyze_tests(tests, phi), "segment_findings": []}
    else:
        if not metric and not ratio:
            raise InputError("unit-level input needs at least one --metric COLUMN or --ratio")
        one, phis = _unit_level(file, encoding, arm, control, metric or [], segment or [],
                                ratio or [], account, date)
        result = {"tests": [analyze_test(one, phis)],
                  "segment_findings": segment_findings(one, observational, dispersion=phis)}
    if as_json:
        emit_json(result, compact=len(result["tests"]) > 50)
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    tests = result["tests"]
    if len(tests) > 20:
        winners = sum(1 for t in tests if t["decision"] == "winner")
        unhealthy = sum(1 for t in tests if t["decision"] == "unhealthy")
        out.print(f"{len(tests)} tests: {winners} with a winner, {unhealthy} unhealthy (sample "
                  f"ratio off), {len(tests) - winners - unhealthy} without a decision; "
                  f"dispersion {tests[0]['dispersion']}")
        tests = [t for t in tests if t["decision"] == "winner"][:20]
    for t in tests:
        srm = "n/a" if t["srm_p"] is None else f"{t['srm_p']:.3g}"
        out.print(f"test {t['test']}: {t['decision']}"
                  + (f", winner {t['winner']}" if t["winner"] else "")
                  + f" (control {t['control']}, sample-ratio p {srm})")
        for m, arms in t["metrics"].items():
            for a, r in arms.items():
                if r["lift"] is None:
                    out.print(f"  {m} {a}: {r['mean']:.4g} (n={r['n']}, control)")
                    continue
                ci = (f"95% CI {r['ci'][0]:+.1%} to {r['ci'][1]:+.1%}" if r["ci"]
                      else "no interval: no variance")
                ctw = "n/a" if r["chance_to_win"] is None else f"{r['chance_to_win']:.1%}"
                out.print(f"  {m} {a}: {r['mean']:.4g} (n={r['n']}), lift {r['lift']:+.1%} "
                          f"({ci}), chance to win {ctw}")
    for f in result["segment_findings"]:
        out.print(f"segment {f['kind']}: {f['statement']}")
