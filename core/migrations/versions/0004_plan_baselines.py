"""plan baselines: committed plan per item, win probability, deviations against both plans

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00

Data: Jira's due-date and estimate events become `plan_changed` events in core values; every
item takes its committed plan from its stored events (the value before the first change after
the commitment) or its current values; the deviations stored so far were measured against the
current plan and are kept as such, and the same measures against the committed plan are added.
The rules are frozen here as they were at this revision (see core/plans.py for the live ones).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.model.base
from core.model.base import JSONType, UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PLAN_FIELDS = ("planned_start", "planned_due", "planned_estimate", "planned_amount",
               "planned_probability")
DATES = ("planned_start", "planned_due")
DEALS = {"deal", "deals", "opportunity", "opportunities"}
CHUNK = 1000
DAY = 86400.0

connections = sa.table("connections", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("config", JSONType), sa.column("scope", JSONType))
events = sa.table("events", sa.column("id", sa.Integer), sa.column("connection_id", sa.Integer),
                  sa.column("item_id", sa.Integer), sa.column("kind", sa.String),
                  sa.column("occurred_at", UTCDateTime()), sa.column("attributes", JSONType))
items = sa.table(
    "items", sa.column("id", sa.Integer), sa.column("connection_id", sa.Integer),
    sa.column("kind", sa.String), sa.column("status", sa.String),
    sa.column("planned_start", UTCDateTime()), sa.column("planned_due", UTCDateTime()),
    sa.column("planned_estimate", sa.Float), sa.column("planned_amount", sa.Float),
    sa.column("planned_probability", sa.Float), sa.column("estimated_at", UTCDateTime()),
    sa.column("actual_start", UTCDateTime()), sa.column("actual_end", UTCDateTime()),
    sa.column("actual_effort", sa.Float), sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()), sa.column("deleted", sa.Boolean),
    sa.column("committed_plan", JSONType), sa.column("committed_at", UTCDateTime()))
deviations = sa.table(
    "deviations", sa.column("item_id", sa.Integer), sa.column("measure", sa.String),
    sa.column("against", sa.String), sa.column("planned", sa.Float),
    sa.column("actual", sa.Float), sa.column("value", sa.Float),
    sa.column("computed_at", UTCDateTime()))


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_probability', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('committed_plan', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('committed_at', core.model.base.UTCDateTime(),
                                      nullable=True))
    with op.batch_alter_table('deviations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('against', sa.String(length=10), nullable=False,
                                      server_default='current'))
        batch_op.drop_constraint('uq_deviations_item_id_measure', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_deviations_item_id_measure_against'),
                                          ['item_id', 'measure', 'against'])
    with op.batch_alter_table('deviations', schema=None) as batch_op:
        batch_op.alter_column('against', server_default=None)
    bind = op.get_bind()
    _jira_plan_events(bind)
    _committed_plans(bind)


def _iso_day(text: Any) -> str | None:
    if text in (None, ""):
        return None
    day = dt.date.fromisoformat(str(text)[:10])
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).isoformat()


def _hours(text: Any, unit: float) -> float | None:
    if text in (None, ""):
        return None
    seconds = float(text)
    return seconds * unit if seconds > 0 else None


def _jira_plan_events(bind: sa.Connection) -> None:
    """due_date_moved / estimate_changed (Jira's text) -> plan_changed (core values)."""
    jira = {cid: float((config or {}).get("hours_per_estimate_unit") or 1 / 3600)
            for cid, kind, config in bind.execute(
                sa.select(connections.c.id, connections.c.kind, connections.c.config))
            if kind == "jira"}
    if not jira:
        return
    rows = bind.execute(sa.select(events.c.id, events.c.connection_id, events.c.kind,
                                  events.c.attributes)
                        .where(events.c.kind.in_(("due_date_moved", "estimate_changed")),
                               events.c.connection_id.in_(list(jira)))).all()
    updates = []
    for eid, cid, kind, attrs in rows:
        attrs = dict(attrs or {})
        try:
            if kind == "due_date_moved":
                new = {"field": "planned_due", "from": _iso_day(attrs.get("from")),
                       "to": _iso_day(attrs.get("to"))}
            else:
                new = {"field": "planned_estimate", "from": _hours(attrs.get("from"), jira[cid]),
                       "to": _hours(attrs.get("to"), jira[cid])}
        except ValueError:
            continue  # text this revision cannot read stays as it was stored
        updates.append({"eid": eid, "new_kind": "plan_changed",
                        "new_attributes": {**new, "from_text": attrs.get("from"),
                                       "to_text": attrs.get("to"), "source": "jira changelog"}})
    if updates:
        bind.execute(events.update().where(events.c.id == sa.bindparam("eid"))
                     .values(kind=sa.bindparam("new_kind"),
                             attributes=sa.bindparam("new_attributes")),
                     updates)


def _encode(name: str, value: Any) -> Any:
    if value is None:
        return None
    return value.isoformat() if name in DATES else float(value)


def _decode(name: str, value: Any) -> Any:
    if value is None or name not in DATES:
        return value
    when = dt.datetime.fromisoformat(str(value))
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _rule(scope: Any, kind: str) -> str:
    raw = (scope or {}).get("commit_on")
    rule = raw if isinstance(raw, str) else (
        raw.get(kind, raw.get("*")) if isinstance(raw, dict) else None)
    return str(rule) if rule else ("creation" if kind.lower() in DEALS else "start")


def _commitment(row: Any, rule: str, statuses: list[tuple[dt.datetime, str]]) -> Any:
    if rule == "creation":
        return row.estimated_at or row.created_at
    if rule == "first_seen":
        return row.created_at
    if rule.startswith("stage:"):
        stage = rule[6:].strip().casefold()
        entered = [w for w, to in statuses if str(to).strip().casefold() == stage]
        return min(entered) if entered else None
    if row.actual_start is not None:
        return row.actual_start
    # Finished without a start: committed when first seen finished, at the latest its last update.
    return None if row.status == "open" else row.updated_at


def _measures(row: Any, plan: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    out: dict[str, tuple[float, float, float]] = {}
    if row.status != "done" or row.deleted:
        return out
    est, due, start = plan["planned_estimate"], plan["planned_due"], plan["planned_start"]
    if est and row.actual_effort and est > 0 and row.actual_effort > 0:
        out["effort_ratio"] = (est, row.actual_effort, row.actual_effort / est)
    if due is not None and row.actual_end is not None:
        slip = (row.actual_end - due).total_seconds() / DAY
        out["slip_days"] = (0.0, slip, slip)
    if start is not None and due is not None and row.actual_start and row.actual_end:
        planned = (due - start).total_seconds() / DAY
        actual = (row.actual_end - row.actual_start).total_seconds() / DAY
        if planned > 0 and actual > 0:
            out["duration_ratio"] = (planned, actual, actual / planned)
    return out


def _committed_plans(bind: sa.Connection) -> None:
    scopes = dict(bind.execute(sa.select(connections.c.id, connections.c.scope)).all())
    now = dt.datetime.now(dt.UTC)
    last = 0
    while True:
        rows = bind.execute(sa.select(items).where(items.c.id > last)
                            .order_by(items.c.id).limit(CHUNK)).all()
        if not rows:
            return
        last = rows[-1].id
        ids = [r.id for r in rows]
        changes: dict[int, dict[str, list[tuple[dt.datetime, Any]]]] = {}
        statuses: dict[int, list[tuple[dt.datetime, str]]] = {}
        for item_id, kind, when, attrs in bind.execute(
                sa.select(events.c.item_id, events.c.kind, events.c.occurred_at,
                          events.c.attributes)
                .where(events.c.item_id.in_(ids),
                       events.c.kind.in_(("plan_changed", "status_changed")))):
            attrs = attrs or {}
            if kind == "status_changed":
                statuses.setdefault(item_id, []).append((when, str(attrs.get("to"))))
            elif attrs.get("field") in PLAN_FIELDS:
                changes.setdefault(item_id, {}).setdefault(attrs["field"], []).append(
                    (when, attrs.get("from")))
        plans, devs = [], []
        for row in rows:
            at = _commitment(row, _rule(scopes.get(row.connection_id), row.kind or "task"),
                             statuses.get(row.id, []))
            if at is None:
                continue
            plan = {}
            for name in PLAN_FIELDS:
                value = _encode(name, getattr(row, name))
                for when, old in sorted(changes.get(row.id, {}).get(name, []),
                                        key=lambda c: c[0]):
                    if when > at:
                        value = old
                        break
                plan[name] = value
            plans.append({"iid": row.id, "new_plan": plan, "new_at": at})
            decoded = {n: _decode(n, v) for n, v in plan.items()}
            for measure, (planned, actual, value) in _measures(row, decoded).items():
                devs.append({"item_id": row.id, "measure": measure, "against": "committed",
                             "planned": planned, "actual": actual, "value": value,
                             "computed_at": now})
        if plans:
            bind.execute(items.update().where(items.c.id == sa.bindparam("iid"))
                         .values(committed_plan=sa.bindparam("new_plan"),
                                 committed_at=sa.bindparam("new_at")), plans)
        if devs:
            bind.execute(deviations.insert(), devs)


def downgrade() -> None:
    op.execute("DELETE FROM deviations WHERE against <> 'current'")
    with op.batch_alter_table('deviations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_deviations_item_id_measure_against'),
                                 type_='unique')
        batch_op.create_unique_constraint('uq_deviations_item_id_measure', ['item_id', 'measure'])
        batch_op.drop_column('against')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('committed_at')
        batch_op.drop_column('committed_plan')
        batch_op.drop_column('planned_probability')
