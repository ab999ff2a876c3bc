"""`learnloop items list|show`: an item's committed and current plan, its changes and outcome."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import plans
from core.errors import ConfigError, NotFoundError
from core.learning.ledger import from_days
from core.model import Connection, Deviation, Event, Forecast, Item
from core.store import unit_of_work
from webapp.cli.common import JSON_HELP, emit_json, out, store

app = typer.Typer(help="Items: their plan as committed and as it stands, and what happened.",
                  no_args_is_help=True)

ACTUALS = ("actual_start", "actual_end", "actual_effort", "actual_amount", "outcome")
STATUSES = ("open", "done", "cancelled", "all")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _plan(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {k: _plain(v) for k, v in values.items()}


def _changes(session: Session, item_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Event).where(Event.item_id == item_id,
                                               Event.kind == plans.PLAN_CHANGED)
                           .order_by(Event.occurred_at, Event.id))
    return [{"field": e.attributes.get("field"), "from": e.attributes.get("from"),
             "to": e.attributes.get("to"), "at": e.occurred_at.isoformat(), "who": e.actor,
             "source": e.attributes.get("source")} for e in rows]


def _forecast(f: Forecast) -> dict[str, Any]:
    values: dict[str, Any] = {"p50": f.p50, "p80": f.p80, "p90": f.p90}
    if f.measure == "finish":
        values = {k: from_days(v).isoformat() for k, v in values.items()}
    return {"measure": f.measure, "issued_at": f.issued_at.isoformat(),
            "model_version": f.model_version, **values,
            "scored": f.scored_at is not None, "actual": f.actual}


def find(session: Session, key: str, connection: str | None) -> tuple[Item, str]:
    """The item whose id in its tool is `key` (in `connection` when given).

    Raises:
        NotFoundError: for an unknown connection or item.
        ConfigError: when several connections hold an item with that id.
    """
    query = select(Item, Connection.name).join(Connection, Connection.id == Item.connection_id) \
        .where(Item.external_id == key)
    if connection is not None:
        if session.scalar(select(Connection.id).where(Connection.name == connection)) is None:
            raise NotFoundError(f"unknown connection {connection!r}")
        query = query.where(Connection.name == connection)
    found = session.execute(query.order_by(Connection.name)).all()
    if not found:
        where = f" in connection {connection!r}" if connection else ""
        raise NotFoundError(f"no item {key!r}{where}; `learnloop items list` shows the ids")
    if len(found) > 1:
        names = ", ".join(name for _, name in found)
        raise ConfigError(f"item {key!r} is in several connections ({names}); "
                          "choose one with --connection NAME")
    item, name = found[0]
    return item, name


def detail(session: Session, item: Item, connection: str) -> dict[str, Any]:
    """An item as `items show --json` prints it."""
    deviations = session.scalars(select(Deviation).where(Deviation.item_id == item.id)
                                 .order_by(Deviation.measure, Deviation.against))
    forecasts = session.scalars(select(Forecast).where(Forecast.item_id == item.id)
                                .order_by(Forecast.issued_at, Forecast.id))
    return {
        "key": item.external_id, "connection": connection, "kind": item.kind,
        "title": item.title, "url": item.url, "status": item.status, "deleted": item.deleted,
        "unit": item.unit, "segments": item.segments,
        "plan": {"committed": _plan(plans.committed_plan(item)),
                 "committed_at": _plain(item.committed_at),
                 "current": _plan(plans.current_plan(item))},
        "plan_changes": _changes(session, item.id),
        "actuals": {name: _plain(getattr(item, name)) for name in ACTUALS},
        "deviations": [{"measure": d.measure, "against": d.against, "planned": d.planned,
                        "actual": d.actual, "value": d.value} for d in deviations],
        "forecasts": [_forecast(f) for f in forecasts],
    }


def _shown(name: str, value: Any, unit: str) -> str:
    if value is None:
        return "none"
    if name in plans.DATE_FIELDS or name in ("actual_start", "actual_end"):
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return f"{when:%Y-%m-%d}"
    if name == "planned_probability":
        return f"{float(value):.0%}"
    if name in ("planned_estimate", "actual_effort"):
        return f"{float(value):.1f} {unit}"
    return f"{float(value):,.2f}" if isinstance(value, int | float) else str(value)


def _deviation_text(d: dict[str, Any], unit: str) -> str:
    value = d["value"]
    if d["measure"] == "slip_days":
        words = "on time" if round(value) == 0 else \
            f"{abs(value):.0f} days {'late' if value > 0 else 'early'}"
        return f"finish {words}"
    if d["measure"] == "effort_ratio":
        return f"effort {value:.2f}x the estimate ({d['actual']:.1f} of {d['planned']:.1f} {unit})"
    return f"duration {value:.2f}x the planned duration"


def _print(row: dict[str, Any]) -> None:
    unit = row["unit"]
    out.print(f"{row['key']} ({row['connection']}, {row['kind']}, {row['status']}"
              f"{', deleted' if row['deleted'] else ''}): {row['title']}")
    plan = row["plan"]
    committed, current = plan["committed"], plan["current"]
    when = _shown("planned_due", plan["committed_at"], unit) if plan["committed_at"] else None
    out.print(f"plan committed on {when}:" if when else "plan: not committed yet")
    for name in plans.PLAN_FIELDS:
        now, then = current.get(name), (committed or {}).get(name)
        if now is None and then is None:
            continue
        label = name.removeprefix("planned_").replace("_", " ")
        text = f"  {label}: {_shown(name, now, unit)}"
        if committed is not None and then != now:
            text += f" (committed: {_shown(name, then, unit)})"
        out.print(text)
    changes = row["plan_changes"]
    out.print(f"plan changes: {len(changes) or 'none'}")
    for c in changes:
        name = str(c["field"])
        who = f" by {c['who']}" if c["who"] else ""
        out.print(f"  {_shown('planned_due', c['at'], unit)}: "
                  f"{name.removeprefix('planned_').replace('_', ' ')} "
                  f"{_shown(name, c['from'], unit)} -> {_shown(name, c['to'], unit)}{who}")
    actuals = [f"{n.removeprefix('actual_')} {_shown(n, v, unit)}"
               for n, v in row["actuals"].items() if v is not None]
    out.print(f"actuals: {', '.join(actuals) or 'none yet'}")
    if row["deviations"]:
        out.print("deviations:")
    for d in row["deviations"]:
        out.print(f"  against the {d['against']} plan: {_deviation_text(d, unit)}")
    for f in row["forecasts"]:
        values = ", ".join(f"{k.upper()} {_shown('planned_due', f[k], unit)}"
                           if f["measure"] == "finish" else f"{k.upper()} {f[k]:.1f} {unit}"
                           for k in ("p50", "p80", "p90"))
        out.print(f"forecast {f['measure']} issued {_shown('planned_due', f['issued_at'], unit)}"
                  f": {values}{' (scored)' if f['scored'] else ''}")


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="The item's id in its tool (issue key, row id).")],
    connection: Annotated[str | None, typer.Option(
        "--connection", help="The connection holding it, when several do.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show one item: its plan as committed and as it stands, every change, actuals,
    deviations against both plans, and the forecasts issued for it."""
    with unit_of_work(store()) as s:
        item, name = find(s, key, connection)
        row = detail(s, item, name)
    if as_json:
        emit_json(row)
    else:
        _print(row)


@app.command("list")
def list_(
    connection: Annotated[str | None, typer.Option(
        "--connection", help="Only this connection's items.")] = None,
    status: Annotated[str, typer.Option(help="open, done, cancelled or all.")] = "all",
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List items with their committed and current due date and how often the plan moved."""
    if status not in STATUSES:
        raise typer.BadParameter(f"expected one of {', '.join(STATUSES)}", param_hint="--status")
    with unit_of_work(store()) as s:
        query = select(Item, Connection.name).join(Connection, Connection.id == Item.connection_id) \
            .where(Item.deleted.is_(False))
        if connection is not None:
            if s.scalar(select(Connection.id).where(Connection.name == connection)) is None:
                raise NotFoundError(f"unknown connection {connection!r}")
            query = query.where(Connection.name == connection)
        if status != "all":
            query = query.where(Item.status == status)
        found = s.execute(query.order_by(Item.id.desc()).limit(limit)).all()
        ids = [item.id for item, _ in found]
        moved = dict(s.execute(select(Event.item_id, func.count()).where(
            Event.item_id.in_(ids), Event.kind == plans.PLAN_CHANGED).group_by(Event.item_id)
        ).all()) if ids else {}
        rows: list[dict[str, Any]] = []
        for item, name in found:
            committed = plans.committed_plan(item)
            rows.append({
                "key": item.external_id, "connection": name, "kind": item.kind,
                "status": item.status, "title": item.title,
                "plan": {"committed": _plan(committed), "current": _plan(plans.current_plan(item))},
                "plan_changes": int(moved.get(item.id, 0)),
            })
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no items yet: add a connection and run `learnloop sync`")
    for r in rows:
        current = r["plan"]["current"]["planned_due"]
        committed = (r["plan"]["committed"] or {}).get("planned_due")
        due = f"due {_shown('planned_due', current, '')}" if current else "no due date"
        if committed and committed != current:
            due += f" (committed {_shown('planned_due', committed, '')})"
        changes = r["plan_changes"]
        out.print(f"{r['key']} [{r['connection']}, {r['status']}] {r['title']}: {due}; "
                  f"plan changed {changes} time{'s' if changes != 1 else ''}")
