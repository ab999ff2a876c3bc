"""Segment predicates of process experiments: `team=A`, `team=B,C;type=Bug`, as {dim: values}.

An item matches when, for every dimension, its segment value is one of the values (as every
selector matches, `core.segments.value_in`: ignoring case, or one of a comma-joined value). Several dimensions are joined by `;`, several values of one by `,`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import ConfigError
from core.segments import value_in

Predicate = dict[str, list[str]]
MAX_DIMS = 10
MAX_VALUES = 200


def parse(text: str | Iterable[str], what: str = "predicate") -> Predicate:
    """`team=A;type=Bug,Story` (or a list of `KEY=VALUE[,VALUE]` parts) as a predicate.

    Raises:
        ConfigError: naming the part that is not KEY=VALUE.
    """
    parts = text.split(";") if isinstance(text, str) else [p for t in text for p in t.split(";")]
    out: Predicate = {}
    for raw in parts:
        part = raw.strip()
        if not part:
            continue
        key, sep, values = part.partition("=")
        key = key.strip()
        found = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not found:
            raise ConfigError(f"{what}: {part!r} is not KEY=VALUE (e.g. team=A, or team=B,C)")
        out.setdefault(key, [])
        out[key] += [v for v in found if v not in out[key]]
    return check(out, what)


def check(pred: Mapping[str, Any], what: str = "predicate") -> Predicate:
    """A predicate from JSON ({dim: value or [values]}), validated.

    Raises:
        ConfigError: when it is empty or a value is not text.
    """
    if not isinstance(pred, Mapping) or not pred:
        raise ConfigError(f"{what} is empty: give at least one KEY=VALUE (e.g. team=A)")
    if len(pred) > MAX_DIMS:
        raise ConfigError(f"{what} has {len(pred)} dimensions; at most {MAX_DIMS}")
    out: Predicate = {}
    for key, values in pred.items():
        vals = values if isinstance(values, list) else [values]
        if not isinstance(key, str) or not key.strip() or not vals or len(vals) > MAX_VALUES:
            raise ConfigError(f"{what}: {key!r} needs 1 to {MAX_VALUES} values")
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                   and str(v).strip() for v in vals):
            raise ConfigError(f"{what}: the values of {key!r} must be text")
        out[key.strip()] = [str(v).strip() for v in vals]
    return out


def matches(pred: Mapping[str, list[str]], segments: Mapping[str, Any]) -> bool:
    """Whether an item's segments satisfy every dimension of `pred`."""
    return all(any(value_in(v, segments.get(key)) for v in values)
               for key, values in pred.items())


def text(pred: Mapping[str, list[str]]) -> str:
    """`team=A;type=Bug,Story`: the form `parse` reads."""
    return ";".join(f"{k}={','.join(v)}" for k, v in pred.items())


def words(pred: Mapping[str, list[str]], every: bool = False) -> str:
    """`team A`, `team B or C and type Bug`: the predicate in a sentence; with `every`, a
    list of values reads `team B, C and D` (whom a change is extended to)."""
    def values(v: list[str]) -> str:
        if not every or len(v) < 2:
            return " or ".join(v)
        return f"{', '.join(v[:-1])} and {v[-1]}"
    return " and ".join(f"{k} {values(v)}" for k, v in pred.items())
