"""A person's path through the web app in headless Chromium: first run, install Jira against the
emulator, sync, accept a proposal, and see the write-back arrive in Jira."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Connection, Proposal, Template
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness
from tests.webapp.server import LiveServer
from webapp import worker

ADMIN, PASSWORD = "admin@example.com", "a long enough password"


def _template_site() -> tuple[JiraHarness, Any]:
    h = JiraHarness(n=240)
    h.emu.admin = True
    tpl = h.emu.add_issue("OPS-1", {
        "summary": "Bug-fix template", "labels": ["learnloop-template"], "project": {"key": "OPS"},
        "issuetype": {"name": "Epic"}, "status": {"name": "Open", "statusCategory": {"key": "new"}}})
    for name, hours in (("Fix login bug", 8), ("Write release note", 1)):
        h.emu.add_issue(f"OPS-{len(h.emu.issues)}", {
            "summary": name, "parent": {"key": tpl.key}, "project": {"key": "OPS"},
            "timeoriginalestimate": hours * 3600, "issuetype": {"name": "Sub-task"},
            "status": {"name": "Open", "statusCategory": {"key": "new"}}})
    return h, tpl


def _flash(page: Any) -> str:
    return str(page.locator("p.flash").first.inner_text())


def test_admin_installs_jira_syncs_and_an_accepted_proposal_reaches_jira(
        engine: Engine, page: Any) -> None:
    h, tpl = _template_site()
    outside: list[str] = []
    with LiveServer(engine) as url:
        page.on("request", lambda r: outside.append(r.url)
                if urlparse(r.url).hostname not in ("127.0.0.1", "localhost") else None)
        page.goto(url + "/")
        assert page.url.endswith("/setup")  # first run: no users yet
        page.fill("input[name=email]", ADMIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        assert page.url.endswith("/admin/connections")

        page.click("#install-jira")
        page.fill("input[name=name]", "payments jira")
        for key, value in h.config().items():
            page.fill(f"input[name={key}]", value)
        page.fill("input[name=schedule]", "every 15m")
        page.click("button[type=submit]")
        assert "installed" in _flash(page)
        assert h.config()["api_token"] not in page.content()  # secrets never shown again

        page.click("#action-test")
        assert "Connection works" in _flash(page), _flash(page)
        page.click("#action-install")
        assert "install:" in _flash(page)
        page.click("#action-sync")  # queued for the worker: the page answers at once
        assert "queued as job" in _flash(page), _flash(page)
        assert page.locator("#job-status").inner_text() == "queued"
        assert page.locator("meta[http-equiv=refresh]").count() == 1  # follows the progress
        (ran,) = worker.queued_job(engine=engine)["jobs"]  # the worker's next tick
        assert ran["status"] == "ok", ran
        page.reload()
        assert page.locator("#job-status").inner_text() == "ok"
        assert "240 new" in page.locator("#job-summary").inner_text()
        assert page.locator("#job-items").inner_text() == "240"
        assert page.locator("meta[http-equiv=refresh]").count() == 0

        with unit_of_work(engine) as s:  # the template owner's Jira template, known to learnloop
            conn_id = s.scalars(select(Connection.id)).one()
            s.add(Template(name="bugfix", connection_id=conn_id, external_id="OPS-1", body={
                "tasks": [{"name": "Fix login bug", "segments": {"issuetype": "Bug"},
                           "estimate": 8},
                          {"name": "Write release note", "segments": {"issuetype": "Task"},
                           "estimate": 1}]}))
            prop_id = s.scalars(select(Proposal.id).where(
                Proposal.dedupe_key == "effort:issuetype=Bug")).one()

        page.goto(url + "/")
        assert page.locator("main svg").count() >= 4
        assert "finished items" in page.content()

        page.goto(url + "/proposals")
        page.click(f"a[href='/proposals/{prop_id}']")
        assert "old" in page.locator("pre.diff").inner_text() or \
            page.locator("pre.diff .add").count() >= 1
        page.fill("form[action$='/accept'] textarea[name=note]", "bugs do run long")
        page.click("#accept")
        assert "accepted" in _flash(page)
        assert page.locator("#status").inner_text() == "accepted"

        page.goto(url + f"/admin/connections/{conn_id}")
        page.click("#action-deliver")
        assert "0 given up" in _flash(page), _flash(page)

        page.goto(url + f"/proposals/{prop_id}")
        assert page.locator("#status").inner_text() == "applied"
        assert "bugs do run long" in page.content()
        assert ADMIN in page.locator("table").last.inner_text()  # the audit trail

    child = next(i for i in h.emu.issues.values() if i.fields.get("summary") == "Fix login bug")
    assert child.fields["timeoriginalestimate"] > 8 * 3600 * 1.5
    (comment,) = tpl.comments.values()
    assert ADMIN in comment["content"][0]["content"][0]["text"]
    assert outside == []  # charts and pages need no network
    assert h.emu.unexpected == []


def test_a_viewer_sees_insights_but_not_admin_pages_or_decisions(engine: Engine, page: Any) -> None:
    from webapp import security

    with unit_of_work(engine) as s:
        security.create_user(s, ADMIN, PASSWORD, "admin")
        security.create_user(s, "viewer@example.com", PASSWORD, "viewer")
    with LiveServer(engine) as url:
        page.goto(url + "/admin/connections")
        assert "/login" in page.url
        page.fill("input[name=email]", "viewer@example.com")
        page.fill("input[name=password]", "wrong password!")
        page.click("button[type=submit]")
        assert "wrong email or password" in page.content()
        page.fill("input[name=email]", "viewer@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        assert page.url.endswith("/admin/connections")
        assert "Not allowed" in page.content()
        assert page.locator("a[href='/admin/connections']").count() == 0
        page.goto(url + "/audit")
        assert page.locator("input[name=signal_capture]").count() == 0
        assert page.locator(".measured").count() == 6
