"""Read a lesson's segment and prediction from the simple form people write them in.

The form (documented in core/lessons/README.md):

    Segment: component=integration, kind=task
    Predicts: takes 1.5x the estimate
    Behaviour: plan 1.5x for integration tasks

A `Predicts:` line may carry the segment itself (`component=integration takes 1.5x`). A
prediction is a multiplier of the plan (`1.5x`, on effort unless it names duration) or a
direction (`takes longer`, `overruns`, `is underestimated`, `finishes late`, `slips`,
`takes less`, `finishes early`). What cannot be read is kept with the reason, never dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core import measures
from core.segments import value_in

EFFORT, FINISH, DURATION = "effort", "finish", "duration"
OVER, UNDER = "over", "under"
DEVIATION = {EFFORT: "effort_ratio", FINISH: "slip_days", DURATION: "duration_ratio"}
"""The deviation each lesson measure is tested on."""
MAX_MULTIPLIER = 100.0

_LABELS = {"segment": "segment", "segments": "segment", "concerns": "segment",
           "predicts": "predicts", "prediction": "predicts", "behaviour": "behaviour",
           "behavior": "behaviour", "asks": "behaviour", "action": "behaviour"}
_LINE = re.compile(r"^\s*[*#>-]*\s*(\w+)\s*:\s*(.*?)\s*$")
_PAIR = re.compile(r"""\s*([A-Za-z_][\w.-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s,;]+)\s*""")
_JOIN = re.compile(r"^\s*(,|;|and\b)\s*", re.IGNORECASE)
_TIMES = re.compile(r"(\d+(?:\.\d+)?)\s*(?:x\b|\u00d7|times\b)", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*(more|longer|over|less|shorter|under)",
                      re.IGNORECASE)
_OVER = re.compile(r"longer|more than|over ?run|overrun|under-?estimat|exceed|over the|"
                   r"over (?:its|their)", re.IGNORECASE)
_UNDER = re.compile(r"less than|shorter|faster|over-?estimat|under (?:its|their)|takes less",
                    re.IGNORECASE)
_LATE = re.compile(r"\blate\b|\bslip|past (?:its|their|the) due|after (?:its|their|the) due",
                   re.IGNORECASE)
_EARLY = re.compile(r"\bearly\b|before (?:its|their|the) due", re.IGNORECASE)
ALIASES = {"component": "components", "label": "labels", "type": "issuetype",
           "issue_type": "issuetype", "issuetype": "issuetype"}
"""Segment names people write -> the names connectors store (tried when the item lacks the
written name)."""


@dataclass
class Parsed:
    """A lesson's rule as read: what it concerns and predicts; `reason` when unreadable."""

    segment: dict[str, str] = field(default_factory=dict)
    kind: str = measures.TASK
    measure: str | None = None
    multiplier: float | None = None
    direction: str | None = None
    predicts: str = ""
    behaviour: str = ""
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether it can be tested (a prediction was read)."""
        return self.reason is None


def labelled(text: str) -> dict[str, str]:
    """`Segment:`, `Predicts:` and `Behaviour:` lines of a text (the first of each)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        m = _LINE.match(line)
        if m and m.group(1).lower() in _LABELS and m.group(2):
            out.setdefault(_LABELS[m.group(1).lower()], m.group(2))
    return out


def segment_of(text: str) -> tuple[dict[str, str], str]:
    """The `key=value` pairs at the start of `text` (joined by `,`, `;` or `and`), and the
    rest of the text."""
    pairs: dict[str, str] = {}
    rest = text.strip()
    while True:
        m = _PAIR.match(rest)
        if not m:
            break
        pairs[m.group(1).lower()] = m.group(2).strip("\"'").strip()
        rest = rest[m.end():]
        joined = _JOIN.match(rest)
        if joined is None:
            break
        rest = rest[joined.end():]
    return pairs, rest.strip()


def _prediction(text: str) -> tuple[str | None, float | None, str | None]:
    """(measure, multiplier, direction) of a prediction's words; measure None if unread."""
    words = text.lower()
    measure = DURATION if "duration" in words else EFFORT
    if _LATE.search(words) or _EARLY.search(words) or "due date" in words:
        if _EARLY.search(words):
            return FINISH, None, UNDER
        return FINISH, None, OVER
    m = _TIMES.search(words)
    if m:
        value = float(m.group(1))
        return measure, value, OVER if value > 1 else UNDER if value < 1 else None
    m = _PERCENT.search(words)
    if m:
        share = float(m.group(1)) / 100
        sign = 1 if m.group(2).lower() in ("more", "longer", "over") else -1
        value = 1 + sign * share
        return measure, value, OVER if sign > 0 else UNDER
    if _UNDER.search(words):
        return measure, None, UNDER
    if _OVER.search(words):
        return measure, None, OVER
    return None, None, None


def parse(words: str, segment: str | None = None, predicts: str | None = None,
          behaviour: str | None = None) -> Parsed:
    """A lesson's rule from its parts; a part not given is looked for as a labelled line in
    `words` (`Segment:`, `Predicts:`, `Behaviour:`).

    Args:
        words: the lesson as written (a post-mortem's summary and description).
        segment: the segment predicate (`component=integration, kind=task`).
        predicts: the prediction (`takes 1.5x`, `component=integration takes 1.5x`).
        behaviour: what it asks people to do.

    Returns:
        The parsed rule; `reason` says what could not be read (then it stays untested).
    """
    found = labelled(words)
    seg_text = segment if segment is not None and segment.strip() else found.get("segment", "")
    pred_text = predicts if predicts is not None and predicts.strip() else \
        found.get("predicts", "")
    out = Parsed(predicts=pred_text.strip(), behaviour=(
        behaviour if behaviour is not None and behaviour.strip() else
        found.get("behaviour", "")).strip())
    pairs, leftover = segment_of(seg_text)
    if leftover:
        out.reason = (f"the segment {seg_text.strip()!r} is not a list of name=value pairs "
                      "(e.g. component=integration, kind=task)")
        return out
    inline, pred_words = segment_of(pred_text)
    pairs = {**inline, **pairs}
    kind = pairs.pop("kind", None)
    if kind is not None:
        out.kind = measures.family(kind)
    out.segment = pairs
    if not pred_text.strip():
        out.reason = ("no prediction: add a line like 'Predicts: component=integration takes "
                      "1.5x'")
        return out
    measure, multiplier, direction = _prediction(pred_words)
    if measure is None:
        out.reason = (f"the prediction {pred_text.strip()!r} names no multiplier (1.5x) or "
                      "direction (takes longer, finishes late)")
        return out
    if multiplier is not None and not (math.isfinite(multiplier)
                                       and 0 < multiplier < MAX_MULTIPLIER):
        out.reason = f"the multiplier {multiplier:g} must be above 0 and below 100"
        return out
    if multiplier is not None and direction is None:
        out.reason = "a multiplier of 1x predicts no deviation: there is nothing to test"
        return out
    out.measure, out.multiplier, out.direction = measure, multiplier, direction
    return out


def key_in(segments: Mapping[str, Any], name: str) -> str | None:
    """The item's segment name a lesson's `name` refers to (itself, else its alias)."""
    if name in segments:
        return name
    alias = ALIASES.get(name)
    return alias if alias is not None and alias in segments else None


def matches(wanted: Mapping[str, str], segments: Mapping[str, Any]) -> bool:
    """Whether an item with `segments` is in the lesson's segment: every wanted value is the
    item's value, or one of its comma-separated values (Jira joins components), ignoring
    case."""
    for name, value in wanted.items():
        key = key_in(segments, name)
        if key is None or not value_in(value, segments[key]):
            return False
    return True


def phrase(segment: Mapping[str, str], kind: str = measures.TASK) -> str:
    """The segment in words: `components integration tasks`."""
    noun = {measures.TASK: "tasks", measures.DEAL: "deals",
            measures.ENROLLMENT: "enrollments"}.get(kind, f"{kind} items")
    where = " and ".join(f"{k} {v}" for k, v in sorted(segment.items()))
    return f"{where} {noun}" if where else f"all {noun}"


def prediction_words(segment: Mapping[str, str], kind: str, measure: str | None,
                     multiplier: float | None, direction: str | None) -> str:
    """What the lesson predicts, in words: `components integration tasks take 1.5x their
    estimate`."""
    who = phrase(segment, kind)
    if measure is None:
        return f"{who}: no prediction read"
    if measure == FINISH:
        return f"{who} finish {'after' if direction == OVER else 'before'} their due date"
    plan = "their estimate" if measure == EFFORT else "their planned duration"
    if multiplier is not None:
        return f"{who} take {multiplier:g}x {plan}"
    return f"{who} take {'longer' if direction == OVER else 'less'} than {plan}"
