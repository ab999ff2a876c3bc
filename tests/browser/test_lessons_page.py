"""The lessons page in headless Chromium: a lesson entered through the form, then shown with
its verdict and evidence once a learning run has tested it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from core.learning.run import run_learning
from tests.core.learning_data import load
from tests.core.lessons_data import work
from tests.webapp.accounts_helpers import PASSWORD, people
from tests.webapp.server import LiveServer


def test_a_lesson_is_entered_and_shown_with_its_verdict_and_evidence(
        engine: Engine, page: Any) -> None:
    people(engine, "template_owner")
    with LiveServer(engine) as url:
        page.goto(url + "/login")
        page.fill("input[name=email]", "template_owner@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.click("nav >> text=Lessons")
        assert page.url.endswith("/lessons")
        page.fill("#add-lesson textarea[name=words]", "We always underestimate integration work")
        page.fill("#add-lesson input[name=predicts]", "component=integration is hard")
        page.click("#add-lesson button[type=submit]")
        assert "names no multiplier" in page.locator(".flash.err").inner_text()
        page.fill("#add-lesson textarea[name=words]", "We always underestimate integration work")
        page.fill("#add-lesson input[name=predicts]", "component=integration takes 1.5x")
        page.fill("#add-lesson input[name=behaviour]", "plan 1.5x for integration tasks")
        page.fill("#add-lesson input[name=date]", "2026-03-02")
        page.click("#add-lesson button[type=submit]")
        assert "the next learning run tests it" in page.locator("p.flash").inner_text()
        assert page.locator("#lesson-status").inner_text() == "untested"

        load(engine, work())
        run_learning(engine)
        page.goto(url + "/lessons")
        row = page.locator("#lesson-list tbody tr").first
        assert row.locator(".pill.verdict").inner_text() == "holds"
        text = row.inner_text()
        assert "failed again in 4 of the 5 projects since" in text
        assert "n=" in text and "90% interval" in text and "held for" in text
        row.locator("a").first.click()
        assert page.locator("#lesson-status").inner_text() == "holds"
        table = page.locator("#lesson-recurrence").inner_text()
        assert "P5" in table and table.count("yes") == 4
        assert "proposal #" in page.locator("#lesson-verdict").inner_text()
        page.click("#lesson-verdict a[href^='/proposals/']")
        assert "/proposals/" in page.url and "Lesson #" in page.content()
