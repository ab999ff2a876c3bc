"""What the store and the forecasts can hold: records beyond it are quarantined or clamped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from typing import Any

from core.contract import EventRecord, ItemRecord, Problem

FIRST_YEAR, LAST_YEAR = 1900, 2200
"""Dates outside these years are refused: a forecast adds days to them, and Python's dates end
at year 9999 (a `Due=9999-12-30` would make every learning run fail)."""
MAX_NUMBER = 1e12  # an estimate, effort or amount beyond this is an input error, not a plan
MAX_EXTERNAL_ID = 200  # items.external_id
MAX_EVENT_ID = 300  # events.external_id
MAX_LOCATOR = 300  # quarantined_rows.locator
MAX_SEGMENT_NAME = 40
MAX_SEGMENT_VALUE = 100
"""Two segment pairs and the measure fit the 300 characters of rules.key, proposals.dedupe_key
and findings' keys."""
SHORT = {"kind": 50, "unit": 20, "status": 20}  # items.kind, items.unit, items.status
EVENT_SHORT = {"kind": 50, "actor": 200}  # events.kind, events.actor
DATE_FIELDS = ("planned_start", "planned_due", "estimated_at", "actual_start", "actual_end",
               "source_updated_at")
NUMBER_FIELDS = ("planned_estimate", "planned_amount", "planned_probability", "actual_effort",
                 "actual_amount")
URL_SCHEMES = ("http://", "https://")


def shorten(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, ending in a hash of the whole so cut values stay
    distinct and the same value is always cut the same way."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[:limit - 9]}~{digest}"


def safe_url(url: str | None) -> str | None:
    """`url` if it is an http or https link, else None (a `javascript:` link from data is not
    a link to the tool)."""
    if not url:
        return None
    text = url.strip()
    return text if text.lower().startswith(URL_SCHEMES) and len(text) > 8 else None


def _date_problem(name: str, value: Any) -> str | None:
    if isinstance(value, dt.datetime | dt.date) and not FIRST_YEAR <= value.year <= LAST_YEAR:
        day = value.date() if isinstance(value, dt.datetime) else value
        return (f"{name} {day.isoformat()} is outside the years {FIRST_YEAR}-{LAST_YEAR} "
                "learnloop can forecast; correct it in the tool")
    return None


def _number_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value):
        return f"{name} is {value}, not a number learnloop can use; correct it in the tool"
    if abs(value) > MAX_NUMBER:
        return f"{name} {value:g} is beyond {MAX_NUMBER:g}; correct it in the tool"
    if name == "planned_probability" and not 0 <= value <= 1:
        return f"planned_probability {value:g} is not between 0 and 1"
    return None


def _finite(value: Any) -> Any:
    """`value` with every non-finite float written as text (JSON and PostgreSQL refuse NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def finite_json(value: Any) -> Any:
    """`value` ready for a JSON column: NaN and infinities become text (a cheap check first)."""
    text = repr(value)
    return _finite(value) if "nan" in text or "inf" in text else value


def locator(value: str) -> str:
    """A quarantine locator that fits its column."""
    return shorten(value, MAX_LOCATOR)


def check_item(rec: ItemRecord) -> tuple[ItemRecord | None, Problem | None, list[str]]:
    """An item record made storable: (record or None, the Problem that quarantines it, notes).

    A value the learning cannot use (a date out of range, a number that is not finite or is
    absurdly large, an external id longer than the store holds) quarantines the row with its
    reason; text that is only too long is shortened with a hash (each change is a note), a link
    that is not http or https is dropped.
    """
    reasons = []
    if len(rec.external_id) > MAX_EXTERNAL_ID:
        reasons.append(f"external id is {len(rec.external_id)} characters long; the store "
                       f"holds at most {MAX_EXTERNAL_ID}")
    reasons += [r for name in DATE_FIELDS if (r := _date_problem(name, getattr(rec, name)))]
    reasons += [r for name in NUMBER_FIELDS if (r := _number_problem(name, getattr(rec, name)))]
    if reasons:
        return None, Problem(locator(rec.external_id), "; ".join(reasons),
                             finite_json(rec.raw)), []
    notes: list[str] = []
    changes: dict[str, Any] = {}
    for name, limit in SHORT.items():
        value = getattr(rec, name)
        if isinstance(value, str) and len(value) > limit:
            changes[name] = shorten(value, limit)
            notes.append(f"{name} shortened to {limit} characters")
    if rec.url is not None and safe_url(rec.url) != rec.url:
        changes["url"] = safe_url(rec.url)
        if changes["url"] is None:
            notes.append("link dropped: only http and https links are kept")
    segments = _segments(rec.segments)
    if segments != rec.segments:
        changes["segments"] = segments
        notes.append(f"segment names over {MAX_SEGMENT_NAME} or values over "
                     f"{MAX_SEGMENT_VALUE} characters shortened")
    raw = finite_json(rec.raw)
    if raw is not rec.raw:
        changes["raw"] = raw
    return (dataclasses.replace(rec, **changes) if changes else rec), None, notes


def _segments(segments: dict[str, Any]) -> dict[str, Any]:
    if all(len(str(k)) <= MAX_SEGMENT_NAME and not (isinstance(v, str)
           and len(v) > MAX_SEGMENT_VALUE) for k, v in segments.items()):
        return segments
    return {shorten(str(k), MAX_SEGMENT_NAME):
            shorten(v, MAX_SEGMENT_VALUE) if isinstance(v, str) else v
            for k, v in segments.items()}


def check_event(ev: EventRecord) -> tuple[EventRecord | None, Problem | None]:
    """An event record made storable, or the Problem that quarantines it (a date out of range).

    An over-long event id, kind or actor is shortened with a hash: the id still tells events
    apart, so a re-read never duplicates one.
    """
    reason = _date_problem("occurred_at", ev.occurred_at)
    if reason:
        return None, Problem(locator(ev.external_id), reason, finite_json(ev.attributes))
    changes: dict[str, Any] = {}
    if len(ev.external_id) > MAX_EVENT_ID:
        changes["external_id"] = shorten(ev.external_id, MAX_EVENT_ID)
    for name, limit in EVENT_SHORT.items():
        value = getattr(ev, name)
        if isinstance(value, str) and len(value) > limit:
            changes[name] = shorten(value, limit)
    attributes = finite_json(ev.attributes)
    if attributes is not ev.attributes:
        changes["attributes"] = attributes
    return (dataclasses.replace(ev, **changes) if changes else ev), None
