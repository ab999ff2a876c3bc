"""`learnloop demo`: a sample workspace, the whole loop through the real code paths."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select

from connectors import registry, runtime
from core import policy
from core.connections import add_connection
from core.errors import LearnloopError
from core.learning import ledger
from core.learning.gap import gap_by_cycle
from core.learning.montecarlo import group_forecast
from core.learning.run import queue_writeback
from core.lessons.store import add as add_lesson
from core.model import Finding, Lesson, ProcessExperiment, Proposal, Template
from core.process.store import declare as declare_experiment
from core.settings import get_settings
from core.store import open_store, unit_of_work
from webapp.cli.common import out, store_in_use, using_store
from webapp.cli.forecasts import group_lines
from webapp.demo_data import (
    SPRINTS_DAYS_AGO,
    SPRINTS_TEAM,
    TEMPLATE_TASKS,
    generate,
    write_outreach,
    write_snapshot,
)

MAPPING = {
    "id": "Key", "title": "Summary", "estimated_at": "Estimated on", "planned_due": "Due",
    "planned_estimate": "Estimate (h)", "actual_start": "Started", "actual_end": "Done",
    "actual_effort": "Time spent (h)", "status": "Status",
    "segments": {"team": "Team", "type": "Type", "component": "Component",
                 "assignee": "Assignee"},
}


def run_demo(items: int = 1200, serve: bool = True) -> None:
    """Build the demo workspace from scratch and run two cycles of the loop on it.

    Raises:
        LearnloopError: when a server or a worker is using the demo's store (nothing deleted).
    """
    home = get_settings().home / "demo"
    db = home / "learnloop.db"
    if store_in_use(db.with_name(db.name + ".in-use")):
        raise LearnloopError(f"a learnloop server or worker is using the demo store {db}: stop "
                             "it (Ctrl+C in its terminal), then run the demo again; nothing "
                             "was deleted")
    _STEPS.clear()
    out.print(f"learnloop demo: building a sample workspace in {home} (deleted and rebuilt on "
              "every run; set LEARNLOOP_HOME to put it elsewhere)")
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    engine = open_store(f"sqlite:///{db}")
    with using_store(engine):
        _run(engine, home, items, serve)


_STEPS: list[int] = []


def _step(title: str) -> None:
    """Print the next numbered step's title."""
    _STEPS.append(len(_STEPS) + 1)
    out.print(f"\n{_STEPS[-1]}. {title}")


def _block(text: str, indent: str = "     ") -> None:
    """Print a multi-line text (a diff, JSON) indented under its step."""
    for line in str(text).splitlines():
        out.print(f"{indent}{line}")


def _command() -> str:
    """How to run `learnloop` from here, as this demo was run (`.venv/bin/learnloop` when
    the virtual environment is not activated)."""
    exe = Path(sys.executable).parent / "learnloop"
    found = shutil.which("learnloop")
    if found and exe.exists() and Path(found).resolve() == exe.resolve():
        return "learnloop"
    if not exe.exists():
        return "learnloop"
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def _run(engine: Engine, home: Path, items: int, serve: bool) -> None:
    plan = home / "plan.csv"
    today = dt.datetime.now(dt.UTC).date()
    tasks = generate(items, today)
    out.print("the data below is GENERATED (not real): "
              f"{items} tasks of three teams over 18 months, in {plan}")
    first, second = today - dt.timedelta(days=60), today
    done, opened = write_snapshot(tasks, first, plan)
    with unit_of_work(engine) as s:
        conn = add_connection(s, registry.get("file"), "demo-plan",
                              {"path": str(plan), "dayfirst": True}, MAPPING)
        # The template lives with the plan: an accepted proposal is written back into
        # plan.learnloop-templates.csv, and the proposal becomes applied once delivered.
        s.add(Template(name="PAY bug fix", kind="project", connection_id=conn.id,
                       external_id="PAY bug fix", body={"tasks": TEMPLATE_TASKS}))

    _step(f"Sync the plan as of {first}: {done} done, {opened} open tasks")
    report = runtime.sync(engine, "demo-plan")
    out.print(f"   stored {report.created} items; {report.quarantined} rows quarantined "
              "(deliberately broken rows, kept aside with their reason):")
    for p in report.problems:
        out.print(f"   - {p}")

    _step("Learn from the deviations")
    then = dt.datetime.combine(first, dt.time(18), tzinfo=dt.UTC)
    learned = runtime.learn(engine, as_of=then)
    for f in learned.findings[:5]:
        out.print(f"   finding: {f['statement']}")
    out.print(f"   {learned.forecasts_issued} forecasts issued for open tasks (kept in the ledger)")

    with unit_of_work(engine) as s:
        pending = s.scalars(select(Proposal).where(Proposal.status == "pending")
                            .order_by(Proposal.finding_id.is_(None), Proposal.id)).all()
        chosen = pending[0] if pending else None
        shown = pending[:5]
        _step(f"Proposals: {len(pending)} pending" + (
            f", the first {len(shown)} (all: {_command()} proposals list):"
            if len(shown) < len(pending) else ":" if shown else ""))
        for prop in shown:
            out.print(f"   #{prop.id} {prop.title}")
        if chosen is not None:
            _step(f"Accept #{chosen.id} as the template owner; what changes:")
            _block(chosen.diff)
            version = policy.accept(s, chosen.id, "demo template owner", "accepted in the demo")
            queued = queue_writeback(s, runtime.targets())
            out.print(f"   policy is now version {version.version}; {queued} writes queued")

    _process_and_lessons(engine, first, today)

    _step("Write-back through the outbox")
    delivered = runtime.deliver(engine)
    copy = home / "plan.learnloop.csv"
    out.print(f"   {delivered.delivered} delivered, {delivered.dead} failed -> {copy}")
    _show_copy(copy)

    _step(f"Two months later ({second}): sync again, score the forecasts")
    write_snapshot(tasks, second, plan)
    again = runtime.sync(engine, "demo-plan")
    out.print(f"   {again.created} new, {again.updated} updated items")
    learned = runtime.learn(engine)
    runtime.deliver(engine)
    with unit_of_work(engine) as s:
        cal = ledger.report(s)["overall"]
        gap = gap_by_cycle(s)
        group = group_forecast(s, {"team": "PAY"}, dt.datetime.now(dt.UTC))
    if cal["n"]:
        p80 = cal["p80"]
        out.print(f"   {learned.forecasts_scored} forecasts scored against what happened: P80 "
                  f"covered {p80['coverage']:.0%} of actuals (n={p80['n']}, 90% interval "
                  f"{p80['interval_90'][0]:.0%}-{p80['interval_90'][1]:.0%}, target 80%)")
    out.print(f"   plan-vs-actual gap over {len(gap['cycles'])} months: {gap['trend']['verdict']}")
    out.print(f"   when team PAY's {group['open_items']} open tasks will be done:")
    for line in group_lines(group):
        out.print(f"     {line}")
    _outreach(engine, home, today)
    cmd = _command()
    out.print(f"\nDemo workspace: {home}. Explore it from this directory, in another terminal:")
    out.print(f"   export LEARNLOOP_DATABASE_URL=sqlite:///{home / 'learnloop.db'}")
    for args in ("findings", "proposals list", "forecast --group team=PAY"):
        out.print(f"   {cmd} {args}")
    if cmd != "learnloop":
        out.print(f"   (or `source {Path(cmd).parent / 'activate'}` once, then plain `learnloop`)")
    _people(engine, shown=serve)
    if serve:
        _serve(engine)


def _process_and_lessons(engine: Engine, first: dt.date, today: dt.date) -> None:
    """A declared process experiment and a post-mortem lesson, judged by a learning run on
    the plan as of `first` (the generated change began SPRINTS_DAYS_AGO before `today`)."""
    began = today - dt.timedelta(days=SPRINTS_DAYS_AGO)
    with unit_of_work(engine) as s:
        exp = declare_experiment(
            s, name="2-week sprints", hypothesis=f"team {SPRINTS_TEAM} overruns its "
            "estimates less since it moved to 2-week sprints", treated=f"team={SPRINTS_TEAM}",
            start=began, measures=["effort_ratio"], min_effect=5,
            owner="demo template owner")
        lesson = add_lesson(s, "PAY's bugs always take longer than we think",
                            predicts="team=PAY, type=Bug takes longer than estimated",
                            behaviour="plan more for PAY bugs", created_by="demo team lead",
                            created_at=dt.datetime.combine(first - dt.timedelta(days=360),
                                                           dt.time(9), tzinfo=dt.UTC))
        exp_id, lesson_id = exp.id, lesson.id
    _step(f"A process experiment declared (team {SPRINTS_TEAM} on 2-week sprints since "
          f"{began}) and a post-mortem lesson entered; the next learning run judges both")
    then = dt.datetime.combine(first, dt.time(19), tzinfo=dt.UTC)
    runtime.learn(engine, as_of=then)
    with unit_of_work(engine) as s:
        judged = s.get_one(ProcessExperiment, exp_id)
        tested = s.get_one(Lesson, lesson_id)
        out.print(f"   experiment: {judged.statement or judged.verdict or 'not judged yet'}")
        verdict = (tested.evidence or {}).get("verdict") or tested.reason or tested.status
        out.print(f"   lesson: {verdict}")


DEMO_PEOPLE = (("admin@demo.learnloop", "admin"), ("owner@demo.learnloop", "template_owner"),
               ("viewer@demo.learnloop", "viewer"))
DEMO_PASSWORD = "learnloop-demo"  # noqa: S105 - a sample workspace on this machine only


def _people(engine: Engine, shown: bool = True) -> None:
    from webapp import security

    with unit_of_work(engine) as s:
        for email, role in DEMO_PEOPLE:
            security.create_user(s, email, DEMO_PASSWORD, role)
    if not shown:
        out.print("\nThe web app is not started (--no-serve); `learnloop demo` without it "
                  "serves this workspace and prints how to sign in.")
        return
    _step("The web app: sign in as "
              + ", ".join(f"{email} ({role.replace('_', ' ')})" for email, role in DEMO_PEOPLE)
              + f", password {DEMO_PASSWORD!r} (demo only)")


def _serve(engine: Engine) -> None:
    import os

    import uvicorn

    from webapp.app import create_app

    host = os.environ.get("LEARNLOOP_DEMO_HOST", "127.0.0.1")
    port = int(os.environ.get("LEARNLOOP_DEMO_PORT", "8000"))
    out.print(f"   serving the demo at http://{host}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")


OUTREACH_MAPPING = {
    "id": "Enrollment", "estimated_at": "Sent", "status": "Status", "outcome": "Outcome",
    "segments": {"industry": "Industry", "seniority": "Seniority"},
    "test": "Sequence", "arm": "Variant", "account": "Account", "assignment": "Assignment",
}


def _outreach(engine: Engine, home: Path, today: dt.date) -> None:
    """The go-to-market half: an outreach test, a segment policy, the sequence template."""
    path = home / "outreach.csv"
    write_outreach(path, today)
    _step("Outreach: 3,000 GENERATED enrollments of a randomised "
          f"two-angle sequence, in {path}")
    with unit_of_work(engine) as s:
        conn = add_connection(s, registry.get("file"), "demo-outreach", {"path": str(path)},
                              OUTREACH_MAPPING)
        s.add(Template(name="Outbound Q1 sequence", kind="sequence", connection_id=conn.id,
                       external_id="Outbound Q1 sequence", body={"test": "Outbound Q1"}))
    runtime.sync(engine, "demo-outreach")
    learned = runtime.learn(engine)
    for t in learned.experiments.get("tests", []):
        out.print(f"   test {t['test']}: {t['decision']}"
                  + (f", winner {t['winner']}" if t["winner"] else " (no overall winner)"))
    with unit_of_work(engine) as s:
        found = s.scalars(select(Finding).where(Finding.kind == "experiment")
                          .order_by(Finding.q_value)).all()
        for f in found[:3]:
            out.print(f"   finding: {f.statement}")
        playbook = s.scalars(select(Proposal).where(Proposal.dedupe_key.like("playbook:%"),
                                                    Proposal.status == "pending")).first()
        if playbook is not None:
            out.print(f"   proposal #{playbook.id}: {playbook.title}; accepted, what changes:")
            _block(playbook.diff)
            policy.accept(s, playbook.id, "demo template owner", "accepted in the demo")
    done = runtime.deliver(engine)
    with unit_of_work(engine) as s:
        policy.settle_accepted(s)
        applied = s.scalar(select(func.count(Proposal.id)).where(Proposal.status == "applied"))
    out.print(f"   write-back: {done.delivered} delivered; {applied} accepted proposals are "
              "applied (their templates written beside the files)")


def _show_copy(path: object) -> None:
    from pathlib import Path

    p = Path(str(path))
    if not p.exists():
        return
    with p.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    shown = [r for r in rows if r.get("learnloop P80")][:3]
    for r in shown:
        out.print(f"   {r['Key']}: estimate {r['Estimate (h)']} h, P80 {r['learnloop P80']} h; "
                  f"{r.get('learnloop insight', '')}")
