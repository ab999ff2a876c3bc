"""A real `learnloop worker` killed with SIGKILL mid-delivery: its settled writes stay settled,
the rest return after one claim timeout, and a new worker writes each exactly once."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select

from connectors.jira import JiraConnector
from core import outbox
from core.connections import add_connection
from core.contract import COMMENT, FIELDS
from core.model import WriteIntent, utcnow
from core.schedule import parse_schedule
from core.scheduler import claim_job
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness, adf_text

ROOT = Path(__file__).resolve().parents[2]
ISSUES = 40
STALL_AFTER = 15  # comments posted before the emulator stalls the next one
TIMEOUT = 3.0  # LEARNLOOP_CLAIM_TIMEOUT of both workers (the default is 60 s)
YEARLY = "0 0 1 1 *"  # the connection's sync schedule; this year's slot is claimed up front
COMMENT_WRITE = re.compile(r"^/rest/api/3/issue/([\w-]+)/comment(/\d+)?$")
ISSUE_PUT = re.compile(r"^/rest/api/[23]/issue/([\w-]+)(\?.*)?$")


def _worker(db_url: str, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEARNLOOP_DATABASE_URL": db_url,
           "LEARNLOOP_HOME": str(home), "LEARNLOOP_CLAIM_TIMEOUT": str(TIMEOUT)}
    code = "import sys; from webapp.cli import main; sys.exit(main(sys.argv[1:]))"
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", code, "worker", "--deliver-every", "0.2"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _statuses(engine: Engine) -> dict[int, tuple[str, str, str]]:
    with unit_of_work(engine) as s:
        return {r.id: (r.status, r.target, r.surface) for r in s.scalars(select(WriteIntent))}


def _wait(what: str, ok: object, seconds: float, log: Path) -> float:
    started = time.monotonic()
    while not ok():  # type: ignore[operator]
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what} not within {seconds} s; worker log:\n"
                                 + log.read_text(errors="replace")[-3000:])
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_worker_killed_mid_delivery_leaves_every_write_delivered_once(
        db_url: str, engine: Engine, learnloop_home: Path, tmp_path: Path) -> None:
    h = JiraHarness(n=ISSUES)
    emu = h.emu
    emu.admin = True  # notifyUsers=false is allowed: one PUT per fields write
    keys = sorted(emu.issues, key=lambda k: int(k.split("-")[1]))
    with unit_of_work(engine) as s:
        cid = add_connection(s, JiraConnector, "pay", h.config(), h.mapping(), YEARLY).id
        outbox.enqueue_many(s, [w for key in keys for w in (
            (cid, key, FIELDS, {"forecast_p80": 6.5, "insight": f"{key} runs long"}, None),
            (cid, key, COMMENT, {"text": f"learnloop: {key} tends to run 30% over"}, None))])
    # The worker syncs every connection when it starts: this slot is taken, so it only delivers.
    assert claim_job(engine, "sync_job", f"sync:{cid}:{parse_schedule(YEARLY).slot(utcnow())}",
                     cid) is not None
    emu.stall_match, emu.stall_after = r"^POST /rest/api/3/issue/[\w-]+/comment$", STALL_AFTER
    log = tmp_path / "worker.log"
    begin = len(emu.requests)  # the emulator serves the whole session
    first = _worker(db_url, learnloop_home, log)
    second = None
    try:
        _wait("a stalled comment", emu.stalled.is_set, 60, log)
        at_kill = _statuses(engine)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        mark = len(emu.requests)
        settled = {(t, sf) for st, t, sf in at_kill.values() if st == "delivered"}
        counts = collections.Counter(st for st, _, _ in at_kill.values())
        # every chunk before the stalled one was settled as it landed; the rest is held
        assert counts["delivered"] >= outbox.FIRST_CHUNK, counts
        assert counts["delivered"] + counts["delivering"] == 2 * ISSUES, counts
        emu.unstall.set()  # the stalled comment lands now, after its worker died
        stalled = keys[STALL_AFTER]
        _wait("the stalled comment", lambda: emu.issues[stalled].comments, 10, log)

        second = _worker(db_url, learnloop_home, log)
        took = _wait("every write delivered", lambda: {
            st for st, _, _ in _statuses(engine).values()} == {"delivered"}, 60, log)
        assert took < TIMEOUT + 30  # one claim timeout, not ten minutes
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        emu.unstall.set()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    posts: collections.Counter[str] = collections.Counter()
    writes: collections.Counter[tuple[str, str]] = collections.Counter()
    after: set[tuple[str, str]] = set()
    for i, (method, path) in enumerate(emu.requests[begin:], begin):
        if m := COMMENT_WRITE.match(path):
            write = (m.group(1), COMMENT)
            posts[m.group(1)] += method == "POST" and m.group(2) is None
        elif method == "PUT" and (m := ISSUE_PUT.match(path)):
            write = (m.group(1), FIELDS)
        else:
            continue
        if method in ("POST", "PUT"):
            writes[write] += 1
            if i >= mark:
                after.add(write)
    # one comment made per issue, ever (the stalled one was found by its marker and edited)
    assert posts == {key: 1 for key in keys}
    for key in keys:
        issue = emu.issues[key]
        assert len(issue.comments) == 1, (key, issue.comments)
        (body,) = issue.comments.values()
        assert adf_text(body) == f"learnloop: {key} tends to run 30% over"
        assert h.count(key, FIELDS) == 1
    # what was settled before the kill was written once and never again
    assert settled and not settled & after
    assert all(writes[w] == 1 for w in settled)
    assert (stalled, COMMENT) in after  # the stalled chunk was redelivered (as edits)
    with unit_of_work(engine) as s:
        rows = s.scalars(select(WriteIntent)).all()
        assert all(r.tool_ref for r in rows)
        comments = {r.target: r.tool_ref for r in rows if r.surface == COMMENT}
    assert all(comments[k] in emu.issues[k].comments for k in keys)
    assert h.unexpected() == []
