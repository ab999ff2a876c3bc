"""`learnloop experiments analyze FILE.csv`: decide tests and find segment policies."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from connectors.file.client import read_table
from core.errors import InputError
from core.experiments.analyze import Experiment, analyze_test, segment_findings
from core.experiments.stats import ArmStats, Moments, RatioMoments, dispersion_across_tests
from core.tabular.header import normalise
from core.tabular.values import Cell, is_missing, parse_number
from webapp.cli.common import JSON_HELP, emit_json, out

app = typer.Typer(help="Analyse outreach experiments (A/B/n tests).", no_args_is_help=True)
CONTROL_WORDS = ("control", "baseline", "holdout", "no ")
MAX_SEGMENT_VALUES = 30


def _columns(path: Path, encoding: str, wanted: list[str]) -> tuple[dict[str, list[Cell]], int]:
    table = read_table(str(path), encoding)
    rows = [r for r in table.rows if any(not is_missing(c) for c in r)]
    if len(rows) < 2:
        raise InputError(f"{path.name}: the file is empty (no data rows)")
    header = [normalise(str(c)) if c is not None else "" for c in rows[0]]
    missing = [c for c in wanted if normalise(c) not in header]
    if missing:
        shown = ", ".join(repr(str(c)) for c in rows[0][:30])
        raise InputError(f"{path.name}: missing column {', '.join(repr(c) for c in missing)}; "
                         f"the columns are: {shown}")
    cols = {}
    for c in wanted:
        i = header.index(normalise(c))
        cols[c] = [r[i] if i < len(r) else None for r in rows[1:]]
    return cols, len(rows) - 1


BOOLEAN = {"yes": 1.0, "y": 1.0, "true": 1.0, "no": 0.0, "n": 0.0, "false": 0.0}


def _numbers(path: Path, name: str, values: list[Cell], first_row: int = 2) -> np.ndarray[Any, Any]:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if is_missing(v):
            raise InputError(f"{path.name} row {i + first_row}: column '{name}' is empty")
        if isinstance(v, str) and v.strip().lower() in BOOLEAN:
            out[i] = BOOLEAN[v.strip().lower()]
            continue
        try:
            out[i] = parse_number(v)
        except ValueError:
            raise InputError(f"{path.name} row {i + first_row}: column '{name}': not a number "
                             f"{v!r}") from None
    return out


def _control(arms: list[str], wanted: str | None, where: str) -> str:
    if wanted is not None:
        if wanted not in arms:
            raise InputError(f"{where}: unknown control arm {wanted!r} (arms: {', '.join(arms)})")
        return wanted
    for arm in arms:
        if any(w in arm.lower() or arm.lower().startswith(w) for w in CONTROL_WORDS):
            return arm
    return sorted(arms)[0]


def _moments(codes: np.ndarray[Any, Any], k: int, y: np.ndarray[Any, Any] | tuple[Any, Any],
             binary: bool) -> list[ArmStats]:
    """Per-code statistics of a metric, or of a ratio when `y` is (numerator, denominator)."""
    n = np.bincount(codes, minlength=k)
    if isinstance(y, tuple):
        num, den = y
        sums = [np.bincount(codes, weights=w, minlength=k)
                for w in (num, den, num * num, den * den, num * den)]
        return [RatioMoments(int(n[i]), float(sums[0][i]), float(sums[1][i]), float(sums[2][i]),
                             float(sums[3][i]), float(sums[4][i])) for i in range(k)]
    s1 = np.bincount(codes, weights=y, minlength=k)
    s2 = np.bincount(codes, weights=y * y, minlength=k)
    return [Moments(int(n[i]), float(s1[i]), float(s2[i]), binary) for i in range(k)]


def _ratio_columns(ratios: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for spec in ratios:
        num, sep, den = spec.partition("/")
        if not sep or not num.strip() or not den.strip():
            raise InputError(f"--ratio expects NUMERATOR/DENOMINATOR columns, got {spec!r}")
        out[spec] = (num.strip(), den.strip())
    return out


def _unit_level(path: Path, encoding: str, arm: str, control: str | None, metrics: list[str],
                segments: list[str], ratios: list[str] | None = None) -> Experiment:
    ratio_cols = _ratio_columns(ratios or [])
    parts_needed = [c for pair in ratio_cols.values() for c in pair]
    cols, _ = _columns(path, encoding, [arm, *metrics, *dict.fromkeys(parts_needed), *segments])
    arm_values = [str(v).strip() if not is_missing(v) else "" for v in cols[arm]]
    for i, v in enumerate(arm_values):
        if not v:
            raise InputError(f"{path.name} row {i + 2}: column '{arm}' (the arm) is empty")
    names = sorted(set(arm_values))
    if len(names) < 2:
        raise InputError(f"{path.name}: column '{arm}' has only one arm ({names[0]!r})")
    index = {a: i for i, a in enumerate(names)}
    codes = np.fromiter((index[a] for a in arm_values), dtype=np.intp, count=len(arm_values))
    values: dict[str, Any] = {m: _numbers(path, m, cols[m]) for m in metrics}
    binary = {m: bool(np.isin(values[m], (0.0, 1.0)).all()) for m in metrics}
    for spec, (num, den) in ratio_cols.items():
        values[spec] = (_numbers(path, num, cols[num]), _numbers(path, den, cols[den]))
        binary[spec] = False
    metrics = [*metrics, *ratio_cols]
    k = len(names)
    per_metric = {m: _moments(codes, k, values[m], binary[m]) for m in metrics}
    test = Experiment(name=path.stem, arms={a: {m: per_metric[m][index[a]] for m in metrics}
                                      for a in names},
                control=_control(names, control, path.name))
    seg_values = {s: np.asarray([str(v).strip() if not is_missing(v) else "" for v in cols[s]])
                  for s in segments}
    usable = [s for s in segments if 1 < len(set(seg_values[s].tolist())) <= MAX_SEGMENT_VALUES]
    for combo in [(s,) for s in usable] + list(itertools.combinations(usable, 2)):
        parts = [[f"{s}={v}" if v else "" for v in seg_values[s].tolist()] for s in combo]
        keys = [",".join(p) if all(p) else "" for p in zip(*parts, strict=True)]
        labels, inverse = np.unique(np.asarray(keys), return_inverse=True)
        cell_codes = inverse * k + codes
        for m in metrics:
            stats = _moments(cell_codes, len(labels) * k, values[m], binary[m])
            for j, label in enumerate(labels.tolist()):
                if not label:
                    continue
                cell = test.segments.setdefault(label, {})
                for a in names:
                    cell.setdefault(a, {})[m] = stats[j * k + index[a]]
    return test


def _aggregated(path: Path, encoding: str, test_col: str, arm: str, units: str,
                conversions: str, control: str | None) -> list[Experiment]:
    cols, _ = _columns(path, encoding, [test_col, arm, units, conversions])
    n = _numbers(path, units, cols[units])
    c = _numbers(path, conversions, cols[conversions])
    tests: dict[str, dict[str, Moments]] = {}
    for i, (t, a) in enumerate(zip(cols[test_col], cols[arm], strict=True)):
        row = i + 2
        if is_missing(t) or is_missing(a):
            raise InputError(f"{path.name} row {row}: the test or arm is empty")
        if n[i] < 0 or c[i] < 0:
            raise InputError(f"{path.name} row {row}: negative count ({units}={n[i]:g}, "
                             f"{conversions}={c[i]:g})")
        if c[i] > n[i]:
            raise InputError(f"{path.name} row {row}: {conversions} ({c[i]:g}) > {units} "
                             f"({n[i]:g})")
        if n[i] != int(n[i]) or c[i] != int(c[i]):
            raise InputError(f"{path.name} row {row}: counts must be whole numbers")
        arms = tests.setdefault(str(t).strip(), {})
        name = str(a).strip()
        if name in arms:
            raise InputError(f"{path.name} row {row}: arm {name!r} appears twice in test {t!r}")
        arms[name] = Moments(int(n[i]), float(c[i]), float(c[i]), True)
    out = []
    for name, arms in tests.items():
        if len(arms) < 2:
            raise InputError(f"{path.name}: test {name!r} has only one arm")
        ctrl = _control(list(arms), control, f"{path.name} test {name!r}")
        out.append(Experiment(name=name, arms={a: {conversions: m} for a, m in arms.items()},
                        control=ctrl))
    return out


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
        tests = _aggregated(file, encoding, test, arm, units, conversions, control)
        dispersion = dispersion_across_tests(
            [[(int(m[conversions].n), m[conversions].total) for m in t.arms.values()]
             for t in tests])
        result = {"tests": [analyze_test(t, dispersion) for t in tests], "segment_findings": []}
    else:
        if not metric and not ratio:
            raise InputError("unit-level input needs at least one --metric COLUMN or --ratio")
        one = _unit_level(file, encoding, arm, control, metric or [], segment or [], ratio)
        result = {"tests": [analyze_test(one)],
                  "segment_findings": segment_findings(one, observational)}
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
                  + f" (control {t['control']}, sample-ratio p {srm})", markup=False)
        for m, arms in t["metrics"].items():
            for a, r in arms.items():
                if r["lift"] is None:
                    out.print(f"  {m} {a}: {r['mean']:.4g} (n={r['n']}, control)", markup=False)
                    continue
                ci = r["ci"] or [float("nan")] * 2
                out.print(f"  {m} {a}: {r['mean']:.4g} (n={r['n']}), lift {r['lift']:+.1%} "
                          f"(95% CI {ci[0]:+.1%} to {ci[1]:+.1%}), chance to win "
                          f"{r['chance_to_win']:.1%}", markup=False)
    for f in result["segment_findings"]:
        out.print(f"segment {f['kind']}: {f['statement']}", markup=False)
