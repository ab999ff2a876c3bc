"""Installing a tool as an admin: labels from the config model, URLs validated, tested before it
is saved, errors in plain words with the raw detail folded away, the run history as a table."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.jira.config import JiraConfig
from core.model import Connection, JobRun
from core.store import unit_of_work
from tests.webapp.accounts_helpers import form_token, people, signed_in
from webapp.forms import fields_of, label_of, number_text
from webapp.plain import plain

JIRA = {"email": "bot@example.com", "api_token": "tok-5ecret-value", "jql": ""}


def _connections(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Connection)) or 0)


def test_labels_and_defaults_read_as_a_person_writes_them() -> None:
    labels = {f.name: f.label for f in fields_of(JiraConfig)}
    assert labels["url"] == "URL" and labels["jql"] == "JQL" and labels["api_token"] == "API token"
    assert labels["hours_per_estimate_unit"] == "Hours per estimate unit"
    values = {f.name: f.value for f in fields_of(JiraConfig)}
    assert values["hours_per_estimate_unit"] == "1/3600"  # not 0.0002777777777777778
    assert number_text(0.25) == "0.25" and number_text(10.0) == "10"
    assert label_of(JiraConfig, "timeout_seconds") == "Timeout seconds"


def test_install_form_shows_descriptions_and_no_generated_labels(engine: Engine) -> None:
    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    page = client.get("/admin/connections/new?kind=jira").text
    assert "The Jira site, e.g. https://yourteam.atlassian.net." in page
    for generated in (">Url", ">Jql", "Api Token", "0.0002777777777777778"):
        assert generated not in page, generated


def test_a_url_that_is_not_one_is_refused_in_plain_words_and_nothing_saved(engine: Engine) -> None:
    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    token = form_token(client.get("/admin/connections/new?kind=jira").text)
    r = client.post("/admin/connections", data={
        "csrf_token": token, "kind": "jira", "name": "bad jira", "url": "not a url at all",
        **JIRA})
    assert r.status_code == 422
    assert "URL must be a web address such as https://yourteam.atlassian.net" in r.text
    assert "Failed to parse" not in r.text and "Traceback" not in r.text
    assert _connections(engine) == 0


def test_the_api_refuses_a_url_that_is_not_one(engine: Engine) -> None:
    from tests.webapp.accounts_helpers import bearer

    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    r = client.post("/api/connections", headers=bearer(engine, "admin@example.com"), json={
        "kind": "jira", "name": "bad", "config": {"url": "htp:/nowhere", **JIRA}})
    assert r.status_code == 422, r.text
    assert "must be a web address" in r.json()["detail"]
    assert _connections(engine) == 0


def test_an_unreachable_site_is_tested_before_saving_and_explained(engine: Engine) -> None:
    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    token = form_token(client.get("/admin/connections/new?kind=jira").text)
    form = {"csrf_token": token, "kind": "jira", "name": "far jira",
            "url": "https://example.invalid", **JIRA, "timeout_seconds": "5"}
    r = client.post("/admin/connections", data=form)
    assert r.status_code == 422
    headline = re.search(r'id="install-problem"[^>]*><span class="headline">([^<]+)<', r.text)
    assert headline, r.text[-3000:]
    text = headline.group(1)
    assert "was not saved" in text and "example.invalid could not be found" in text, text
    for raw in ("HTTPSConnectionPool", "NameResolutionError", "Max retries"):
        assert raw not in text
    assert "<details><summary>Technical detail</summary>" in r.text  # the raw text, folded
    assert JIRA["api_token"] not in r.text
    assert 'id="untested"' in r.text  # may be saved untested instead
    assert _connections(engine) == 0

    r = client.post("/admin/connections", data={**form, "untested": "on"})
    assert r.status_code == 200 and "saved untested" in r.text
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        assert conn.health == "untested"


def test_plain_words_for_known_errors() -> None:
    raw = ("Jira: ConnectionError: HTTPSConnectionPool(host='example.invalid', port=443): Max "
           "retries exceeded with url: /rest/api/2/myself (Caused by NameResolutionError(...))")
    p = plain(raw)
    assert p.headline == "Jira: example.invalid could not be found: check the address is " \
                         "spelled right and that this machine can reach it"
    assert p.detail == raw
    assert "not a valid web address" in plain(
        "could not read the tool's fields: Failed to parse: Host 'not a url' contains "
        "invalid character").headline
    assert plain("Jira rejected the email/API token (HTTP 401)").detail is None  # already plain


def test_run_history_is_a_table_in_words(engine: Engine) -> None:
    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    with unit_of_work(engine) as s:
        conn = Connection(name="sheet", kind="file", config={"path": "/tmp/x.csv"}, secrets="",
                          mapping={})
        s.add(conn)
        s.flush()
        s.add(JobRun(job="sync", connection_id=conn.id, status="ok", stats={
            "connection": "sheet", "created": 12, "updated": 3, "unchanged": 0, "deleted": 0,
            "events": 0, "quarantined": 2, "host": "h", "pid": 1}))
        s.add(JobRun(job="sync", connection_id=conn.id, status="error", stats={},
                     error="ConnectionError: HTTPSConnectionPool(host='x.invalid', port=443)"))
        conn_id = conn.id
    page = client.get(f"/admin/connections/{conn_id}").text
    runs = page[page.index('id="runs"'):page.index("</table>", page.index('id="runs"'))]
    assert "12 new, 3 updated, 2 quarantined" in runs
    assert "Could not reach x.invalid" in runs
    assert "{" not in runs and "'created'" not in runs  # no Python repr


def test_error_page_back_link_works_under_the_csp(engine: Engine) -> None:
    people(engine, "admin")
    client = signed_in(engine, "admin@example.com")
    r = client.get("/admin/connections/999", headers={"referer": "http://testserver/items"})
    assert r.status_code == 404
    assert "javascript:" not in r.text
    assert 'href="/items" id="back"' in r.text
    r = client.get("/admin/connections/999", headers={"referer": "https://evil.example/x"})
    assert 'href="/" id="back"' in r.text
