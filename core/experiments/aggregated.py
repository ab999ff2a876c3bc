"""Pre-aggregated tests (one row per test and arm: units and conversions) into experiments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import InputError
from core.experiments.analyze import Experiment
from core.experiments.build import pick_control
from core.experiments.columns import FIRST_ROW, labels
from core.experiments.stats import Moments, dispersion_across_tests


def _first(bad: np.ndarray[Any, Any]) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) if len(hits) else None


def tests_from_rows(source: str, tests: Sequence[Any], arms: Sequence[Any],
                    units: np.ndarray[Any, Any], conversions: np.ndarray[Any, Any],
                    units_name: str, conversions_name: str,
                    control: str | None = None) -> list[Experiment]:
    """One experiment per test, its metric named after the conversions column.

    Args:
        source: the input's name in messages.
        tests: the test of each row.
        arms: the arm of each row.
        units: units per row.
        conversions: conversions per row.
        units_name: the units column, for messages.
        conversions_name: the conversions column (the metric's name).
        control: the control arm of every test (default: found per test).

    Raises:
        InputError: naming the first row with an empty test or arm, a negative or fractional
            count, more conversions than units, or an arm repeated in its test; or a test with
            one arm.
    """
    t_names, a_names = labels(tests), labels(arms)
    row = _first(np.asarray([not t or not a for t, a in zip(t_names, a_names, strict=True)]))
    if row is not None:
        raise InputError(f"{source} row {row + FIRST_ROW}: the test or arm is empty")
    checks: list[tuple[Callable[[int], str], np.ndarray[Any, Any]]] = [
        (lambda i: f"negative count ({units_name}={units[i]:g}, {conversions_name}="
                   f"{conversions[i]:g})", (units < 0) | (conversions < 0)),
        (lambda i: f"{conversions_name} ({conversions[i]:g}) > {units_name} ({units[i]:g})",
         conversions > units),
        (lambda i: "counts must be whole numbers",
         (units != np.floor(units)) | (conversions != np.floor(conversions))),
    ]
    found = [(r, message) for message, bad in checks if (r := _first(bad)) is not None]
    if found:
        r, message = min(found, key=lambda f: f[0])
        raise InputError(f"{source} row {r + FIRST_ROW}: {message(r)}")
    grouped: dict[str, dict[str, Moments]] = {}
    n_list, c_list = units.astype(np.int64).tolist(), conversions.tolist()
    for i, (t, a) in enumerate(zip(t_names, a_names, strict=True)):
        arms_of = grouped.setdefault(t, {})
        if a in arms_of:
            raise InputError(f"{source} row {i + FIRST_ROW}: arm {a!r} appears twice in test "
                             f"{t!r}")
        c = c_list[i]
        arms_of[a] = Moments(n_list[i], c, c, True)
    out = []
    for name, by_arm in grouped.items():
        if len(by_arm) < 2:
            raise InputError(f"{source}: test {name!r} has only one arm")
        ctrl = pick_control(list(by_arm), control, f"{source} test {name!r}")
        out.append(Experiment(name=name, arms={a: {conversions_name: m}
                                               for a, m in by_arm.items()}, control=ctrl))
    return out


def dispersion(tests: Sequence[Experiment]) -> float:
    """The over-dispersion of conversions between arms, estimated across all the tests."""
    return dispersion_across_tests(
        [[(m.n, m.total) for arm in t.arms.values() for m in arm.values()] for t in tests])
