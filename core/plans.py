"""Plan baselines: the plan as committed, the plan as it stands, and the re-planning between.

Every change of a planned value is an Event of kind `plan_changed` with the attributes
`field` (a core name such as `planned_due`), `from` and `to` (core values: dates in ISO 8601,
numbers in the item's unit). Connectors that read a history (Jira's changelog) send them;
for snapshot sources (files, sheets) `snapshot_changes` derives them from what the previous
sync stored.

When a plan counts as committed is a rule per item kind, configurable per connection through
`Connection.scope["commit_on"]` (one rule for every kind, or a mapping kind -> rule, `*` for
the rest):

- `start` (tasks and issues): the values when work started (`actual_start`); an item first
  seen already finished without a start is committed at that sync;
- `creation` (deals and opportunities): the values when the item was created (`estimated_at`,
  else when learnloop first saw it);
- `first_seen`: the values at the first sync that saw the item;
- `stage:<status>`: the values when the item first entered that status (a deal's commit stage).

A plan once committed stays committed (reopening an item does not undo it).

The committed value of a field is the value before its first change after the commitment
time, or the current value when it has not changed since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contract import EventRecord, ItemRecord
from core.errors import ConfigError
from core.model import Connection, Event, Item

PLAN_FIELDS = ("planned_start", "planned_due", "planned_estimate", "planned_amount",
               "planned_probability")
"""Every planned value, by its core name."""
DATE_FIELDS = frozenset({"planned_start", "planned_due"})
PLAN_CHANGED = "plan_changed"
STATUS_CHANGED = "status_changed"
START, CREATION, FIRST_SEEN, STAGE = "start", "creation", "first_seen", "stage:"
DEAL_KINDS = frozenset({"deal", "deals", "opportunity", "opportunities"})
CHUNK = 500


def encode(field: str, value: Any) -> Any:
    """A planned value as stored in JSON (committed plans, event attributes)."""
    if value is None:
        return None
    if field in DATE_FIELDS:
        assert isinstance(value, dt.datetime)
        return value.astimezone(dt.UTC).isoformat()
    return float(value)


def decode(field: str, value: Any) -> Any:
    """A planned value from JSON back to a datetime (aware UTC) or a float."""
    if value is None:
        return None
    if field in DATE_FIELDS:
        when = dt.datetime.fromisoformat(str(value))
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return float(value)


def current_plan(item: Item) -> dict[str, Any]:
    """The plan as it stands: core field -> value."""
    return {f: getattr(item, f) for f in PLAN_FIELDS}


def committed_plan(item: Item) -> dict[str, Any] | None:
    """The plan as committed (core field -> value), or None while it is not committed yet."""
    if item.committed_plan is None:
        return None
    return {f: decode(f, item.committed_plan.get(f)) for f in PLAN_FIELDS}


def validate_rule(rule: str, kind: str = "*") -> str:
    """Check one commit rule.

    Raises:
        ConfigError: naming the rule, the kind and the rules there are.
    """
    if rule in (START, CREATION, FIRST_SEEN) or (rule.startswith(STAGE) and rule[len(STAGE):]):
        return rule
    raise ConfigError(f"commit_on rule {rule!r} for kind {kind!r} is unknown; use start, "
                      "creation, first_seen or stage:<status name>")


def rule_for(scope: Mapping[str, Any] | None, kind: str) -> str:
    """The commit rule of items of `kind` in a connection with this scope.

    Raises:
        ConfigError: for a rule that is not one of the known ones.
    """
    raw = (scope or {}).get("commit_on")
    rule: Any = None
    if isinstance(raw, str):
        rule = raw
    elif isinstance(raw, Mapping):
        rule = raw.get(kind, raw.get(kind.lower(), raw.get("*")))
    if rule is None:
        return CREATION if kind.lower() in DEAL_KINDS else START
    return validate_rule(str(rule).strip(), kind)


def commitment_time(item: Item, rule: str, statuses: Sequence[tuple[dt.datetime, str]],
                    now: dt.datetime) -> dt.datetime | None:
    """When the item's plan was committed under `rule`; None while it is not.

    Args:
        item: the stored item (its current values).
        rule: a commit rule (see the module docstring).
        statuses: (when, status entered) of its status changes.
        now: the time of this sync (an item first seen finished is committed then).

    A plan once committed stays committed: an item reopened keeps its commitment.
    """
    if rule == CREATION:
        return item.estimated_at or item.created_at or now
    if rule == FIRST_SEEN:
        return item.created_at or now
    if rule.startswith(STAGE):
        stage = rule[len(STAGE):].strip().casefold()
        entered = [when for when, to in statuses if str(to).strip().casefold() == stage]
        return min(entered) if entered else item.committed_at
    if item.actual_start is not None:
        return item.actual_start
    if item.committed_at is not None or item.status != "open":
        return item.committed_at or now
    return None


def value_at(at: dt.datetime, current: Any, changes: Iterable[tuple[dt.datetime, Any]]) -> Any:
    """A field's value at `at`: the `from` of its first change after `at`, else `current`.

    Args:
        at: the moment asked about.
        current: the value as it stands.
        changes: (when, from value) of every change of the field.
    """
    for when, old in sorted(changes, key=lambda c: c[0]):
        if when > at:
            return old
    return current


History = dict[str, tuple[dict[str, list[tuple[dt.datetime, Any]]], list[tuple[dt.datetime, str]]]]


def _history(session: Session, items: Sequence[Item], pending: Iterable[EventRecord]) -> History:
    """Item external id -> (field -> [(when, from)], [(when, status entered)]), from the stored
    events and the ones this batch is about to store (each event once)."""
    out: History = {}
    seen: set[str] = set()

    def add(ext: str, event_id: str, kind: str, when: dt.datetime,
            attrs: Mapping[str, Any]) -> None:
        if event_id in seen:
            return
        seen.add(event_id)
        changes, statuses = out.setdefault(ext, ({}, []))
        if kind == STATUS_CHANGED:
            statuses.append((when, str(attrs.get("to"))))
        elif kind == PLAN_CHANGED and attrs.get("field") in PLAN_FIELDS:
            changes.setdefault(str(attrs["field"]), []).append((when, attrs.get("from")))

    for ev in pending:
        add(ev.item_external_id, ev.external_id, ev.kind, ev.occurred_at, ev.attributes)
    ext_of = {i.id: i.external_id for i in items if i.id is not None}
    ids = list(ext_of)
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Event.item_id, Event.external_id, Event.kind, Event.occurred_at,
                   Event.attributes)
            .where(Event.item_id.in_(ids[start:start + CHUNK]),
                   Event.kind.in_((PLAN_CHANGED, STATUS_CHANGED))))
        for item_id, event_id, kind, when, attrs in rows:
            add(ext_of[item_id], event_id, kind, when, attrs or {})
    return out


def refresh(session: Session, conn: Connection, items: Iterable[Item],
            pending: Iterable[EventRecord] = (), now: dt.datetime | None = None) -> int:
    """Recompute the committed plan of `items` from their events and current values.

    Run after this sync's values are applied to the items and before they are flushed, so a
    new item is inserted with its committed plan; `pending` are the events the batch is about
    to store.

    Returns:
        How many items have a committed plan.

    Raises:
        ConfigError: when the connection's commit_on names an unknown rule.
    """
    items = list(items)
    if not items:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    history = _history(session, items, pending)
    committed = 0
    for item in items:
        changes, statuses = history.get(item.external_id, ({}, []))
        at = commitment_time(item, rule_for(conn.scope, item.kind), statuses, now)
        plan: dict[str, Any] | None = None
        if at is not None:
            plan = {f: value_at(at, encode(f, getattr(item, f)), changes.get(f, []))
                    for f in PLAN_FIELDS}
            committed += 1
        if item.committed_plan != plan:
            item.committed_plan = plan
        if item.committed_at != at:
            item.committed_at = at
    return committed


def covered_fields(events: Iterable[EventRecord]) -> dict[str, set[str]]:
    """Item external id -> the planned fields whose changes the connector itself reported."""
    out: dict[str, set[str]] = {}
    for ev in events:
        if ev.kind == PLAN_CHANGED and ev.attributes.get("field") in PLAN_FIELDS:
            out.setdefault(ev.item_external_id, set()).add(str(ev.attributes["field"]))
    return out


def snapshot_changes(item: Item, rec: ItemRecord, at: dt.datetime,
                     covered: Iterable[str] = ()) -> list[EventRecord]:
    """Re-planning events from comparing a row with what the previous sync stored.

    The event ids are stable: they name the item, the field, the change and the stored
    version it was made against, so storing the same change twice keeps one event.

    Args:
        item: the stored item, before this sync's values are applied.
        rec: the row as read now.
        at: when the change was seen (this sync; a snapshot cannot tell when it was made).
        covered: fields whose changes the connector reported itself (left alone).
    """
    skip = set(covered)
    previous = item.updated_at.isoformat() if item.updated_at else ""
    out = []
    for name in PLAN_FIELDS:
        old, new = getattr(item, name), getattr(rec, name)
        if name in skip or old == new:
            continue
        before, after = encode(name, old), encode(name, new)
        digest = hashlib.sha256(f"{previous}|{before}|{after}".encode()).hexdigest()[:16]
        out.append(EventRecord(
            rec.external_id, f"{rec.external_id}:plan:{name}:{digest}", at, PLAN_CHANGED,
            attributes={"field": name, "from": before, "to": after, "source": "snapshot",
                        "previous_sync": previous or None}))
    return out
