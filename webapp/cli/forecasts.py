"""Group forecasts as people ask for them: segment names as they type them, and two methods
that say why when they disagree."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.model import Item

DISAGREE_DAYS = 30
"""P50 dates of the two methods further apart than this (and than half the nearer one's
horizon) get a sentence saying why."""


def _close(word: str, choices: list[str]) -> str:
    """ (did you mean X?) for the choices that look like `word`, or nothing."""
    lower = {c.lower(): c for c in choices}
    near = difflib.get_close_matches(word.lower(), list(lower), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(lower[n] for n in near)}?)" if near else ""


def _listed(values: list[str], most: int = 12) -> str:
    shown = ", ".join(values[:most])
    return shown + (f" (and {len(values) - most} more)" if len(values) > most else "")


def segment_values(session: Session) -> dict[str, set[str]]:
    """Every segment dimension of the stored items, with the values it takes."""
    found: dict[str, set[str]] = {}
    for (segments,) in session.execute(select(Item.segments).where(Item.deleted.is_(False))):
        for key, value in (segments or {}).items():
            if value is not None:
                found.setdefault(str(key), set()).add(str(value))
    return found


def resolve_group(session: Session, asked: Mapping[str, str]) -> dict[str, str]:
    """The segment KEY=VALUE pairs `asked`, spelt as the items spell them.

    Keys and values match case-insensitively (`team=pay` finds Team=PAY).

    Raises:
        InputError: for a dimension or a value no item has, naming the close ones.
    """
    if not asked:
        return {}
    known = segment_values(session)
    if not known:
        raise InputError("no item has segments yet: sync a connection that maps some "
                         "(--map segments=Team,Type)")
    keys = sorted(known)
    resolved: dict[str, str] = {}
    for key, value in asked.items():
        match = key if key in known else next(
            (k for k in keys if k.lower() == key.lower()), None)
        if match is None:
            raise InputError(f"--group {key}: no item has a segment {key!r}{_close(key, keys)}; "
                             f"segments: {_listed(keys)}")
        values = sorted(known[match])
        spelt = value if value in known[match] else next(
            (v for v in values if v.lower() == value.lower()), None)
        if spelt is None:
            raise InputError(f"--group {key}={value}: no item has {match}={value}"
                             f"{_close(value, values)}; values of {match}: {_listed(values)}")
        resolved[match] = spelt
    return resolved


def _days(result: Mapping[str, Any], method: str) -> int:
    today = dt.date.fromisoformat(result["as_of"])
    return (dt.date.fromisoformat(result[method]["p50"]) - today).days


def disagreement(result: Mapping[str, Any]) -> str | None:
    """Why the bottom-up and the throughput forecasts of a group differ, when they do by much."""
    up, pace = result.get("bottom_up", {}), result.get("throughput", {})
    if "p50" not in up or "p50" not in pace:
        return None
    a, b = _days(result, "bottom_up"), _days(result, "throughput")
    gap = abs(a - b)
    if gap <= DISAGREE_DAYS or gap <= min(a, b) / 2:
        return None
    n = result["open_items"]
    rate = pace["mean_per_day"]
    if b > a:
        return (f"the two differ by {gap} days: throughput works through the {n} open items "
                f"one after another at the last {pace['window_days']} days' pace "
                f"({pace['finished_in_window']} finished, {rate:g} a day), while bottom-up "
                "assumes they all progress at once, each on its own forecast; if the team "
                "cannot work on all of them at the same time, trust the throughput date")
    return (f"the two differ by {gap} days: bottom-up follows each open item's own forecast "
            "(learned from how late similar items ran, some far past their due date), while "
            f"throughput assumes the last {pace['window_days']} days' pace "
            f"({pace['finished_in_window']} finished, {rate:g} a day) goes on; if the items "
            "really run as late as similar ones did, trust the bottom-up date")


def group_lines(result: Mapping[str, Any]) -> list[str]:
    """The two methods' dates, and why they disagree when they do."""
    lines = []
    for method, label in (("bottom_up", "bottom-up"), ("throughput", "throughput")):
        r = result[method]
        if "note" in r:
            lines.append(f"{label}: {r['note']}")
        else:
            lines.append(f"{label}: P50 {r['p50']}, P80 {r['p80']}, P90 {r['p90']}")
    why = disagreement(result)
    if why:
        lines.append(f"note: {why}")
    return lines
