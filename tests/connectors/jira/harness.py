"""Issues in the Jira emulator, reached through the real `jira` and `atlassian` clients."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from tests.emulators.jira.server import JiraEmulator, jira_time

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

    def targets(self) -> list[str]:
        return ["PAY-1", "PAY-4", "PAY-20"]

    def count_written(self, target: str) -> int:
        ids = [f["id"] for f in self.emu.fields if f["name"] == "learnloop Forecast P80"]
        assert len(ids) == 1
        return int(self.emu.issues[target].fields.get(ids[0]) is not None)
