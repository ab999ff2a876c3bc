"""The one experiment builder: units (rows of a file or enrollments in the store) into arm
statistics per metric and segment, with the control found and each metric's dispersion.

Both `learnloop experiments analyze` and the learning run build their tests here, so the same
enrollments give the same decision on either path.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import InputError
from core.experiments.analyze import Experiment
from core.experiments.dispersion import over_days
from core.experiments.stats import ArmStats, Moments, RatioMoments

CONTROL_WORDS = ("control", "baseline", "holdout", "no ")
_CONTROL = re.compile("|".join(re.escape(w) for w in CONTROL_WORDS))
MAX_SEGMENT_VALUES = 30  # a column with more values is an id, not a segment

Array = np.ndarray[Any, Any]


def pick_control(arms: Sequence[str], wanted: str | None, where: str) -> str:
    """The control arm: `wanted`, else the first arm named like one (control, baseline,
    holdout, "no ..."), else the first arm in sorted order.

    Raises:
        InputError: when `wanted` is not one of the arms.
    """
    if wanted is not None:
        if wanted not in arms:
            raise InputError(f"{where}: unknown control arm {wanted!r} (arms: {', '.join(arms)})")
        return wanted
    ordered = sorted(arms)
    for arm in ordered:
        if _CONTROL.search(arm.lower()):
            return arm
    return ordered[0]


@dataclass
class Units:
    """One test's units, one entry per unit in every sequence.

    Attributes:
        arms: the arm of each unit.
        metrics: metric name -> value per unit (0/1 for a yes/no outcome).
        ratios: metric name -> (numerator, denominator) per unit.
        segments: segment name -> value per unit ('' when the unit has none).
        accounts: the account of each unit ('' for none): when units of one account share an
            arm, the account is the unit of analysis (every metric becomes a per-account ratio,
            by the delta method), so they are not counted as independent.
        days: the day each unit was assigned ('' unknown), for each metric's dispersion.
        weights: the expected split, arm -> share (None: equal).
    """

    arms: Sequence[str]
    metrics: Mapping[str, Array] = field(default_factory=dict)
    ratios: Mapping[str, tuple[Array, Array]] = field(default_factory=dict)
    segments: Mapping[str, Sequence[str]] = field(default_factory=dict)
    accounts: Sequence[str] | None = None
    days: Sequence[str] | None = None
    weights: Mapping[str, float] | None = None


@dataclass(frozen=True)
class _Metric:
    num: Array
    den: Array | None  # None: a plain mean
    binary: bool


def _moments(codes: Array, k: int, m: _Metric, clusters: Array | None) -> list[ArmStats]:
    """Per-code statistics; with `clusters`, per-cluster sums first (the cluster is the unit)."""
    if clusters is None and m.den is None:
        n = np.bincount(codes, minlength=k)
        s1 = np.bincount(codes, weights=m.num, minlength=k)
        s2 = np.bincount(codes, weights=m.num * m.num, minlength=k)
        return [Moments(int(n[i]), float(s1[i]), float(s2[i]), m.binary) for i in range(k)]
    num, den = m.num, m.den if m.den is not None else np.ones(len(m.num))
    if clusters is not None:
        width = int(clusters.max()) + 1
        keys, inverse = np.unique(codes * width + clusters, return_inverse=True)
        num, den = np.bincount(inverse, weights=num), np.bincount(inverse, weights=den)
        codes = keys // width
    n = np.bincount(codes, minlength=k)
    sums = [np.bincount(codes, weights=w, minlength=k)
            for w in (num, den, num * num, den * den, num * den)]
    return [RatioMoments(int(n[i]), float(sums[0][i]), float(sums[1][i]), float(sums[2][i]),
                         float(sums[3][i]), float(sums[4][i]), m.binary) for i in range(k)]


def _codes(values: Sequence[str]) -> tuple[list[str], Array]:
    names, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return [str(v) for v in names.tolist()], inverse.astype(np.intp)


def _clusters(accounts: Sequence[str] | None, arm_codes: Array) -> Array | None:
    """Cluster code per unit (a unit without an account is its own), or None when no account
    holds two units of one arm (then every unit is independent)."""
    if accounts is None:
        return None
    names, codes = _codes(accounts)
    blank = names.index("") if "" in names else -1
    if blank >= 0:
        alone = codes == blank
        codes = codes.copy()
        codes[alone] = len(names) + np.arange(int(alone.sum()))
    pairs = codes.astype(np.int64) * (int(arm_codes.max()) + 1) + arm_codes
    if len(np.unique(pairs)) == len(pairs):
        return None
    return codes


def build(name: str, units: Units, control: str | None = None,
          where: str | None = None) -> tuple[Experiment, dict[str, float]]:
    """The test with per-arm, per-metric statistics, one- and two-column segment cells (columns
    with 2 to MAX_SEGMENT_VALUES values), and the dispersion of each metric.

    Args:
        name: the test's name.
        units: the units.
        control: the control arm (default: `pick_control`).
        where: how messages name the input (default: the test's name).

    Returns:
        The experiment and metric -> dispersion (1 without days to estimate it from).

    Raises:
        InputError: with fewer than two arms, an empty arm, or an unknown control.
    """
    where = where or name
    if any(not a for a in units.arms):
        first = next(i for i, a in enumerate(units.arms) if not a)
        raise InputError(f"{where}: unit {first + 1} has no arm")
    names, codes = _codes(units.arms)
    if len(names) < 2:
        raise InputError(f"{where}: only one arm ({names[0]!r})" if names
                         else f"{where}: no units")
    k = len(names)
    metrics = {m: _Metric(v, None, bool(np.isin(v, (0.0, 1.0)).all()))
               for m, v in units.metrics.items()}
    metrics.update({m: _Metric(num, den, False) for m, (num, den) in units.ratios.items()})
    clusters = _clusters(units.accounts, codes)
    per_metric = {m: _moments(codes, k, spec, clusters) for m, spec in metrics.items()}
    test = Experiment(name=name, arms={a: {m: per_metric[m][i] for m in metrics}
                                       for i, a in enumerate(names)},
                      control=pick_control(names, control, where),
                      weights=dict(units.weights) if units.weights else None)
    seg_values = {s: np.asarray(v, dtype=str) for s, v in units.segments.items()}
    usable = [s for s, v in seg_values.items()
              if 1 < len(set(v.tolist()) - {""}) <= MAX_SEGMENT_VALUES]
    for combo in [(s,) for s in usable] + list(itertools.combinations(usable, 2)):
        parts = [[f"{s}={v}" if v else "" for v in seg_values[s].tolist()] for s in combo]
        keys = [",".join(p) if all(p) else "" for p in zip(*parts, strict=True)]
        cell_labels, inverse = _codes(keys)
        cell_codes = inverse * k + codes
        for m, spec in metrics.items():
            stats = _moments(cell_codes, len(cell_labels) * k, spec, clusters)
            for j, label in enumerate(cell_labels):
                if not label:
                    continue
                cell = test.segments.setdefault(label, {})
                for i, a in enumerate(names):
                    cell.setdefault(a, {})[m] = stats[j * k + i]
    return test, _dispersions(names, codes, metrics, units.days)


def _dispersions(names: list[str], codes: Array, metrics: Mapping[str, _Metric],
                 days: Sequence[str] | None) -> dict[str, float]:
    """Each metric's day-to-day dispersion, measured on the units themselves: an account's
    units spread over days, so a day is not a set of whole accounts."""
    if days is None or all(not d for d in days):
        return {m: 1.0 for m in metrics}
    day_names, day_codes = _codes(days)
    k = len(names)
    out = {}
    for m, spec in metrics.items():
        arms = _moments(codes, k, spec, None)
        stats = _moments(day_codes * k + codes, len(day_names) * k, spec, None)
        per_day = {a: [stats[d * k + i] for d, day in enumerate(day_names) if day]
                   for i, a in enumerate(names)}
        out[m] = over_days({a: arms[i] for i, a in enumerate(names)}, per_day)
    return out
