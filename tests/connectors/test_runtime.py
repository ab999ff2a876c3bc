"""The runtime's connector cache: one connector per connection, rebuilt when its setup changes."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.jira import JiraConnector
from core import secrets
from core.connections import add_connection
from core.model import Connection
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness


def _conn(engine: Engine) -> Connection:
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        s.expunge(conn)
        return conn


def test_one_connector_per_connection_until_its_setup_changes(engine: Engine) -> None:
    h = JiraHarness(n=1)
    with unit_of_work(engine) as s:
        add_connection(s, JiraConnector, "pay", h.config(), h.mapping())
    cache = runtime.connectors(engine)
    first = cache.get(_conn(engine))
    assert cache.get(_conn(engine)) is first and cache.builds == 1
    assert runtime.connector_for(_conn(engine), engine) is first
    assert runtime.connector_for(_conn(engine)) is not first  # no engine: a new instance

    changes = (
        lambda c: setattr(c, "mapping", {"segments": ["labels"]}),
        lambda c: setattr(c, "config", {**c.config, "jql": "project = OPS"}),
        lambda c: setattr(c, "secrets", secrets.encrypt({"api_token": "another-token-5678"})),
        lambda c: setattr(c, "scope", {"projects": ["OPS"]}),
    )
    seen = [first]
    for change in changes:
        with unit_of_work(engine) as s:
            change(s.scalars(select(Connection)).one())
        rebuilt = cache.get(_conn(engine))
        assert all(rebuilt is not old for old in seen)
        assert cache.get(_conn(engine)) is rebuilt
        seen.append(rebuilt)
    assert cache.builds == 5
    assert isinstance(seen[-1], JiraConnector) and seen[-1].mapping == {"segments": ["labels"]}
    assert seen[-1].config.api_token.get_secret_value() == "another-token-5678"

    cache.forget(_conn(engine).id)
    assert cache.get(_conn(engine)) is not seen[-1] and cache.builds == 6


def test_the_cache_is_per_store_and_safe_across_threads(engine: Engine, tmp_path: Path) -> None:
    h = JiraHarness(n=1)
    with unit_of_work(engine) as s:
        add_connection(s, JiraConnector, "pay", h.config(), h.mapping())
    conn = _conn(engine)
    got: list[object] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        got.append(runtime.connectors(engine).get(conn))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert runtime.connectors(engine).builds == 1
    from core.store import open_store

    other = open_store(f"sqlite:///{tmp_path}/other.db")
    try:
        assert runtime.connectors(other) is not runtime.connectors(engine)
        assert runtime.connectors(other).get(conn) is not got[0]
    finally:
        other.dispose()
