"""A declared process experiment on Jira issues: synced from the emulator, judged by the
learning run, its verdict written as one comment on the epic through the real client, and the
open issues it treats carrying it in their learnloop property."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.jira import JiraConnector
from core.connections import add_connection
from core.model.links import ItemLink
from core.model.process import ProcessExperiment
from core.process import store
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness, adf_text, status
from tests.core.process_data import CHANGE, teams
from tests.emulators.jira.server import jira_time

EPIC = "PAY-900"


def _seed(h: JiraHarness, parent: bool = False) -> None:
    h.emu.issues.clear()
    under = {"parent": {"id": "10900", "key": EPIC, "fields": {"summary": "Sprint change"}}} \
        if parent else {}
    items = teams(11, effect=3.0, n_teams=5, pre_weeks=20, post_weeks=12, per_week=2.5)
    for k, i in enumerate(items, 1):
        end = CHANGE + dt.timedelta(days=i.when)
        begun = CHANGE + dt.timedelta(days=i.begun)
        due = (end - dt.timedelta(days=i.slip)).date().isoformat()
        h.emu.add_issue(f"PAY-{k}", {
            "summary": f"Task {k}", "issuetype": {"name": "Story"}, "project": {"key": "PAY"},
            "status": status("Done", "done"), "duedate": due, "timeoriginalestimate": 7200,
            "timespent": 7200, "resolutiondate": jira_time(end),
            "created": jira_time(begun - dt.timedelta(days=1)),
            "components": [{"name": i.team}], "labels": [], "priority": {"name": "Medium"},
            **under,
        }, [{"id": str(k * 10), "created": jira_time(begun), "author": {"accountId": "dev-1"},
             "items": [{"field": "status", "fieldtype": "jira", "fromString": "To Do",
                        "toString": "In Progress"}]}], updated=end)
    for k, team in enumerate("AAB", len(items) + 1):  # open work, under the change or not
        h.emu.add_issue(f"PAY-{k}", {
            "summary": f"Open {k}", "issuetype": {"name": "Story"}, "project": {"key": "PAY"},
            "status": status("In Progress", "indeterminate"), "duedate": "2031-01-10",
            "timeoriginalestimate": 7200, "created": jira_time(CHANGE), "labels": [],
            "components": [{"name": team}], "priority": {"name": "Medium"}, **under})
    h.emu.add_issue(EPIC, {"summary": "Sprint change", "issuetype": {"name": "Epic"},
                           "project": {"key": "PAY"}, "status": status("Open", "new"),
                           "created": jira_time(CHANGE), "labels": [], "components": []})


def test_the_verdict_is_one_comment_on_the_epic(engine: Engine) -> None:
    h = JiraHarness(n=1)
    h.emu.admin = True
    _seed(h)
    with unit_of_work(engine) as s:
        add_connection(s, JiraConnector, "pay", h.config(), h.mapping())
    runtime.sync(engine, "pay")
    with unit_of_work(engine) as s:
        exp_id = store.declare(
            s, name="2-week sprints", hypothesis="Shorter sprints cut the api team's slip.",
            treated="components=A", start=CHANGE.date().isoformat(), measures=["slip"],
            min_effect=1.0, owner="lead@example.com", epic=EPIC).id
    runtime.learn(engine)
    assert runtime.deliver(engine).dead == 0
    with unit_of_work(engine) as s:
        exp = s.get_one(ProcessExperiment, exp_id)
        assert exp.verdict == "worked", exp.statement
        statement = exp.statement
    epic = h.emu.issues[EPIC]
    (body,) = epic.comments.values()
    text = adf_text(body)
    assert text.startswith(f"learnloop process experiment #{exp_id}: 2-week sprints "
                           "(components A from 2025-03-03)")
    assert statement in text
    n = len(h.emu.issues) - 1
    under = [h.emu.issues[f"PAY-{k}"].properties["learnloop"].get("experiments")
             for k in range(n - 2, n + 1)]
    assert under == [[f"#{exp_id} 2-week sprints: worked"]] * 2 + [None]
    runtime.learn(engine)  # the same verdict: the comment is left as it is
    runtime.deliver(engine)
    assert len(epic.comments) == 1
    assert h.unexpected() == [], h.unexpected()[:3]


def test_without_a_named_epic_the_verdict_goes_to_the_treated_issues_parent(
        engine: Engine) -> None:
    """The sync links each issue to its parent (Jira's `parent` field), so a declaration
    that names no epic still finds where the treated team's work is told."""
    h = JiraHarness(n=1)
    h.emu.admin = True
    _seed(h, parent=True)
    with unit_of_work(engine) as s:
        add_connection(s, JiraConnector, "pay", h.config(), h.mapping())
    runtime.sync(engine, "pay")
    with unit_of_work(engine) as s:
        links = s.scalars(select(ItemLink).where(ItemLink.relation == "parent")).all()
        assert len(links) == len(h.emu.issues) - 1
        assert {lk.to_external_id for lk in links} == {EPIC}
        assert all(lk.to_item_id is not None for lk in links)  # the epic is an item too
        exp_id = store.declare(
            s, name="2-week sprints", hypothesis="Shorter sprints cut the api team's slip.",
            treated="components=A", start=CHANGE.date().isoformat(), measures=["slip"],
            min_effect=1.0, owner="lead@example.com").id
    runtime.learn(engine)
    assert runtime.deliver(engine).dead == 0
    (body,) = h.emu.issues[EPIC].comments.values()
    assert adf_text(body).startswith(f"learnloop process experiment #{exp_id}: 2-week sprints")
    # An issue taken out of the epic in Jira loses its stored link on the next sync; an
    # issue moved to another epic points there.
    moved, other = h.emu.issues["PAY-1"], h.emu.issues["PAY-2"]
    del moved.fields["parent"]
    other.fields["parent"] = {"id": "10901", "key": "PAY-901", "fields": {"summary": "Other"}}
    h.emu.touch(moved)
    h.emu.touch(other)
    runtime.sync(engine, "pay")
    with unit_of_work(engine) as s:
        now = {lk.from_external_id: lk.to_external_id
               for lk in s.scalars(select(ItemLink).where(ItemLink.relation == "parent"))}
    assert "PAY-1" not in now and now["PAY-2"] == "PAY-901"
    assert len(now) == len(h.emu.issues) - 2 and now["PAY-3"] == EPIC
    assert h.unexpected() == [], h.unexpected()[:3]
