"""Issues in the Jira emulator, reached through the real `jira` and `atlassian` clients."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from core.contract import COMMENT, FIELDS, LINK, PROPERTY, TEMPLATE
from core.testing import TEMPLATE_TASKS
from tests.emulators.jira.server import JiraEmulator, jira_time

TEMPLATE_KEY = "TPL-1"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@functools.cache
def emulator() -> JiraEmulator:
    """One emulator per test session; each harness resets it."""
    emu = JiraEmulator()
    emu.start()
    return emu


def status(name: str, category: str) -> dict[str, Any]:
    return {"name": name, "statusCategory": {"key": category}}


def seed(emu: JiraEmulator, n: int = 20, histories: int = 2) -> None:
    """`n` issues of project PAY: 3 in 4 done, with due-date moves and status changes."""
    for i in range(1, n + 1):
        done = i % 4 != 0
        kind = "Bug" if i % 3 == 0 else "Story"
        est = (i % 5 + 1) * 3600
        spent = est * (2 if kind == "Bug" else 1) if done else None
        hist = []
        for h in range(histories):
            hist.append({"id": str(i * 1000 + h), "created": jira_time(T0 + dt.timedelta(hours=h)),
                         "author": {"accountId": "dev-1"},
                         "items": [{"field": "duedate", "fieldtype": "jira",
                                    "fromString": "2025-03-10", "toString": "2025-03-12"}]})
        hist.append({"id": str(i * 1000 + 999), "created": jira_time(T0 + dt.timedelta(days=1)),
                     "author": {"accountId": "dev-1"},
                     "items": [{"field": "status", "fieldtype": "jira", "fromString": "To Do",
                                "toString": "In Progress"}]})
        emu.add_issue(f"PAY-{i}", {
            "summary": f"Task {i}", "issuetype": {"name": kind}, "project": {"key": "PAY"},
            "status": status("Done", "done") if done else status("In Progress", "indeterminate"),
            "duedate": "2025-03-12", "timeoriginalestimate": est, "timespent": spent,
            "resolutiondate": jira_time(T0 + dt.timedelta(days=3)) if done else None,
            "created": jira_time(T0 - dt.timedelta(days=1)), "components": [{"name": "api"}],
            "labels": [], "priority": {"name": "Medium"}, "assignee": {"accountId": "dev-1",
                                                                        "displayName": "Dev"},
        }, hist, updated=T0 + dt.timedelta(minutes=i))


class JiraHarness:
    """A fresh emulated site with twenty issues."""

    sdk_modules = ("jira", "atlassian", "requests_oauthlib")

    def __init__(self, tmp_path: Path | None = None, n: int = 20) -> None:
        self.emu = emulator()
        self.emu.issues.clear()
        self.emu.fields = [f for f in self.emu.fields if not f["custom"]]
        self.emu.on_screen.clear()
        self.emu.admin, self.emu.throttle, self.emu.fail_5xx = False, 0, 0
        self.emu.write_limit, self.emu.delay = None, 0.0
        self.emu.unstall.set()  # release a request a failed test left stalled
        self.emu.stall_after, self.emu.stall_seen = None, 0
        self.emu.stalled.clear()
        self.emu.unstall.clear()
        self.emu.echo_status, self.emu.echo_server_info = 0, False
        self.emu.echo_methods.clear()
        self.emu.writes.clear()
        self.emu.unexpected.clear()
        self.emu.spec_errors.clear()
        self.emu.webhooks.clear()
        self.emu.deliveries.clear()
        seed(self.emu, n)

    def config(self) -> dict[str, Any]:
        return {"url": self.emu.base, "email": "bot@example.com",
                "api_token": "emu-api-token-1234", "jql": "project = PAY"}

    def mapping(self) -> dict[str, Any]:
        return {"segments": []}

    def targets(self, surface: str = FIELDS) -> list[str]:
        """Issues of PAY for item surfaces; a template issue of project TPL (outside the
        connection's JQL) with its tasks as children, seeded on first use, for templates."""
        if surface == TEMPLATE:
            if TEMPLATE_KEY not in self.emu.issues:
                self.emu.add_issue(TEMPLATE_KEY, {
                    "summary": "Bug-fix template", "project": {"key": "TPL"},
                    "issuetype": {"name": "Epic"}, "status": status("Open", "new")})
                for n, (name, hours) in enumerate(TEMPLATE_TASKS, 2):
                    self.emu.add_issue(f"TPL-{n}", {
                        "summary": name, "parent": {"key": TEMPLATE_KEY},
                        "project": {"key": "TPL"}, "timeoriginalestimate": int(hours * 3600),
                        "issuetype": {"name": "Sub-task"}, "status": status("Open", "new")})
            return [TEMPLATE_KEY]
        return ["PAY-1", "PAY-4", "PAY-20"]

    def _ours(self, name: str) -> list[str]:
        return [f["id"] for f in self.emu.fields if f["custom"] and f["name"] == name]

    def count(self, target: str, surface: str) -> int:
        """From the emulated site: values in fields named like learnloop's P80 field (a
        second field counts too), comments on the issue, learnloop properties, remote links."""
        issue = self.emu.issues[target]
        if surface == FIELDS:
            return sum(1 for fid in self._ours("learnloop Forecast P80")
                       if issue.fields.get(fid) is not None)
        if surface in (COMMENT, TEMPLATE):
            return len(issue.comments)
        if surface == PROPERTY:
            return sum(1 for k in issue.properties if k.startswith("learnloop"))
        if surface == LINK:
            return len(issue.links)
        raise ValueError(f"the Jira harness does not count {surface}")

    def read_back(self, target: str, surface: str) -> str:
        """The text of what learnloop wrote on the issue."""
        issue = self.emu.issues[target]
        if surface == FIELDS:
            return " | ".join(str(issue.fields.get(fid)) for fid in
                              self._ours("learnloop Learning insight"))
        if surface in (COMMENT, TEMPLATE):
            return " | ".join(adf_text(body) for body in issue.comments.values())
        if surface == PROPERTY:
            return json.dumps(issue.properties)
        return json.dumps(issue.links)

    def unexpected(self) -> list[str]:
        """Unknown routes, parameters and body fields, and answers off Atlassian's spec."""
        return [*self.emu.unexpected, *self.emu.spec_errors]


def adf_text(node: Any) -> str:
    """The text of an Atlassian Document Format document."""
    if isinstance(node, dict):
        return node.get("text", "") + "".join(adf_text(c) for c in node.get("content", []))
    return str(node)
