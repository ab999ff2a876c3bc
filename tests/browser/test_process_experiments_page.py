"""The process experiments page in a real Chromium: a template owner declares a change with
the form; after a learning run the page shows its verdict with the evidence behind it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from core.process import evaluate
from core.store import unit_of_work
from tests.core.learning_data import load
from tests.core.process_data import CHANGE, records, teams
from tests.webapp.accounts_helpers import PASSWORD, people
from tests.webapp.server import LiveServer


def test_declare_then_read_the_verdict_and_evidence(engine: Engine, page: Any) -> None:
    people(engine, "template_owner")
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    with LiveServer(engine) as url:
        page.goto(url + "/login")
        page.fill("input[name=email]", "template_owner@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.click("nav >> text=Process experiments")
        page.wait_for_url("**/process-experiments")
        form = page.locator("#declare form")
        form.locator("input[name=name]").fill("2-week sprints")
        form.locator("textarea[name=hypothesis]").fill("Shorter sprints cut team A's slip")
        form.locator("input[name=treated]").fill("team=A")
        form.locator("input[name=start]").fill(CHANGE.date().isoformat())
        form.locator("select[name=measure]").select_option("slip")
        form.locator("input[name=min_effect]").fill("1")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/process-experiments/*")
        detail = page.url.split("?")[0]
        assert page.locator("#verdict").inner_text() == "not judged yet"
        with unit_of_work(engine) as s:
            evaluate.evaluate_all(s, None, permutations=199)
        page.reload()
        assert page.locator("#verdict").inner_text() == "worked"
        statement = page.locator("#statement").inner_text()
        assert statement.startswith("2-week sprints cut team A's slip against the committed "
                                    "plan by ")
        assert "90% interval" in statement and "the pre-period trends agree" in statement
        evidence = page.locator("#evidence-slip")
        rows = evidence.locator("table.counts tbody tr").all_inner_texts()
        assert rows[0].startswith("Treated") and "\tA" in rows[0]
        assert rows[1].startswith("Comparison") and "B, C, D, E, F" in rows[1]
        assert "90% interval" in evidence.locator("dd.effect").inner_text()
        assert evidence.locator("dd.trend").inner_text().startswith("agree (p=")
        assert evidence.locator("table.placebos tbody tr").count() == 3
        page.click("text=All process experiments")
        row = page.locator("#process-list tbody tr").first
        assert "worked" in row.inner_text() and "proposal #" in row.inner_text()
        assert "n=" in row.locator("td").nth(3).inner_text()
        page.set_viewport_size({"width": 390, "height": 800})  # a phone: nothing wider
        for path in (url + "/process-experiments", detail):
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
