"""The top-level `learnloop` commands."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.progress import TaskID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors import runtime
from core.connections import get_connection
from core.errors import LearnloopError
from core.learning import ledger
from core.learning.findings import MIN_N
from core.learning.gap import gap_by_cycle
from core.learning.montecarlo import group_forecast
from core.learning.run import ALPHA, MIN_TRAIN, current_findings
from core.model import Connection, Item, LearningRun, QuarantinedRow, utcnow
from core.scheduler import LEARN_LOCK, drop_claim, sync_lock
from core.settings import get_settings
from core.store import unit_of_work
from webapp import jobs
from webapp.cli import backtest, bench, connections, experiments, items, lessons, proposals
from webapp.cli.common import (
    JSON_HELP,
    emit_json,
    error_line,
    fmt_time,
    out,
    parse_pairs,
    progress,
    store,
)
from webapp.cli.forecasts import group_lines, resolve_group
from webapp.cli.serve import create_first_admin, serve
from webapp.cli.worker import worker

app = typer.Typer(
    help="learnloop: learn from planned vs actual and write the learning back into your tools.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.add_typer(connections.app, name="connections")
app.add_typer(proposals.app, name="proposals")
app.add_typer(items.app, name="items")
app.command("backtest")(backtest.run)
app.add_typer(bench.app, name="bench")
app.add_typer(experiments.app, name="experiments")
app.add_typer(lessons.app, name="lessons")
app.command("worker")(worker)
app.command("serve")(serve)


@app.command()
def init(
    admin_email: Annotated[str | None, typer.Option(
        help="Create the first admin with this email (password from "
             "LEARNLOOP_ADMIN_PASSWORD, else asked for).")] = None,
) -> None:
    """Create the learnloop home, its secret key and the store (and the first admin)."""
    from core.secrets import load_key

    settings = get_settings()
    engine = store()
    load_key()
    out.print(f"store ready at {engine.url.render_as_string(hide_password=True)}")
    out.print(f"home: {settings.home}")
    if admin_email:
        out.print(f"admin {create_first_admin(admin_email, None)} created; sign in with "
                  "`learnloop serve`")


@app.command()
def sync(
    names: Annotated[list[str] | None, typer.Argument(help="Connections (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Pull plans, actuals and events from connections into the store.

    Rows that cannot be read are quarantined with their reason and counted; good rows are
    kept. Every connection's result is printed by name, failed ones too (on stderr), and the
    others are synced all the same. The exit code is 1 when anything was quarantined, 2 when a
    sync failed or a sync of one of them is already running (a worker's, a "Sync now" or
    another `learnloop sync`; that one is left alone). With --json every connection's result
    (or its "error") is printed as JSON.
    """
    engine = store()
    targets = names or runtime.connection_names(engine)
    if not targets:
        if as_json:
            emit_json([])
            error_line("there are no connections yet; add one first")
            raise typer.Exit(2)
        raise typer.BadParameter("there are no connections yet; add one first")
    claims: dict[str, tuple[int, str | None]] = {}
    reports = []
    failed: list[dict[str, Any]] = []
    try:
        for name in targets:
            try:
                with unit_of_work(engine) as s:
                    conn = get_connection(s, name)
                    cid, token = conn.id, conn.secrets
                claims[name] = (jobs.claim_or_busy(engine, "cli_sync", sync_lock(cid),
                                                   f"a sync of {name} is already running",
                                                   cid), token)
            except LearnloopError as exc:
                failed.append({"connection": name, "error": str(exc)})
        with progress() as bar:
            for name in targets:
                if name not in claims:
                    continue
                task = bar.add_task(f"sync {name}", total=None)

                def advance(n: int, t: TaskID = task) -> None:
                    bar.advance(t, n)

                run_id, token = claims.pop(name)
                try:
                    with jobs.holding(engine, run_id, token) as stats:
                        report = runtime.sync(engine, name, advance)
                        stats.update((k, v) for k, v in report.as_dict().items()
                                     if k != "problems")
                    reports.append(report)
                except LearnloopError as exc:
                    failed.append({"connection": name, "error": str(exc)})
    finally:
        for run_id, _ in claims.values():  # not started: given back
            drop_claim(engine, run_id)
    if as_json:
        results = {r.connection: r.as_dict() for r in reports}
        results.update((f["connection"], f) for f in failed)
        emit_json([results[name] for name in targets if name in results])  # in the order asked
        raise typer.Exit(2 if failed else 1 if any(r.problems for r in reports) else 0)
    for r in reports:
        out.print(f"{r.connection}: {r.created} new, {r.updated} updated, {r.unchanged} "
                  f"unchanged, {r.deleted} deleted, {r.events} events, "
                  f"{r.quarantined} rows quarantined", markup=False)
        if r.adjusted:
            shown = "; ".join(str(p) for p in r.adjusted[:3])
            more = f" (and {len(r.adjusted) - 3} more)" if len(r.adjusted) > 3 else ""
            out.print(f"  note: {len(r.adjusted)} rows kept with a value shortened or dropped: "
                      f"{shown}{more}", markup=False)
        if r.problems:
            shown = "; ".join(str(p) for p in r.problems[:3])
            more = f" (and {len(r.problems) - 3} more: learnloop quarantine {r.connection})" \
                if len(r.problems) > 3 else ""
            error_line(f"{r.connection}: {len(r.problems)} rows quarantined, good rows kept: "
                       f"{shown}{more}")
    for f in sorted(failed, key=lambda f: targets.index(f["connection"])):
        error_line(_named(f["connection"], f["error"]))
    if failed and len(targets) > 1:
        rest = len(targets) - len(failed)
        error_line(f"{len(failed)} of {len(targets)} connections failed "
                   f"({', '.join(f['connection'] for f in failed)}); "
                   + (f"the other {rest} synced" if rest else "none synced"))
    if failed:
        raise typer.Exit(2)
    if any(r.problems for r in reports):
        raise typer.Exit(1)


def _named(name: str, message: str) -> str:
    """`message` about connection `name`, naming it (once)."""
    return message if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message) \
        else f"{name}: {message}"


@app.command()
def learn(
    no_deliver: Annotated[bool, typer.Option("--no-deliver", help="Only queue the write-back.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Run a learning cycle: score past forecasts, find, propose, forecast, write back.

    One learning run at a time: exit code 2 when one is already running (a worker's, a
    "Sync now" or another `learnloop learn`).
    """
    engine = store()
    run_id = jobs.claim_or_busy(engine, "cli_learn", LEARN_LOCK,
                                "a learning run is already running")
    with progress() as bar, jobs.holding(engine, run_id) as stats:
        task = bar.add_task("learning", total=None)
        report = runtime.learn(engine, lambda step: bar.update(task, description=step))
        stats.update(learning_run=report.run_id, proposals=len(report.proposals),
                     forecasts_issued=report.forecasts_issued,
                     writes_queued=report.writes_queued)
    delivery = None if no_deliver else runtime.deliver(engine)
    if as_json:
        emit_json({**report.as_dict(), "delivery": delivery.as_dict() if delivery else None})
        return
    out.print(f"learning run #{report.run_id}: {report.finished.get('task/effort', 0)} finished tasks "
              f"with an estimate, {report.open_items} open; {report.examined} segments examined")
    for note in report.notes:
        out.print(f"  note: {note}", markup=False)
    if report.left_out:
        out.print(f"  {len(report.left_out)} left out of this run, the rest learned: "
                  + "; ".join(report.left_out[:5])
                  + (f" (and {len(report.left_out) - 5} more)" if len(report.left_out) > 5
                     else ""), markup=False)
    for f in report.findings[:10]:
        out.print(f"  finding: {f['statement']}")
    for p in report.proposals:
        out.print(f"  proposal #{p['id']}: {p['title']}")
    out.print(f"  {report.forecasts_issued} forecasts issued, {report.forecasts_scored} scored, "
              f"{report.writes_queued} writes queued")
    if delivery:
        out.print(f"  write-back: {delivery.delivered} delivered, {delivery.retrying} to retry, "
                  f"{delivery.dead} failed")


@app.command()
def deliver(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Deliver the queued write-back into the tools."""
    report = runtime.deliver(store())
    if as_json:
        emit_json(report.as_dict())
    else:
        out.print(f"{report.delivered} delivered, {report.retrying} to retry, {report.dead} failed")


@app.command()
def findings(
    limit: Annotated[int, typer.Option(help="How many to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show what the newest learning run found, most impactful first, with evidence."""
    engine = store()
    with unit_of_work(engine) as s:
        rows: list[dict[str, Any]] = [
            {"id": f.id, "measure": f.measure, "segment": f.segment, "statement": f.statement,
             "n": f.n, "effect": f.effect,
             "interval": {"level": f.interval_level, "low": f.interval_low,
                          "high": f.interval_high},
             "spread_80": (None if f.spread_low is None else [f.spread_low, f.spread_high]),
             "p_value": f.p_value, "q_value": f.q_value, "impact": f.impact}
            for f in current_findings(s)[:limit]
        ]
        cal = ledger.report(s)
        win = ledger.report(s, "win")
        gap = gap_by_cycle(s)
        empty = None if rows else _no_findings(s)
    if as_json:
        emit_json({"findings": rows, "calibration": cal, "win_calibration": win, "gap": gap})
        return
    if empty:
        out.print(empty)
    for r in rows:
        out.print(f"- {r['statement']} (q={r['q_value']:.2g})")
    overall = cal["overall"]
    if overall["n"]:
        p80 = overall["p80"]
        out.print(f"forecast ledger: {overall['n']} effort forecasts scored; P80 covered "
                  f"{p80['coverage']:.0%} of actuals (90% interval {p80['interval_90'][0]:.0%}-"
                  f"{p80['interval_90'][1]:.0%}; target 80%)")
        from webapp.insight_data import off_target

        for o in off_target(overall):
            out.print(f"OFF TARGET: {o['level']} covered {o['coverage']:.0%} of actuals, its 90% "
                      f"interval {o['low']:.0%}-{o['high']:.0%} excludes the target "
                      f"{o['target']:.0%} (n={o['n']}); the next runs recalibrate")
    if win["overall"]["n"]:
        out.print(f"forecast ledger: {ledger.in_words(win['overall'])}")
    if gap["cycles"]:
        last = gap["cycles"][-1]
        out.print(f"plan-vs-actual gap: {last['cycle']} median {last['median_gap_factor']}x off "
                  f"plan, {last['within_20pct']:.0%} within 20% (n={last['n']}); trend over "
                  f"{len(gap['cycles'])} months: {gap['trend']['verdict']}")


def _no_findings(s: Session) -> str:
    """Why there is no finding, in the words of what happened so far."""
    run = s.scalars(select(LearningRun).where(LearningRun.status == "ok")
                    .order_by(LearningRun.id.desc()).limit(1)).first()
    if run is None:
        if s.scalar(select(func.count()).select_from(Connection)) == 0:
            return ("no findings yet: add a connection (learnloop connections add ...), then "
                    "run `learnloop sync` and `learnloop learn`")
        if s.scalar(select(func.count()).select_from(Item)) == 0:
            return "no findings yet: nothing synced so far; run `learnloop sync`"
        return "no findings yet: no learning run so far; run `learnloop learn`"
    outputs = run.outputs or {}
    finished = max((int(v) for v in (outputs.get("finished") or {}).values()
                    if isinstance(v, int | float)), default=0)
    when = fmt_time(run.finished_at)
    text = (f"no findings: learning run #{run.id} ({when}) looked at {finished} finished "
            f"items and {outputs.get('examined', 0)} segments, and no segment of at least "
            f"{MIN_N} items differs from the rest with confidence (q <= {ALPHA:g})")
    if finished < MIN_TRAIN:
        text += (f"; at least {MIN_TRAIN} finished items with a plan are needed before "
                 "learnloop forecasts")
    return text


@app.command()
def forecast(
    group: Annotated[list[str] | None, typer.Option(
        help="Segment KEY=VALUE selecting the group (repeatable; default: everything open).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """When will a group be done? Bottom-up Monte Carlo and throughput resampling."""
    asked = parse_pairs(group, "--group")
    with unit_of_work(store()) as s:
        selector = resolve_group(s, asked)
        result = group_forecast(s, selector, utcnow())
    if as_json:
        emit_json(result)
        return
    name = ", ".join(f"{k}={v}" for k, v in selector.items()) or "everything open"
    n = result["open_items"]
    out.print(f"{name}: {n} open item{'' if n == 1 else 's'} ({result['trials']:,} trials)")
    for line in group_lines(result):
        out.print(f"  {line}")


@app.command()
def quarantine(
    name: Annotated[str | None, typer.Argument(help="A connection (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List input rows that could not be read, with the reason."""
    with unit_of_work(store()) as s:
        query = select(QuarantinedRow, Connection.name).join(
            Connection, Connection.id == QuarantinedRow.connection_id).order_by(QuarantinedRow.id)
        if name:
            if s.scalar(select(Connection.id).where(Connection.name == name)) is None:
                raise LearnloopError(f"unknown connection {name!r} (see `learnloop connections "
                                     "list`)")
            query = query.where(Connection.name == name)
        rows = [{"connection": cname, "where": q.locator, "reason": q.reason, "raw": q.raw}
                for q, cname in s.execute(query)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("nothing quarantined")
    for r in rows:
        out.print(f"{r['connection']}: {r['where']}: {r['reason']}")


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after printing.")] = False,
    items: Annotated[int, typer.Option(help="How many sample tasks to generate.")] = 1200,
) -> None:
    """Build a sample workspace and run the whole loop on it (no credentials, no network)."""
    from webapp.demo import run_demo

    run_demo(items=items, serve=not no_serve)
