"""The demo in headless Chromium as its template owner: accept a proposal with an edited
value, see the edited value, see it become applied once the outbox delivers (the step the
demo's worker runs), and find the decision in the audit trail and in /activity. Then every
page, as each role, at a phone's 390 px: nothing wider than the screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from connectors import runtime
from core.model import Proposal
from core.store import unit_of_work
from tests.webapp.accounts_helpers import login
from tests.webapp.server import LiveServer
from tests.webapp.ux_loop_demo import build_demo, crawl
from webapp.app import create_app
from webapp.demo import DEMO_PASSWORD, DEMO_PEOPLE
from webapp.review_data import fmt

OWNER = "owner@demo.learnloop"
ADMIN = "admin@demo.learnloop"
PHONE = 390


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    with pytest.MonkeyPatch.context() as mp:
        return build_demo(tmp_path_factory.mktemp("ux-demo-browser"), mp)


def _sign_in(page: Any, url: str, email: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    assert "/login" not in page.url, page.content()[:500]


def test_owner_accepts_an_edited_proposal_and_sees_it_applied(demo: Engine, page: Any,
                                                              browser: Any) -> None:
    with unit_of_work(demo) as s:  # the global rule changes the template's untouched task
        prop = s.scalars(select(Proposal).where(Proposal.dedupe_key == "effort:all",
                                                Proposal.status == "pending")).one()
        prop_id, new = prop.id, dict(prop.change["new"])
    edited = round(new["p80"] - 0.05, 2)
    assert new["p50"] <= edited <= new["p90"] and edited != new["p80"]
    with LiveServer(demo) as url:
        _sign_in(page, url, OWNER)
        page.goto(url + f"/proposals/{prop_id}")
        assert page.locator("#story").inner_text().startswith("The typical one of the items")
        assert "P80" in page.locator("#story").inner_text()
        page.fill("input[name=param_p80]", str(edited))
        page.fill("form[action$='/accept'] textarea[name=note]", "a little less padding")
        page.click("#accept")
        assert "accepted" in page.locator("p.flash").first.inner_text()
        assert page.locator("#status").inner_text() == "accepted"
        shown = page.locator("#accepted-values").inner_text()
        assert f"p80 {edited:g}" in shown and f"{fmt(new['p80'])} → {edited:g}" in shown, shown
        assert f'"p80": {edited:g}' in page.locator("pre.diff").inner_text()  # not the old one
        assert "queued" in page.locator("#progress").inner_text()
        assert page.locator("meta[http-equiv=refresh]").count() == 1  # follows the write-back

        report = runtime.deliver(demo)  # what `learnloop worker` runs on its next tick
        assert report.delivered >= 1 and report.dead == 0
        page.reload()
        assert page.locator("#status").inner_text() == "applied"
        assert page.locator("meta[http-equiv=refresh]").count() == 0
        assert page.locator(".write-status").first.inner_text() == "delivered"
        trail = page.locator("#trail").inner_text()
        assert OWNER in trail and "accepted the proposal" in trail and "less padding" in trail

        admin = browser.new_context().new_page()
        _sign_in(admin, url, ADMIN)
        admin.goto(url + "/activity")
        row = admin.locator("tr", has_text=f"proposal {prop_id}").first.inner_text()
        assert OWNER in row and "accepted the proposal" in row, row
        admin.context.close()
    with unit_of_work(demo) as s:
        assert s.get_one(Proposal, prop_id).change["new"]["p80"] == edited


def _pages_of(demo: Engine, email: str) -> list[str]:
    client = TestClient(create_app(demo))
    assert login(client, email, DEMO_PASSWORD) == 303

    def get(path: str) -> tuple[int, str, str]:
        r = client.get(path, follow_redirects=False)
        return r.status_code, r.headers.get("content-type", ""), r.text

    walked, _ = crawl(get)
    return [p for p in walked if not p.startswith("/api")]


@pytest.mark.parametrize(("email", "role"), DEMO_PEOPLE)
def test_no_page_is_wider_than_a_phone(demo: Engine, browser: Any, email: str,
                                       role: str) -> None:
    paths = _pages_of(demo, email)
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    wide = []
    with LiveServer(demo) as url:
        _sign_in(page, url, email)
        for path in paths:
            page.goto(url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE:
                wide.append(f"{path}: {width} px")
    context.close()
    assert wide == [], f"{role}: wider than {PHONE} px:\n" + "\n".join(wide)


def test_demo_template_file_holds_the_applied_version(demo: Engine) -> None:
    home = Path(str(demo.url.database)).parent
    table = (home / "plan.learnloop-templates.csv").read_text(encoding="utf-8-sig")
    assert table.splitlines()[0].startswith("Template,Version")
    assert "PAY bug fix" in table and "accepted by" in table
