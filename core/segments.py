"""Segment values that several connectors derive the same way, so that a segment means the same
in every tool (a company of 120 people is "51-200" whether it came from HubSpot or Salesforce),
and the one way a selector matches an item's segments."""

from __future__ import annotations

from collections.abc import Mapping

EMPLOYEE_BANDS = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (1000, "201-1000"),
                  (5000, "1001-5000"))
"""Upper bound (inclusive) of each band of company size; above the last, "5000+"."""


def employee_band(employees: float | None) -> str | None:
    """The size band of a company with `employees` people (None when unknown or not positive)."""
    if employees is None or employees <= 0:
        return None
    return next((band for limit, band in EMPLOYEE_BANDS if employees <= limit), "5000+")


def _folded(text: str) -> str:
    return text.strip().casefold()


def value_in(wanted: object, have: object) -> bool:
    """Whether an item's segment value `have` is the `wanted` value: the same text ignoring
    case and surrounding spaces, or one of its comma-separated values (Jira joins an issue's
    components, a CRM its multi-select values: `API, Integration` is in `integration`).

    The one rule by which every selector, predicate and lesson segment matches items, so a
    lesson tested on some items becomes a policy rule that applies to the same items.
    """
    if have is None:
        return False
    h, w = str(have), str(wanted)
    if h == w:
        return True
    w = _folded(w)
    if _folded(h) == w:
        return True
    return "," in h and any(_folded(part) == w for part in h.split(","))


def within(selector: Mapping[str, object], segments: Mapping[str, object]) -> bool:
    """Whether an item with `segments` is inside `selector` ({dimension: value}): every
    dimension's value matches (`value_in`)."""
    return all(value_in(v, segments.get(k)) for k, v in selector.items())
