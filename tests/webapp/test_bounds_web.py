"""The web app's bounds: ids out of every column's range, accepted multipliers, links from data."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Connection, Item, Proposal
from core.store import unit_of_work
from tests.core.learning_data import load, records
from webapp import security
from webapp.app import create_app
from webapp.routes import admin as admin_routes
from webapp.routes import api as api_routes
from webapp.routes import auth as auth_routes
from webapp.routes import checklists, dashboards, review

PASSWORD = "a long enough password"
HUGE = ("18446744073709551617", "9223372036854775808", "2147483648", "3028389510761", "0", "-1")


def _signed_in(engine: Engine) -> tuple[TestClient, dict[str, str]]:
    with unit_of_work(engine) as s:
        admin = security.create_user(s, "admin@example.com", PASSWORD, "admin")
        _, secret = security.create_token(s, admin, "test")
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD,
                                "csrf_token": token.group(1)}, follow_redirects=False)
    return client, {"Authorization": f"Bearer {secret}"}


def test_every_id_out_of_range_answers_422_never_500(engine: Engine) -> None:
    client, auth = _signed_in(engine)
    routers = [m.router for m in (auth_routes, dashboards, review, checklists, admin_routes, api_routes)]
    routes = [r for router in (*routers, checklists.api) for r in router.routes
              if isinstance(r, APIRoute)]
    tried = 0
    for route in routes:
        ints = [p.name for p in route.dependant.path_params if p.field_info.annotation is int]
        for method in sorted(route.methods - {"HEAD"}):
            for value in HUGE if ints else ():
                path = route.path_format
                for name in ints:
                    path = path.replace("{" + name + "}", value)
                path = re.sub(r"\{[^}]+\}", "accept", path)
                r = client.request(method, path, headers=auth, json={})
                assert r.status_code in (404, 422), (method, path, r.status_code, r.text[:200])
                tried += 1
    assert tried >= 18 * len(HUGE)  # every operation that takes an id
    for value in HUGE:
        r = client.get(f"/api/activity?before={value}", headers=auth)
        assert r.status_code == 422, (value, r.text)
    assert client.get("/api/activity?before=2147483647", headers=auth).status_code == 200


def test_accepting_nan_inf_negative_or_huge_multipliers_is_refused(engine: Engine) -> None:
    from core.learning.run import run_learning

    load(engine, records(600, seed=2))
    run_learning(engine, {"list": ["fields"]})
    client, auth = _signed_in(engine)
    with unit_of_work(engine) as s:
        prop_id = s.scalars(select(Proposal.id).where(Proposal.status == "pending")).first()
    for bad in ('{"params": {"p80": NaN}}', '{"params": {"p80": Infinity}}'):
        r = client.post(f"/api/proposals/{prop_id}/accept", headers=auth, content=bad)
        assert r.status_code == 422, r.text
    for params in ({"p50": -5}, {"p80": 1e308}, {"p50": 5, "p80": 2}):
        r = client.post(f"/api/proposals/{prop_id}/accept", headers=auth, json={"params": params})
        assert r.status_code == 422 and "0 < p50 <= p80 <= p90 < 100" in r.json()["detail"], \
            r.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/proposals/{prop_id}").text)
    assert csrf
    for value in ("nan", "inf", "-5", "1e308"):
        r = client.post(f"/proposals/{prop_id}/accept", follow_redirects=False,
                        data={"csrf_token": csrf.group(1), "param_p80": value})
        assert r.status_code == 303 and "err=" in r.headers["location"], value
    with unit_of_work(engine) as s:
        assert s.get_one(Proposal, prop_id).status == "pending"


def test_only_http_links_from_data_are_rendered(engine: Engine) -> None:
    client, _ = _signed_in(engine)
    with unit_of_work(engine) as s:
        conn = Connection(kind="list", name="old")
        s.add(conn)
        s.flush()
        for ext, url in (("A", "javascript:alert(1)"), ("B", " JAVASCRIPT:alert(1)"),
                         ("C", "https://tool.example/C")):
            s.add(Item(connection_id=conn.id, external_id=ext, url=url))  # an older release's rows
    with unit_of_work(engine) as s:
        ids = dict(s.execute(select(Item.external_id, Item.id)).all())
    assert "Open in the tool" not in client.get(f"/items/{ids['A']}").text
    assert "Open in the tool" not in client.get(f"/items/{ids['B']}").text
    page = client.get(f"/items/{ids['C']}").text
    assert 'href="https://tool.example/C"' in page and "Open in the tool" in page
