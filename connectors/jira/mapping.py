"""Jira issue JSON -> learnloop items and events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.jira.config import JiraConfig
from core.contract import EventRecord, ItemRecord, MappingField

DONE = "done"
MAPPING_FIELDS = (
    MappingField("id", "Issue key (always the key)", required=False),
    MappingField("planned_due", "Due date field (default duedate)"),
    MappingField("planned_estimate", "Estimate field (default timeoriginalestimate)"),
    MappingField("actual_effort", "Time spent field (default timespent)"),
    MappingField("actual_end", "Done date field (default resolutiondate)"),
)
DEFAULTS = {"planned_due": "duedate", "planned_estimate": "timeoriginalestimate",
            "actual_effort": "timespent", "actual_end": "resolutiondate"}
SEGMENTS = ("project", "issuetype", "components", "labels", "assignee", "priority")
EVENT_FIELDS = {"duedate": "due_date_moved", "timeoriginalestimate": "estimate_changed",
                "status": "status_changed"}


def parse_time(value: Any) -> dt.datetime | None:
    """Jira dates (2025-03-01) and times (2025-03-01T12:00:00.000+0100) as aware UTC."""
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    if text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def fields_wanted(mapping: dict[str, Any]) -> list[str]:
    """The fields a search must ask for (Cloud returns only ids otherwise)."""
    chosen = {**DEFAULTS, **{k: v for k, v in mapping.items() if k in DEFAULTS}}
    extra = [str(s) for s in mapping.get("segments", [])]
    return sorted({"summary", "status", "updated", "created", *chosen.values(), *SEGMENTS,
                   *extra})


def _segment(value: Any) -> str | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        names = sorted(str(_segment(v)) for v in value if _segment(v))
        return ",".join(names) or None
    if isinstance(value, dict):
        for key in ("key", "name", "displayName", "value"):
            if value.get(key):
                return str(value[key])
        return None
    return str(value)


def to_item(raw: dict[str, Any], histories: list[dict[str, Any]], config: JiraConfig,
            mapping: dict[str, Any], base_url: str) -> tuple[ItemRecord, list[EventRecord]]:
    """One issue (with its whole changelog) as an item and its events."""
    f = raw.get("fields", {})
    chosen = {**DEFAULTS, **{k: v for k, v in mapping.items() if k in DEFAULTS}}
    unit = config.hours_per_estimate_unit

    def number(name: str) -> float | None:
        value = f.get(chosen[name])
        return float(value) * unit if isinstance(value, int | float) else None

    status = f.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key")
    segments = {}
    for name in (*SEGMENTS, *mapping.get("segments", [])):
        value = _segment(f.get(name))
        if value:
            segments[name] = value
    events: list[EventRecord] = []
    started: dt.datetime | None = None
    for h in sorted(histories, key=lambda h: str(h.get("created"))):
        when = parse_time(h.get("created"))
        if when is None:
            continue
        for n, change in enumerate(h.get("items", [])):
            kind = EVENT_FIELDS.get(str(change.get("field", "")).lower().replace(" ", ""))
            if kind is None:
                continue
            if kind == "status_changed" and started is None and \
                    change.get("toString") in config.in_progress_statuses:
                started = when
            events.append(EventRecord(
                raw["key"], f"{raw['key']}:{h.get('id')}:{n}", when, kind,
                actor=(h.get("author") or {}).get("accountId"),
                attributes={"from": change.get("fromString"), "to": change.get("toString")}))
    planned = number("planned_estimate")
    item = ItemRecord(
        external_id=raw["key"], title=str(f.get("summary") or ""),
        kind=_segment(f.get("issuetype")) or "issue",
        url=f"{base_url.rstrip('/')}/browse/{raw['key']}", segments=segments,
        status=DONE if category == "done" else "open",
        planned_due=parse_time(f.get(chosen["planned_due"])),
        planned_estimate=planned if planned and planned > 0 else None,
        actual_start=started, actual_end=parse_time(f.get(chosen["actual_end"])),
        actual_effort=number("actual_effort") if category == "done" else None,
        estimated_at=parse_time(f.get("created")),
        source_updated_at=parse_time(f.get("updated")), raw={"key": raw["key"], "id": raw["id"]},
    )
    return item, events
