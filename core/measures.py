"""Measures per kind of item: what a task, a deal or an enrollment is measured on, and how.

Items are grouped into kind families by their `kind` (case-insensitive) through `ALIASES`:

| kind | family |
| --- | --- |
| issue, story, bug, epic, task, sub-task, subtask, improvement, new feature, spike | task |
| deal, opportunity | deal |
| enrollment, sequence enrollment | enrollment |

A kind not in the table is a family of its own, measured like tasks (every measure of the
task family reads only plan and actual dates and effort) but never pooled with them. A
connection's scope may map kinds onto others (`kind_map`, e.g. {"milestone": "task"}): that is
the only way two families end up in one model.

Each measure says which core fields it needs (planned and actual), how to compute
(planned, actual, value) from a plan mapping (core field name -> planned value) and the item's
actuals, and how the model sees it: the log of a ratio, days, or a binary outcome.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import inspect

DAY = 86400.0
LOG_RATIO, DAYS, BINARY = "log ratio", "days", "binary"
TASK, DEAL, ENROLLMENT = "task", "deal", "enrollment"

ALIASES = {
    **dict.fromkeys(("issue", "story", "bug", "epic", "task", "sub-task", "subtask",
                     "improvement", "new feature", "spike"), TASK),
    **dict.fromkeys(("deal", "opportunity"), DEAL),
    **dict.fromkeys(("enrollment", "sequence enrollment"), ENROLLMENT),
}
"""Item kind (case-folded) -> kind family."""

PLAN_FIELDS = ("planned_start", "planned_due", "planned_estimate", "planned_amount",
               "planned_probability", "expected_outcome")
ACTUAL_FIELDS = ("actual_start", "actual_end", "actual_effort", "actual_amount", "outcome")
MEASURED_FIELDS = frozenset(PLAN_FIELDS[:5] + ACTUAL_FIELDS[:4])
"""Core fields that only mean something to a measure (a mapping check refuses the others)."""

CONTEXT_FIELDS = {
    # when the deal was opened and worked; the stated win probability `won` is compared with
    DEAL: frozenset({"planned_start", "actual_start", "planned_probability"}),
    ENROLLMENT: frozenset({"planned_start", "actual_start", "actual_end"}),  # enrolled, ended
}
"""Measured fields a family uses for time order or context rather than for a measure."""

WON = ("won", "closed won", "closedwon", "win")
LOST = ("lost", "closed lost", "closedlost", "loss")
REPLY = ("repl", "meeting", "booked", "won", "convert", "yes", "1", "true")
MEETING = ("meeting", "booked", "won", "convert")
CONVERSION = ("convert", "won", "closed won", "customer", "signed")


class ItemLike(Protocol):
    """What a measure reads of an item (an ORM Item or a plain result row)."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def actual_start(self) -> dt.datetime | None: ...
    @property
    def actual_end(self) -> dt.datetime | None: ...
    @property
    def actual_effort(self) -> float | None: ...
    @property
    def actual_amount(self) -> float | None: ...
    @property
    def outcome(self) -> str | None: ...


Triple = tuple[float, float, float]
Compute = Callable[[Mapping[str, Any], ItemLike], Triple | None]


@dataclass(frozen=True)
class Measure:
    """One measure of one or more kind families.

    Attributes:
        name: the measure within its family (`effort`); models are keyed `family/name`.
        deviation: the name its deviations are stored under (`effort_ratio`).
        families: the kind families it applies to.
        planned: core fields of the plan it needs.
        actual: core fields of the actuals it needs.
        view: how the model sees the value: LOG_RATIO (log of value), DAYS or BINARY.
        compute: (plan, item) -> (planned, actual, value), or None when it does not apply;
            None for a measure computed from events (stage days).
        forecast: the forecast ledger's measure for open items, or None if not forecast.
        describe: one line for people.
    """

    name: str
    deviation: str
    families: tuple[str, ...]
    planned: tuple[str, ...]
    actual: tuple[str, ...]
    view: str
    compute: Compute | None
    forecast: str | None
    describe: str

    def model_value(self, value: float) -> float:
        """The deviation as the model sees it (log for ratios)."""
        return math.log(value) if self.view == LOG_RATIO else value

    def size(self, plan: Mapping[str, Any]) -> float | None:
        """The plan's size for this measure (the model's size covariate), None if unknown."""
        return self.size_of(plan.get("planned_start"), plan.get("planned_due"),
                            plan.get("planned_estimate"), plan.get("planned_amount"))

    def size_of(self, start: Any, due: Any, estimate: Any, amount: Any) -> float | None:
        """`size` from the planned values themselves (the hot path of learning's reads)."""
        if self.name == "effort":
            return _positive(estimate)
        if self.name == "amount":
            return _positive(amount)
        if self.name == "duration":
            return _days(start, due)
        if self.view == DAYS and self.name != "stage_days":
            return _days(start, due) or _positive(estimate)
        return None

    def plans_open(self, plan: Mapping[str, Any]) -> bool:
        """Whether an open item with `plan` can be forecast on this measure."""
        if self.forecast is None:
            return False
        if self.name == "effort":
            return _positive(plan.get("planned_estimate")) is not None
        return all(plan.get(f) is not None for f in self.planned)


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _days(start: Any, end: Any) -> float | None:
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return None
    days = (end - start).total_seconds() / DAY
    return days if days > 0 else None


def _text(value: str | None) -> str:
    return " ".join((value or "").replace("_", " ").replace("-", " ").lower().split())


NO_ESTIMATE, PLANNED_ZERO = "no estimate", "planned 0"
NO_ACTUAL, ACTUAL_ZERO = "no actual effort logged", "actual 0"
EFFORT_LEFT_OUT = (ACTUAL_ZERO, PLANNED_ZERO, NO_ESTIMATE, NO_ACTUAL)
"""Why a finished item has no effort ratio (`effort_left_out`), in the order learning
reports them: it counts each, never drops them silently."""


def effort_left_out(estimate: Any, effort: Any) -> str | None:
    """Why a finished item with this estimate and logged effort has no effort ratio (None
    when it has one): no estimate, an estimate of 0 (or less), no effort, or effort 0 (or
    less: work dropped, or logged as nothing)."""
    if estimate is None:
        return NO_ESTIMATE
    if _positive(estimate) is None:
        return PLANNED_ZERO
    if effort is None:
        return NO_ACTUAL
    if _positive(effort) is None:
        return ACTUAL_ZERO
    return None


def _effort(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    """(estimate, effort, effort / estimate) of a done item; None when `effort_left_out`
    gives a reason (a ratio of or to 0 means nothing)."""
    est, eff = _positive(plan.get("planned_estimate")), _positive(item.actual_effort)
    if item.status != "done" or est is None or eff is None:
        return None
    return (est, eff, eff / est)


def _slip(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    due = plan.get("planned_due")
    if item.status != "done" or due is None or item.actual_end is None:
        return None
    slip = (item.actual_end - due).total_seconds() / DAY
    return (0.0, slip, slip)


def _duration(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    if item.status != "done":
        return None
    planned = _days(plan.get("planned_start"), plan.get("planned_due"))
    actual = _days(item.actual_start, item.actual_end)
    if planned is None or actual is None:
        return None
    return (planned, actual, actual / planned)


def won(item: ItemLike) -> bool | None:
    """A deal's outcome: True won, False lost (or cancelled), None while open or unknown."""
    if item.status == "open":
        return None
    text = _text(item.outcome)
    if any(text.startswith(w) for w in WON):
        return True
    if item.status == "cancelled" or any(text.startswith(w) for w in LOST):
        return False
    return None


def _close_slip(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    due = plan.get("planned_due")
    if item.status == "open" or due is None or item.actual_end is None:
        return None
    slip = (item.actual_end - due).total_seconds() / DAY
    return (0.0, slip, slip)


def _amount(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    planned, actual = _positive(plan.get("planned_amount")), _positive(item.actual_amount)
    if item.status != "done" or planned is None or actual is None or won(item) is False:
        return None
    return (planned, actual, actual / planned)


def _won(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
    outcome = won(item)
    if outcome is None:
        return None
    # The planned value is the plan's stated win probability when it has one (a CRM's deal
    # probability); a deal in the pipeline is otherwise planned as a win.
    stated = plan.get("planned_probability")
    planned = float(stated) if isinstance(stated, int | float) else 1.0
    value = 1.0 if outcome else 0.0
    return (planned, value, value)


def _ladder(prefixes: tuple[str, ...]) -> Compute:
    def compute(plan: Mapping[str, Any], item: ItemLike) -> Triple | None:
        if item.status == "open":
            return None
        text = _text(item.outcome)
        value = 1.0 if any(text.startswith(p) for p in prefixes) else 0.0
        expected = _text(plan.get("expected_outcome"))
        planned = 1.0 if expected and any(expected.startswith(p) for p in prefixes) else 0.0
        return (planned, value, value)
    return compute


REGISTRY: tuple[Measure, ...] = (
    Measure("effort", "effort_ratio", (TASK,), ("planned_estimate",), ("actual_effort",),
            LOG_RATIO, _effort, "effort", "actual effort / estimate"),
    Measure("finish", "slip_days", (TASK,), ("planned_due",), ("actual_end",), DAYS, _slip,
            "finish", "done date - due date, in days"),
    Measure("duration", "duration_ratio", (TASK,), ("planned_start", "planned_due"),
            ("actual_start", "actual_end"), LOG_RATIO, _duration, None,
            "actual duration / planned duration"),
    Measure("finish", "close_slip_days", (DEAL,), ("planned_due",), ("actual_end",), DAYS,
            _close_slip, "finish", "actual close date - planned close date, in days"),
    Measure("amount", "amount_ratio", (DEAL,), ("planned_amount",), ("actual_amount",),
            LOG_RATIO, _amount, None, "actual amount / planned amount of a won deal"),
    Measure("won", "won", (DEAL,), (), ("outcome",), BINARY, _won, "win",
            "1 when the deal was won, 0 when lost or cancelled"),
    Measure("stage_days", "stage_days", (DEAL,), (), ("status",), DAYS, None, None,
            "days the deal spent in each stage, from its status changes"),
    Measure("reply", "reply", (ENROLLMENT,), (), ("outcome",), BINARY,
            _ladder(REPLY), None, "1 when the enrollment got a reply (or more)"),
    Measure("meeting", "meeting", (ENROLLMENT,), (), ("outcome",), BINARY,
            _ladder(MEETING), None, "1 when a meeting came of it"),
    Measure("conversion", "conversion", (ENROLLMENT,), (), ("outcome",), BINARY,
            _ladder(CONVERSION), None, "1 when it converted (won, signed, customer)"),
)
FAMILIES = (TASK, DEAL, ENROLLMENT)
DEVIATIONS = frozenset(m.deviation for m in REGISTRY)


LOG_NAMES = frozenset(m.name for m in REGISTRY if m.view == LOG_RATIO)


def model_value(name: str, value: float) -> float:
    """A deviation of measure `name` as the model sees it (the log of a ratio, else as is)."""
    return math.log(value) if name in LOG_NAMES else value


def normalise_kind(kind: str | None) -> str:
    """How kinds are compared: trimmed, case-folded, `_` as space; empty means task."""
    return " ".join((kind or "").replace("_", " ").lower().split()) or TASK


def family(kind: str | None, kind_map: Mapping[str, str] | None = None) -> str:
    """The kind family of an item `kind`, after the connection's `kind_map`."""
    key = normalise_kind(kind)
    if kind_map:
        mapped = {normalise_kind(k): normalise_kind(v) for k, v in kind_map.items()}
        key = mapped.get(key, key)
    return ALIASES.get(key, key)


def for_family(fam: str) -> tuple[Measure, ...]:
    """The measures of a kind family (a family not in FAMILIES is measured like tasks)."""
    base = fam if fam in FAMILIES else TASK
    return tuple(m for m in REGISTRY if base in m.families)


def lookup(fam: str, name: str) -> Measure:
    """The measure `name` of family `fam`.

    Raises:
        KeyError: when the family has no such measure.
    """
    for m in for_family(fam):
        if m.name == name:
            return m
    raise KeyError(f"{fam}/{name}")


def plan_of(item: Any) -> dict[str, Any]:
    """An item's plan as it stands: core planned field -> value."""
    return {f: getattr(item, f, None) for f in PLAN_FIELDS}


def kind_map(scope: Mapping[str, Any] | None) -> dict[str, str]:
    """The `kind_map` of a connection's scope, as str -> str (empty when absent)."""
    raw = (scope or {}).get("kind_map") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def item_kind_map(item: Any) -> dict[str, str]:
    """The kind map of an ORM item's connection, when the item belongs to a session."""
    state = inspect(item, raiseerr=False)
    if state is None or (state.session is None and "connection" not in state.dict):
        return {}
    conn = item.connection
    return kind_map(conn.scope) if conn is not None else {}


def compute(item: ItemLike, plan: Mapping[str, Any],
            kinds: Mapping[str, str] | None = None) -> dict[str, Triple]:
    """Every deviation an item supports against `plan`: deviation name -> (planned, actual,
    value). Event-based measures (stage days) are not included: see `stage_days`."""
    out: dict[str, Triple] = {}
    for m in for_family(family(item.kind, kinds)):
        if m.compute is not None:
            got = m.compute(plan, item)
            if got is not None and all(math.isfinite(v) for v in got):
                out[m.deviation] = got
    return out


def stage_days(changes: Iterable[tuple[dt.datetime, str | None, str | None]],
               end: dt.datetime | None) -> dict[str, float]:
    """Days spent in each stage from status changes (when, from, to), oldest first.

    The stage left by the first change counts from nothing (its start is unknown); the last
    stage entered counts until `end` when the deal has closed, and is skipped otherwise.
    """
    out: dict[str, float] = {}
    entered: tuple[str, dt.datetime] | None = None
    for when, _, to in sorted(changes, key=lambda c: c[0]):
        if entered is not None:
            stage, since = entered
            out[stage] = out.get(stage, 0.0) + max((when - since).total_seconds(), 0.0) / DAY
        entered = (str(to), when) if to else None
    if entered is not None and end is not None:
        stage, since = entered
        if end > since:
            out[stage] = out.get(stage, 0.0) + (end - since).total_seconds() / DAY
    return out


def check_mapping(fam: str, mapped: Iterable[str]) -> str | None:
    """Why a mapping does not fit a kind family: the first mapped core field no measure of
    the family uses (with the families that do use it), or None when it fits."""
    measures = for_family(fam)
    used = {f for m in measures for f in (*m.planned, *m.actual)}
    used |= CONTEXT_FIELDS.get(fam if fam in FAMILIES else TASK, frozenset())
    for name in sorted(set(mapped) & MEASURED_FIELDS - used):
        users = sorted({f"{m.families[0]} {m.name}" for m in REGISTRY
                        if name in (*m.planned, *m.actual)})
        names = ", ".join(m.name for m in measures)
        return (f"{name} is mapped, but the items are {fam} items and no {fam} measure uses "
                f"{name} ({fam} measures: {names}; {name} is used by: "
                f"{', '.join(users) or 'nothing'})")
    return None
