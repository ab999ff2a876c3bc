"""Jira issue JSON -> learnloop items and events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.jira.config import JiraConfig
from core.contract import EventRecord, ItemRecord, LessonRecord, MappingField

DONE = "done"
MAPPING_FIELDS = (
    MappingField("id", "Issue key (always the key)", required=False),
    MappingField("planned_due", "Due date field (default duedate)"),
    MappingField("planned_estimate", "Estimate field (default timeoriginalestimate)"),
    MappingField("actual_effort", "Time spent field (default timespent)"),
    MappingField("actual_end", "Done date field (default resolutiondate)"),
    MappingField("lesson_segment", "Lesson issues: field with the segment it concerns "
                 "(default: a 'Segment:' line of the description)"),
    MappingField("lesson_predicts", "Lesson issues: field with what it predicts (default: a "
                 "'Predicts:' line of the description)"),
    MappingField("lesson_behaviour", "Lesson issues: field with the behaviour it asks for "
                 "(default: a 'Behaviour:' line of the description)"),
)
LESSON_FIELDS = ("lesson_segment", "lesson_predicts", "lesson_behaviour")
ADF_BLOCKS = frozenset({"paragraph", "heading", "listItem", "codeBlock", "blockquote"})
"""Atlassian Document Format nodes that end a line of text."""
DEFAULTS = {"planned_due": "duedate", "planned_estimate": "timeoriginalestimate",
            "actual_effort": "timespent", "actual_end": "resolutiondate"}
SEGMENTS = ("project", "issuetype", "components", "labels", "assignee", "priority")
STATUS_CHANGED, PLAN_CHANGED = "status_changed", "plan_changed"
PLANNED = ("planned_due", "planned_estimate")
"""Planned values whose changelog entries become re-planning events (core.plans)."""


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


def fields_wanted(mapping: dict[str, Any], lessons: bool = False) -> list[str]:
    """The fields a search must ask for (Cloud returns only ids otherwise); with `lessons`,
    the description and the mapped lesson fields too."""
    chosen = {**DEFAULTS, **{k: v for k, v in mapping.items() if k in DEFAULTS}}
    extra = [str(s) for s in mapping.get("segments", [])]
    if lessons:
        extra += ["description", *(str(mapping[k]) for k in LESSON_FIELDS if mapping.get(k))]
    return sorted({"summary", "status", "updated", "created", "parent", *chosen.values(),
                   *SEGMENTS, *extra})


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


def _field_key(name: Any) -> str:
    return str(name or "").lower().replace(" ", "")


def _plan_value(name: str, raw: Any, text: Any, unit: float) -> str | float | None:
    """A changelog value in core terms: a due date as ISO 8601 UTC, an estimate in hours;
    None when it is empty or unreadable (its text stays in the event as Jira wrote it)."""
    value = raw if raw not in (None, "") else text
    if value in (None, ""):
        return None
    try:
        if name == "planned_due":
            day = dt.date.fromisoformat(str(value)[:10])
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).isoformat()
        seconds = float(value)
    except ValueError:
        return None
    return seconds * unit if seconds > 0 else None


def _plan_change(name: str, change: dict[str, Any], unit: float) -> dict[str, Any]:
    """The attributes of a re-planning event: field, from, to (core values) and Jira's text."""
    return {"field": name,
            "from": _plan_value(name, change.get("from"), change.get("fromString"), unit),
            "to": _plan_value(name, change.get("to"), change.get("toString"), unit),
            "from_text": change.get("fromString"), "to_text": change.get("toString"),
            "source": "jira changelog"}


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
    planned = {_field_key(chosen[name]): name for name in PLANNED}
    for h in sorted(histories, key=lambda h: str(h.get("created"))):
        when = parse_time(h.get("created"))
        if when is None:
            continue
        for n, change in enumerate(h.get("items", [])):
            key = _field_key(change.get("fieldId") or change.get("field"))
            if key == "status":
                kind, attributes = STATUS_CHANGED, {"from": change.get("fromString"),
                                                    "to": change.get("toString")}
                if started is None and change.get("toString") in config.in_progress_statuses:
                    started = when
            elif key in planned:
                kind = PLAN_CHANGED
                attributes = _plan_change(planned[key], change, unit)
            else:
                continue
            events.append(EventRecord(
                raw["key"], f"{raw['key']}:{h.get('id')}:{n}", when, kind,
                actor=(h.get("author") or {}).get("accountId"), attributes=attributes))
    estimate = number("planned_estimate")
    item = ItemRecord(
        external_id=raw["key"], title=str(f.get("summary") or ""),
        kind=_segment(f.get("issuetype")) or "issue",
        url=f"{base_url.rstrip('/')}/browse/{raw['key']}", segments=segments,
        status=DONE if category == "done" else "open",
        planned_due=parse_time(f.get(chosen["planned_due"])),
        planned_estimate=estimate if estimate and estimate > 0 else None,
        actual_start=started, actual_end=parse_time(f.get(chosen["actual_end"])),
        actual_effort=number("actual_effort") if category == "done" else None,
        estimated_at=parse_time(f.get("created")),
        source_updated_at=parse_time(f.get("updated")), raw={"key": raw["key"], "id": raw["id"]},
    )
    return item, events


def text_of(value: Any) -> str:
    """A field's text: plain (REST v2), Atlassian Document Format (v3: paragraphs as lines),
    an option's value, or a list of them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(t for t in (text_of(v) for v in value) if t)
    if isinstance(value, dict):
        if value.get("type") == "hardBreak":
            return "\n"
        if "type" in value and ("content" in value or "text" in value):
            if "text" in value:
                return str(value["text"])
            inner = "".join(text_of(c) for c in value.get("content") or [])
            return inner + "\n" if value["type"] in ADF_BLOCKS else inner
        for key in ("value", "name"):
            if value.get(key) is not None:
                return str(value[key])
    return str(value)


def is_lesson(raw: dict[str, Any], config: JiraConfig) -> bool:
    """Whether an issue is a lesson: its type is one of `lesson_issue_types`, or it carries
    one of `lesson_labels` (both compared without regard to case)."""
    if not (config.lesson_issue_types or config.lesson_labels):
        return False
    f = raw.get("fields") or {}
    kind = str((f.get("issuetype") or {}).get("name") or "").strip().lower()
    if kind and kind in {t.strip().lower() for t in config.lesson_issue_types}:
        return True
    labels = {str(v).strip().lower() for v in f.get("labels") or []}
    return bool(labels & {v.strip().lower() for v in config.lesson_labels})


def to_lesson(raw: dict[str, Any], mapping: dict[str, Any], base_url: str) -> LessonRecord:
    """A lesson issue as a lesson: its summary and description are the words; the segment,
    prediction and behaviour come from the mapped fields when there are any (else from the
    description's labelled lines); its creation is the lesson's date."""
    f = raw.get("fields") or {}
    words = "\n".join(t.strip() for t in (text_of(f.get("summary")),
                                          text_of(f.get("description"))) if t.strip())

    def mapped(name: str) -> str | None:
        field = mapping.get(name)
        return (text_of(f.get(str(field))).strip() or None) if field else None

    return LessonRecord(
        external_id=raw["key"], words=words, url=f"{base_url.rstrip('/')}/browse/{raw['key']}",
        segment=mapped("lesson_segment"), predicts=mapped("lesson_predicts"),
        behaviour=mapped("lesson_behaviour"), created_at=parse_time(f.get("created")),
        writable=True)
