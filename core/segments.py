"""Segment values that several connectors derive the same way, so that a segment means the same
in every tool (a company of 120 people is "51-200" whether it came from HubSpot or Salesforce)."""

from __future__ import annotations

EMPLOYEE_BANDS = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (1000, "201-1000"),
                  (5000, "1001-5000"))
"""Upper bound (inclusive) of each band of company size; above the last, "5000+"."""


def employee_band(employees: float | None) -> str | None:
    """The size band of a company with `employees` people (None when unknown or not positive)."""
    if employees is None or employees <= 0:
        return None
    return next((band for limit, band in EMPLOYEE_BANDS if employees <= limit), "5000+")
