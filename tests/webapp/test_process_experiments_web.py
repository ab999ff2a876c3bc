"""Process experiments through the CLI (--json), the JSON API and the web pages."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import policy
from core.model import Activity
from core.process import evaluate
from core.store import open_store, unit_of_work
from tests.core.learning_data import load
from tests.core.process_data import CHANGE, records, teams
from tests.webapp.conftest import CliRun
from webapp import security
from webapp.app import create_app

PASSWORD = "a long enough password"


def _judge(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        evaluate.evaluate_all(s, None, permutations=199)


def _client(engine: Engine, role: str) -> tuple[TestClient, str]:
    with unit_of_work(engine) as s:
        security.create_user(s, f"{role}@example.com", PASSWORD, role)
    client = TestClient(create_app(engine))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD,
                                     "csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/process-experiments")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    return client, csrf.group(1)


def _bearer(engine: Engine, role: str) -> dict[str, str]:
    with unit_of_work(engine) as s:
        user = security.create_user(s, f"api-{role}@example.com", PASSWORD, role)
        _, secret = security.create_token(s, user, "test")
    return {"Authorization": f"Bearer {secret}"}


def test_cli_declares_lists_and_shows_with_json(cli: CliRun, use_store: str) -> None:
    engine = open_store(use_store)
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    code, out, err = cli("experiments", "declare", "--name", "2-week sprints",
                         "--treated", "team=A", "--start", CHANGE.date().isoformat(),
                         "--measure", "slip", "--measure", "cycle_time", "--min-effect", "1",
                         "--hypothesis", "Shorter sprints cut team A's slip.", "--owner",
                         "lead@example.com", "--json")
    assert code == 0, err
    declared = json.loads(out)
    assert declared["treated"] == {"team": ["A"]} and declared["status"] == "running"
    _judge(engine)
    code, out, _ = cli("experiments", "list", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["verdict"] == "worked" and row["proposal"]["status"] == "pending"
    assert set(row["evidence"]["measures"]) == {"slip", "cycle_time"}
    code, out, _ = cli("experiments", "show", str(row["id"]))
    assert code == 0 and "2-week sprints cut team A's slip" in out
    assert "permutation interval, " in out and "groups A vs B, C, D, E, F" in out
    code, _, err = cli("experiments", "declare", "--name", "x", "--treated", "team=A",
                       "--start", "soon", "--measure", "slip", "--min-effect", "1",
                       "--hypothesis", "h")
    assert code != 0 and err.strip() == "error: start 'soon' is not a date (use YYYY-MM-DD)"
    code, _, err = cli("experiments", "show", "99", "--json")
    assert code != 0 and "no process experiment #99" in err
    engine.dispose()


def test_api_declares_for_owners_and_shows_the_verdict(engine: Engine) -> None:
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    anon = TestClient(create_app(engine))
    assert anon.get("/api/process-experiments").status_code == 401
    body = {"name": "2-week sprints", "hypothesis": "Shorter sprints cut slip.",
            "treated": {"team": ["A"]}, "start": CHANGE.date().isoformat(),
            "measures": ["slip"], "min_effect": 1.0}
    viewer = _bearer(engine, "viewer")
    r = anon.post("/api/process-experiments", json=body, headers=viewer)
    assert r.status_code == 403
    owner = _bearer(engine, "template_owner")
    r = anon.post("/api/process-experiments", json={**body, "measures": ["speed"]}, headers=owner)
    assert r.status_code == 422 and "unknown measure 'speed'" in r.json()["detail"]
    r = anon.post("/api/process-experiments", json=body, headers=owner)
    assert r.status_code == 201, r.text
    exp_id = r.json()["id"]
    _judge(engine)
    shown = anon.get(f"/api/process-experiments/{exp_id}", headers=viewer).json()
    assert shown["verdict"] == "worked" and shown["owner"] == "api-template_owner@example.com"
    did = shown["evidence"]["measures"]["slip"]["did"]
    assert did["low"] < -3.0 < did["high"] < 0 and did["counts"]["treated_post"] > 30
    listed = anon.get("/api/process-experiments", headers=viewer).json()
    assert [x["id"] for x in listed] == [exp_id]
    stopped = anon.post(f"/api/process-experiments/{exp_id}/stop", headers=owner).json()
    assert stopped["status"] == "stopped" and stopped["verdict"] == "worked"
    assert anon.get("/api/process-experiments/999", headers=viewer).status_code == 404


def test_the_form_declares_and_the_page_shows_verdict_and_evidence(engine: Engine) -> None:
    load(engine, records(teams(7, effect=3.0, per_week=3)))
    client, csrf = _client(engine, "template_owner")
    form = {"csrf_token": csrf, "name": "2-week sprints", "hypothesis": "Shorter sprints.",
            "treated": "team=A", "start": CHANGE.date().isoformat(), "measure": "slip",
            "min_effect": "1", "also": "replanning"}
    bad = client.post("/process-experiments", data={**form, "min_effect": "a lot"})
    assert "minimum effect &#39;a lot&#39;: give a number" in bad.text
    r = client.post("/process-experiments", data=form, follow_redirects=False)
    assert r.status_code == 303
    target = r.headers["location"].split("?")[0]
    _judge(engine)
    page = client.get(target).text
    assert "2-week sprints cut team A&#39;s slip against the committed plan by" in page
    assert 'id="evidence-slip"' in page and 'id="evidence-replanning"' in page
    assert "permutation over groups" in page and "agree (p=" in page
    listing = client.get("/process-experiments").text
    assert "worked" in listing and "proposal #" in listing
    proposal = re.search(r'href="/proposals/(\d+)"', listing)
    assert proposal
    shown = client.get(f"/proposals/{proposal.group(1)}").text
    assert "Extend 2-week sprints to team B, C, D, E and F" in shown
    assert 'name="param_' not in shown  # nothing numeric to edit in a process rule
    r = client.post(f"/proposals/{proposal.group(1)}/accept",
                    data={"csrf_token": csrf, "note": "extend it"}, follow_redirects=False)
    assert r.status_code == 303
    assert "(accepted, policy version 2)" in client.get(target).text
    with unit_of_work(engine) as s:
        assert s.scalars(select(Activity.action).where(
            Activity.subject_type == "process_experiment")).all() == [
            "declared a process experiment"]
        assert "process:1" in policy.active_rules(s)
    viewer, _ = _client(engine, "viewer")
    assert 'id="declare"' not in viewer.get("/process-experiments").text
