"""Every page of the admin's and the experiments' part, as each role: no Python repr, no float
printed with more than four decimals, and every link on it answers 200 or a redirect."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Connection, JobRun
from core.store import unit_of_work
from tests.webapp.accounts_helpers import people, signed_in
from tests.webapp.test_ux_admin_experiments import seed_outreach
from webapp import insight_data

REPR = re.compile(r"\{'|\[\(|<\w+ object at|Traceback|\bNone\b|HTTPSConnectionPool")
LONG_FLOAT = re.compile(r"\d\.\d{5,}")


def _visible(page: str) -> str:
    """The page's text as a person reads it (no markup, no SVG coordinates, no folded detail)."""
    page = re.sub(r"<(script|style|svg|details)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(autouse=True)
def _fresh_page_cache() -> None:
    insight_data._cache.clear()


def test_every_admin_and_experiment_page_as_each_role(engine: Engine, tmp_path: Path) -> None:
    people(engine, "admin", "template_owner", "viewer")
    seed_outreach(engine, tmp_path)
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        conn.last_error = "Jira: ConnectionError: HTTPSConnectionPool(host='x.invalid', port=443)"
        run = JobRun(job="sync_now", connection_id=conn.id, status="error", error=conn.last_error)
        s.add(run)
        s.flush()
        pages = ["/experiments", "/admin/connections", f"/admin/connections/{conn.id}",
                 "/admin/connections/new?kind=jira", "/admin/connections/new?kind=file",
                 f"/admin/jobs/{run.id}", "/admin/users", "/admin/connections/999"]
    for role in ("admin", "template_owner", "viewer"):
        client = signed_in(engine, f"{role}@example.com")
        seen: set[str] = set()
        for path in pages:
            r = client.get(path)
            assert r.status_code in (200, 403, 404), (role, path, r.status_code)
            text = _visible(r.text)
            assert not REPR.search(text), (role, path, REPR.search(text))
            assert not LONG_FLOAT.search(text), (role, path, LONG_FLOAT.search(text))
            for link in set(re.findall(r'href="(/[^"]*)"', r.text)) - seen:
                seen.add(link)
                answer = client.get(html.unescape(link), follow_redirects=False)
                assert answer.status_code < 400, (role, path, link, answer.status_code)
