"""`learnloop lessons add|list|show`: lessons entered by hand, imported ones, their tests."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from core.errors import ConfigError
from core.lessons import store as lessons
from core.lessons.status import evidence_lines
from core.store import unit_of_work
from webapp.cli.common import JSON_HELP, default_user, emit_json, out, store

app = typer.Typer(help="Lessons as tested rules: enter them, list them, see their evidence.",
                  no_args_is_help=True)


def _date(raw: str | None) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(f"--date {raw!r}: give the lesson's date as YYYY-MM-DD") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _rows(s: Any, status: str | None = None) -> list[dict[str, Any]]:
    names = lessons.connection_names(s)
    return [lessons.public(x, names.get(x.connection_id or 0))
            for x in lessons.listed(s, status)]


@app.command("add")
def add(
    words: Annotated[str, typer.Argument(help="The lesson in words, e.g. 'we always "
                                              "underestimate integration work'.")],
    predicts: Annotated[str | None, typer.Option(
        help="What it predicts: 'component=integration takes 1.5x', 'type=Bug finishes late'.")]
    = None,
    segment: Annotated[str | None, typer.Option(
        help="The segment it concerns, e.g. 'component=integration, kind=task'.")] = None,
    behaviour: Annotated[str | None, typer.Option(
        help="The behaviour it asks for, e.g. 'plan 1.5x for integration tasks'.")] = None,
    date: Annotated[str | None, typer.Option(
        help="The lesson's date, YYYY-MM-DD (default today): work planned after it tests it.")]
    = None,
    by: Annotated[str | None, typer.Option(help="Who entered it (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Enter a lesson; the next learning run tests it on the work planned since its date."""
    with unit_of_work(store()) as s:
        row = lessons.public(lessons.add(s, words, segment=segment, predicts=predicts,
                                         behaviour=behaviour, created_by=by or default_user(),
                                         created_at=_date(date)))
    if as_json:
        emit_json(row)
        return
    out.print(f"lesson #{row['id']} added: {row['prediction']}; the next learning run tests it")


@app.command("list")
def list_(
    status: Annotated[str, typer.Option(
        help="untested, holds, no longer holds, unparsed or all.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List lessons with their verdicts."""
    with unit_of_work(store()) as s:
        rows = _rows(s, status)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no lessons yet; add one with `learnloop lessons add`" if status == "all"
                  else f"no lessons with status {status}")
    for r in rows:
        src = f"from {r['connection']} {r['external_id']}" if r["source"] == "imported" \
            else f"entered by {r['created_by'] or 'unknown'}"
        out.print(f"#{r['id']} [{r['status']}] {r['words'].splitlines()[0][:100]} "
                  f"({src}, {r['created_at'].date().isoformat()})")
        out.print(f"    {r['verdict'] or r['reason'] or ''}")


@app.command("show")
def show(
    lesson_id: int,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show one lesson: its rule, its source and the evidence of its latest test."""
    with unit_of_work(store()) as s:
        x = lessons.get(s, lesson_id)
        row = lessons.public(x, lessons.connection_names(s).get(x.connection_id or 0))
    if as_json:
        emit_json(row)
        return
    out.print(f"#{row['id']} [{row['status']}] {row['words']}")
    out.print(f"predicts: {row['prediction'] or '(not read: ' + str(row['reason']) + ')'}")
    if row["behaviour"]:
        out.print(f"asks for: {row['behaviour']}")
    where = (f"imported from {row['connection']} {row['external_id']}"
             + (f" ({row['url']})" if row["url"] else "")) if row["source"] == "imported" \
        else f"entered by {row['created_by'] or 'unknown'}"
    out.print(f"source: {where}, dated {row['created_at'].date().isoformat()}")
    out.print(f"verdict: {row['verdict'] or row['reason'] or 'not tested yet'}")
    for line in evidence_lines(row["evidence"]):
        out.print(f"  {line}")
    if row["proposal_id"]:
        out.print(f"proposed as a rule: proposal #{row['proposal_id']}")
