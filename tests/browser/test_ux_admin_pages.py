"""The admin's and the experiment pages in a real Chromium: installing Jira with a bad URL
answers in plain words and saves nothing; error pages' Back link works under the CSP; the
forest plot's text fits at its normal size; nothing overflows a 390 px phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.model import Connection, JobRun
from core.store import unit_of_work
from tests.webapp.accounts_helpers import PASSWORD, people
from tests.webapp.server import LiveServer
from tests.webapp.test_ux_admin_experiments import seed_outreach

ADMIN = "admin@example.com"


def _sign_in(page: Any, url: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _connections(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Connection)) or 0)


def test_installing_jira_with_a_bad_url_answers_plainly_and_saves_nothing(
        engine: Engine, page: Any) -> None:
    people(engine, "admin")
    with LiveServer(engine) as url:
        _sign_in(page, url)
        page.goto(url + "/admin/connections")
        page.click("#install-jira")
        labels = page.locator("form label").all_inner_texts()
        assert any(t.startswith("URL *") for t in labels), labels
        assert not any(t.startswith(("Url", "Jql", "Api Token")) for t in labels), labels
        page.fill("input[name=name]", "payments jira")
        page.fill("input[name=url]", "not a url at all")
        page.fill("input[name=email]", "bot@example.com")
        page.fill("input[name=api_token]", "tok-secret-123")
        page.click("#install")
        problem = page.locator("#install-problem .headline").inner_text()
        assert problem == ("URL must be a web address such as https://yourteam.atlassian.net; "
                           "'not a url at all' is not one")
        assert "Failed to parse" not in page.content()
        assert _connections(engine) == 0

        page.fill("input[name=url]", "https://example.invalid")
        page.fill("input[name=api_token]", "tok-secret-123")
        page.click("#install")
        headline = page.locator("#install-problem .headline").inner_text()
        assert "example.invalid could not be found" in headline and "not saved" in headline
        assert not page.locator("#install-problem pre.raw").is_visible()  # folded away
        page.click("#install-problem summary")
        assert "example.invalid" in page.locator("#install-problem pre.raw").inner_text()
        assert "tok-secret-123" not in page.content()
        assert _connections(engine) == 0


def test_error_page_back_link_goes_back(engine: Engine, page: Any) -> None:
    people(engine, "admin")
    with LiveServer(engine) as url:
        _sign_in(page, url)
        page.goto(url + "/admin/connections")
        page.evaluate("location.href = '/admin/connections/4242'")  # a link to a gone page
        page.wait_for_url("**/4242")
        assert page.locator("#error-message").inner_text().lower().startswith("there is no connection")
        page.click("#back")
        page.wait_for_url("**/admin/connections")


def _seed(engine: Engine, folder: Path) -> int:
    people(engine, "admin")
    seed_outreach(engine, folder)
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        conn.last_error = ("Jira: ConnectionError: HTTPSConnectionPool(host='example.invalid', "
                           "port=443): Max retries exceeded with url: /rest/api/2/serverInfo?"
                           "expand=aVeryLongQueryStringThatWouldOverflowItsBoxOnAPhoneScreen"
                           "WithoutBreaking (Caused by NameResolutionError)")
        run = JobRun(job="sync_now", connection_id=conn.id, status="error",
                     error=conn.last_error)
        s.add(run)
        s.flush()
        return run.id


def test_forest_plot_text_fits_at_its_normal_size(engine: Engine, page: Any,
                                                   tmp_path: Path) -> None:
    _seed(engine, tmp_path)
    page.set_viewport_size({"width": 1400, "height": 900})
    with LiveServer(engine) as url:
        _sign_in(page, url)
        page.goto(url + "/experiments")
        svg = page.locator("svg[aria-label^='Outbound Q1: lift per segment']")
        found = svg.evaluate("""s => {
            const vb = s.viewBox.baseVal, box = s.getBoundingClientRect();
            const out = [...s.querySelectorAll('text')].filter(t => {
                const b = t.getBBox();
                return b.x < 0 || b.x + b.width > vb.width + 0.5;
            }).map(t => t.textContent);
            return {scale: box.width / vb.width, out};
        }""")
        assert found["out"] == [], found  # every label and value inside the chart
        assert 0.9 <= found["scale"] <= 1.01, found  # drawn at its size, not stretched


def test_pages_do_not_overflow_a_phone(engine: Engine, page: Any, tmp_path: Path) -> None:
    job = _seed(engine, tmp_path)
    page.set_viewport_size({"width": 390, "height": 844})
    with LiveServer(engine) as url:
        _sign_in(page, url)
        with unit_of_work(engine) as s:
            conn_id = s.scalars(select(Connection.id)).one()
        wide = {}
        for path in ("/", "/experiments", "/admin/connections", f"/admin/connections/{conn_id}",
                     "/admin/connections/new?kind=jira", f"/admin/jobs/{job}", "/admin/users",
                     "/admin/connections/4242", "/activity", "/items", "/findings",
                     "/proposals", "/audit", "/checklists", "/account/tokens"):
            page.goto(url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                wide[path] = width
        assert wide == {}, wide
