"""The JSON API fuzzed against its own OpenAPI document (schemathesis): never a 500.

Each operation gets LEARNLOOP_FUZZ_EXAMPLES cases (100 by default, derandomized so CI is
repeatable), valid ones and ones that break the schema (ids past their column's range, wrong
types), the way an outsider would try.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy.engine import Engine

from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness
from webapp import security, worker
from webapp.app import create_app

AUTH: dict[str, str] = {}
EXAMPLES = int(os.environ.get("LEARNLOOP_FUZZ_EXAMPLES", "100"))


@pytest.fixture
def fuzzed_api(engine: Engine) -> Any:
    h = JiraHarness(n=40)
    with unit_of_work(engine) as s:
        admin = security.create_user(s, "admin@example.com", "a long enough password", "admin")
        _, secret = security.create_token(s, admin, "fuzz")
    AUTH["Authorization"] = f"Bearer {secret}"
    app = create_app(engine)
    from fastapi.testclient import TestClient

    client = TestClient(app)
    client.post("/api/connections", headers=AUTH, json={
        "kind": "jira", "name": "pay", "config": h.config()})
    client.post("/api/connections/1/sync", headers=AUTH)
    worker.run_worker(engine, once=True)  # the queued sync, as the worker's next tick runs it
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
def test_the_api_never_answers_500(fuzzed_api: Any) -> None:
    failures: list[str] = []
    operations = 0
    for result in fuzzed_api.get_all_operations():
        operation = result.ok()
        operations += 1

        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(headers=AUTH)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} "
                                f"{response.text[:200]}")

        run()
    assert operations >= 25
    assert failures == []
