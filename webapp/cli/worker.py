"""`learnloop worker`: run the scheduled syncs, learning and write-back."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from core.errors import ConfigError
from core.redaction import install_logging
from webapp.cli.common import JSON_HELP, emit_json, error_line, out, store, using_store


def _print_once(summary: dict[str, Any]) -> None:
    for r in summary.get("queued", []):
        if r["status"] == "ok":
            st = r["stats"]
            out.print(f"sync now #{r['id']} {r['connection']}: {st['created']} new, "
                      f"{st['updated']} updated; learning run #{st['learning_run']}")
        else:
            error_line(f"sync now #{r['id']} {r['connection']}: {r['error']}")
    for r in summary["syncs"]:
        name = r.get("connection", f"connection #{r['connection_id']}")
        if r["status"] == "ok":
            st = r["stats"]
            out.print(f"sync {name}: {st['created']} new, {st['updated']} updated, "
                      f"{st['deleted']} deleted, {st['quarantined']} rows quarantined")
        elif r["status"] == "skipped":
            out.print(f"sync {name}: already run for {r['slot']} by another worker")
        elif r["status"] == "error":
            error_line(f"sync {name}: {r['error']}")
    learn = summary["learn"]
    if learn["status"] == "ok":
        st = learn["stats"]
        out.print(f"learning run #{st['learning_run']}: {st['findings']} findings, "
                  f"{st['forecasts_issued']} forecasts issued, {st['writes_queued']} writes queued")
    elif learn["status"] == "error":
        error_line(f"learning: {learn['error']}")
    else:
        out.print("learning: " + learn.get("reason", "already run for this slot by another worker"))
    d = summary["deliver"]
    if d["status"] == "error":
        error_line(f"write-back: {d['error']}")
    else:
        out.print(f"write-back: {d['delivered']} delivered, {d['retrying']} to retry, "
                  f"{d['dead']} failed")


def worker(
    once: Annotated[bool, typer.Option(
        "--once", help="Run every due sync, one learning run and the due write-back, then exit.")]
    = False,
    run_for: Annotated[float | None, typer.Option(
        "--run-for", metavar="SECONDS", help="Stop after this many seconds.")] = None,
    deliver_every: Annotated[float, typer.Option(
        "--deliver-every", metavar="SECONDS",
        help="Seconds between write-back passes.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Sync each connection on its schedule, learn, and deliver write-back, until stopped.

    Schedules are set per connection ('every 15m', '2h', or a crontab line in UTC; default
    every hour). Several workers can share one PostgreSQL store: each time slot of a sync runs
    on exactly one of them, and each write is delivered once. Stop with SIGTERM or Ctrl-C;
    running jobs finish first. With --once the exit code is 1 when a job failed.
    """
    from webapp.worker import run_worker

    if once and run_for is not None:
        raise ConfigError("use --once or --run-for, not both")
    if run_for is not None and run_for <= 0:
        raise ConfigError(f"--run-for must be more than 0 seconds, not {run_for:g}")
    if deliver_every <= 0:
        raise ConfigError(f"--deliver-every must be more than 0 seconds, not {deliver_every:g}")
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.ERROR if once else logging.INFO)
        for noisy in ("apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    install_logging()  # every line redacted, the client libraries' too
    engine = store()
    with using_store(engine):
        summary = run_worker(engine, once=once, run_for=run_for, deliver_every=deliver_every)
    if as_json:
        emit_json(summary)
    elif once:
        _print_once(summary)
    else:
        out.print(f"worker stopped ({summary['stopped_by']}) after {summary['seconds']} s")
    if once and (any(r["status"] == "error" for r in summary["syncs"] + summary["queued"])
                 or summary["learn"]["status"] == "error"
                 or summary["deliver"]["status"] == "error"):
        raise typer.Exit(1)
