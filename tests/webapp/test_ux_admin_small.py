"""The smaller points: the least-privileged role by default, a reason to reject, a favicon,
forecasts stamped as of their run, the calibration chart's series in their own colours."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import registry, runtime
from core.connections import add_connection
from core.model import Forecast, Proposal
from core.store import unit_of_work
from tests.webapp.accounts_helpers import bearer, form_token, people, signed_in
from webapp import charts
from webapp.demo import MAPPING
from webapp.demo_data import generate, write_snapshot
from webapp.routes.dashboards import overview_charts


def test_add_a_person_defaults_to_viewer(engine: Engine) -> None:
    people(engine, "admin")
    page = signed_in(engine, "admin@example.com").get("/admin/users").text
    form = page[page.index("Add a person"):]
    assert re.search(r'<option value="viewer" selected>', form)
    assert not re.search(r'<option value="admin" selected>', form)


def test_favicon_is_served_and_linked(engine: Engine) -> None:
    people(engine, "viewer")
    client = signed_in(engine, "viewer@example.com")
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/").text
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def _learned(engine: Engine, folder: Path, as_of: dt.datetime) -> None:
    plan = folder / "plan.csv"
    write_snapshot(generate(400, as_of.date()), as_of.date(), plan)
    with unit_of_work(engine) as s:
        add_connection(s, registry.get("file"), "plan", {"path": str(plan), "dayfirst": True},
                       MAPPING)
    runtime.sync(engine, "plan")
    runtime.learn(engine, as_of=as_of)


def test_forecasts_of_a_run_as_of_a_past_date_are_stamped_then(
        engine: Engine, tmp_path: Path) -> None:
    then = dt.datetime.combine(dt.date.today() - dt.timedelta(days=60), dt.time(18),
                               tzinfo=dt.UTC)
    _learned(engine, tmp_path, then)
    with unit_of_work(engine) as s:
        stamps = set(s.scalars(select(Forecast.issued_at)))
        pending = s.scalars(select(Proposal.id).where(Proposal.status == "pending")).first()
    assert stamps, "the run issued no forecasts"
    assert {t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t for t in stamps} == {then}

    # Rejecting needs a reason (the web form and the API); the proposal stays pending.
    assert pending is not None, "the run proposed nothing"
    people(engine, "template_owner")
    client = signed_in(engine, "template_owner@example.com")
    token = form_token(client.get(f"/proposals/{pending}").text)
    r = client.post(f"/proposals/{pending}/reject", data={"csrf_token": token, "note": " "})
    assert "say why you reject it" in r.text
    r = client.post(f"/api/proposals/{pending}/reject", json={},
                    headers=bearer(engine, "template_owner@example.com"))
    assert r.status_code == 422 and "say why you reject it" in r.json()["detail"]
    with unit_of_work(engine) as s:
        assert s.get_one(Proposal, pending).status == "pending"
    r = client.post(f"/api/proposals/{pending}/reject", json={"note": "too early"},
                    headers=bearer(engine, "template_owner@example.com"))
    assert r.status_code == 200 and r.json()["status"] == "rejected"


def test_calibration_series_have_distinct_colours() -> None:
    cycle = {"label": "2026-01", **{lvl: {"coverage": c, "interval_90": [c - 0.1, c + 0.1],
                                          "n": 30} for lvl, c in
                                    (("p50", 0.45), ("p80", 0.7), ("p90", 0.85))}}
    data = {"scatter": {"points": [], "labels": [], "n_total": 0, "unit": "hours"},
            "spread": {"groups": [], "dimension": "team"},
            "calibration": {"cycles": [cycle, {**cycle, "label": "2026-02"}]},
            "gap": {"cycles": []}}
    svg = overview_charts(data)["calibration"]
    fills = {k: set(re.findall(rf'<circle class="pt s{k}"[^>]*fill="([^"]+)"', svg))
             for k in range(3)}
    assert [len(f) for f in fills.values()] == [1, 1, 1]
    assert len(set.union(*fills.values())) == 3
    # and the stylesheet no longer paints every point the accent blue
    css = (Path(charts.__file__).parent / "static" / "app.css").read_text()
    assert "svg .pt { fill:var(--accent); }" not in css
