"""`learnloop experiments declare|list|show|stop`: declared process experiments.

Arguments and rendering only: the engine is `core.process` (the learning run judges them).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from core.process import measures as catalogue
from core.process import store as process
from core.store import unit_of_work
from webapp.cli.common import JSON_HELP, default_user, emit_json, out, store

PREDICATE = "KEY=VALUE[,VALUE] (repeatable; e.g. team=A)"


def declare(
    name: Annotated[str, typer.Option(help="The change in a few words (e.g. '2-week sprints').")],
    treated: Annotated[list[str], typer.Option(help=f"The treated group: {PREDICATE}.")],
    start: Annotated[str, typer.Option(help="When the change began (YYYY-MM-DD).")],
    measure: Annotated[list[str], typer.Option(
        help=f"What it should move (repeatable; the first decides): "
             f"{', '.join(catalogue.NAMES)}.")],
    min_effect: Annotated[float, typer.Option(
        help="The smallest effect on the first measure worth acting on, in its units "
             "(days for slip and cycle time, % for effort ratio and duration, plan changes, "
             "items a week, points of reply rate).")],
    hypothesis: Annotated[str, typer.Option(help="What you expect, in words.")],
    comparison: Annotated[list[str] | None, typer.Option(
        help=f"The comparison group: {PREDICATE}; default: comparable untreated items.")]
    = None,
    cluster: Annotated[str | None, typer.Option(
        help="The dimension items cluster by (default: the treated one's first).")] = None,
    end: Annotated[str | None, typer.Option(help="When the change ended (YYYY-MM-DD).")] = None,
    direction: Annotated[str | None, typer.Option(
        help="decrease or increase (default: the measure's usual improvement).")] = None,
    extend_to: Annotated[list[str] | None, typer.Option(
        help=f"Whom to propose it for if it works: {PREDICATE}; default: the comparison.")]
    = None,
    epic: Annotated[str | None, typer.Option(
        help="Issue key of the epic the verdict is written on (default: the treated items' "
             "epic).")] = None,
    owner: Annotated[str | None, typer.Option(help="Who owns it (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Declare a process experiment: judged against comparable teams on every learning run."""
    with unit_of_work(store()) as s:
        row = process.declare(
            s, name=name, hypothesis=hypothesis, treated=";".join(treated), start=start,
            measures=measure, min_effect=min_effect, owner=owner or default_user(),
            comparison=";".join(comparison) if comparison else None, cluster=cluster,
            end=end, direction=direction, extend_to=";".join(extend_to) if extend_to else None,
            epic=epic)
        shown = process.public(s, row)
    if as_json:
        emit_json(shown)
        return
    out.print(f"process experiment #{shown['id']} declared: {shown['name']} for "
              f"{shown['treated_text']} from {shown['start']}; judged on the next learning run "
              "(`learnloop learn`)", markup=False)


def list_(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List process experiments with their latest verdicts (negative results included)."""
    with unit_of_work(store()) as s:
        rows = [process.public(s, r) for r in process.listing(s)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no process experiments yet: declare one with `learnloop experiments declare`")
    for r in rows:
        out.print(f"#{r['id']} [{r['status']}] {r['name']} ({r['treated_text']} from "
                  f"{r['start']})", markup=False)
        out.print(f"    {r['statement'] or 'not judged yet: run `learnloop learn`'}", markup=False)


def show(
    experiment_id: Annotated[int, typer.Argument(help="The experiment's number.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show one process experiment: its declaration, verdict and evidence."""
    with unit_of_work(store()) as s:
        row = process.public(s, process.get(s, experiment_id))
    if as_json:
        emit_json(row)
        return
    for line in _lines(row):
        out.print(line, markup=False)


def _lines(r: dict[str, Any]) -> list[str]:
    lines = [f"#{r['id']} [{r['status']}] {r['name']}", f"hypothesis: {r['hypothesis']}",
             f"treated: {r['treated_text']} from {r['start']}"
             + (f" to {r['end']}" if r["end"] else ""),
             f"measures: {', '.join(r['measures'])} (first: expected to {r['direction']} by at "
             f"least {r['min_effect']:g})", f"owner: {r['owner']}",
             f"verdict: {r['statement'] or 'not judged yet: run `learnloop learn`'}"]
    for name, m in (r["evidence"].get("measures") or {}).items():
        did = m["did"]
        counts = did.get("counts") or {}
        lines.append(f"  {name}: {m['verdict']}; treated {counts.get('treated_pre', 0)} before / "
                     f"{counts.get('treated_post', 0)} after, comparison "
                     f"{counts.get('comparison_pre', 0)} / {counts.get('comparison_post', 0)}; "
                     f"groups {', '.join(m['treated_groups']) or '-'} vs "
                     f"{', '.join(m['comparison_groups']) or '-'}"
                     + (f"; {did['method']} interval, {did['draws']} placebo draws"
                        if did.get("method") else ""))
    if r["proposal"]:
        p = r["proposal"]
        lines.append(f"proposal #{p['id']} [{p['status']}]: {p['title']}")
    return lines


def stop(
    experiment_id: Annotated[int, typer.Argument(help="The experiment's number.")],
    by: Annotated[str | None, typer.Option(help="Who stops it (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Stop judging an experiment; it stays listed with its last verdict."""
    with unit_of_work(store()) as s:
        row = process.public(s, process.stop(s, experiment_id, by or default_user()))
    if as_json:
        emit_json(row)
        return
    out.print(f"process experiment #{row['id']} stopped; its last verdict stays listed")


def register(app: typer.Typer) -> None:
    """Add the process-experiment commands to `learnloop experiments`."""
    app.command("declare")(declare)
    app.command("list")(list_)
    app.command("show")(show)
    app.command("stop")(stop)
