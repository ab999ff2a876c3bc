"""/api/docs in a real Chromium with the network closed: Swagger UI comes from the
swagger-ui-bundle package through the app itself, under its own Content-Security-Policy."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sqlalchemy.engine import Engine

from tests.webapp.server import LiveServer


def test_api_docs_list_the_operations_offline(engine: Engine, page: Any) -> None:
    blocked: list[str] = []
    refused: list[str] = []

    def only_localhost(route: Any) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_localhost)
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    with LiveServer(engine) as url:
        page.goto(url + "/api/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/connections" in p for p in paths), paths
        assert len(paths) >= 10
        assert page.locator(".info .title").inner_text().startswith("learnloop")
    assert blocked == []  # nothing but the app itself was asked for
    assert refused == []  # and the app's CSP refused nothing
