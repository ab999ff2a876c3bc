"""Request bodies are capped before authentication: a 413, read incrementally, never buffered."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from urllib.parse import urlparse

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.webapp.accounts_helpers import bearer, people
from tests.webapp.server import LiveServer
from webapp import bodylimit
from webapp.app import create_app

CHUNK = b"x" * 65536


def _stream_until_answered(url: str, path: str, budget: int) -> tuple[bytes, int]:
    """POST a chunked body of up to `budget` bytes; stop once the server answers.

    Returns:
        The first bytes of the answer and how many body bytes were sent before it came.
    """
    where = urlparse(url)
    sock = socket.create_connection((where.hostname, where.port), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nTransfer-Encoding: chunked"
                 "\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
    sent, answer = 0, b""
    deadline = time.monotonic() + 60
    try:
        while sent < budget and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            sent += len(CHUNK)
    except (BrokenPipeError, ConnectionResetError):
        pass
    with contextlib.suppress(ConnectionResetError):
        answer = sock.recv(4096)
    sock.close()
    return answer, sent


def test_an_oversized_sign_in_is_refused_before_it_is_read(engine: Engine) -> None:
    people(engine, "admin")
    client = TestClient(create_app(engine))
    big = b"email=a%40b.c&password=" + b"x" * (bodylimit.ANONYMOUS_LIMIT + 1)
    r = client.post("/login", content=big,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "larger than 1 MB" in r.text
    r = client.post("/api/items", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"].startswith("the request body is larger")


def test_a_streamed_body_is_cut_off_at_the_limit(engine: Engine) -> None:
    people(engine, "admin")
    with LiveServer(engine) as url:
        answer, sent = _stream_until_answered(url, "/login", 400 << 20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * bodylimit.ANONYMOUS_LIMIT  # stopped near 1 MB, not after 400 MB


def test_signed_in_requests_get_the_larger_cap(engine: Engine) -> None:
    people(engine, "viewer")
    api, headers = TestClient(create_app(engine)), bearer(engine, "viewer@example.com")
    name = "x" * (2 * bodylimit.ANONYMOUS_LIMIT)
    r = api.post("/api/tokens", headers=headers, json={"name": name})
    assert r.status_code == 422  # read and validated (too long a name), not cut off
    huge = b'{"name": "' + b"x" * bodylimit.SIGNED_IN_LIMIT + b'"}'
    r = api.post("/api/tokens", headers={**headers, "Content-Type": "application/json"},
                 content=huge)
    assert r.status_code == 413
    assert api.post("/api/tokens", headers=headers, json={"name": "ok"}).status_code == 201
