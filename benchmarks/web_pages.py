"""Page and API latency with a large store: p50/p95 per page over real HTTP (uvicorn + httpx).

    python -m benchmarks.web_pages --items 100000 [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from core.learning.run import run_learning
from core.model import Item
from core.store import open_store, unit_of_work
from webapp import security
from webapp.app import create_app
from webapp.bench import fill

PAGES = ("/", "/items", "/items?page=200", "/items?q=B-99", "/items/{item}", "/findings",
         "/proposals", "/audit", "/experiments", "/api/items?size=50", "/api/summary",
         "/api/items/{item}", "/api/findings")


def _serve(app: Any) -> tuple[uvicorn.Server, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def run(items: int, url: str | None = None, rounds: int = 40) -> dict[str, Any]:
    """Fill a store with `items` items, learn once, then time every page `rounds` times."""
    tmp = tempfile.mkdtemp(prefix="learnloop-web-")
    engine = open_store(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
    t0 = time.perf_counter()
    fill(engine, items)
    run_learning(engine, {})
    setup = time.perf_counter() - t0
    with unit_of_work(engine) as s:
        user = security.create_user(s, "bench@example.com", "benchmark password", "admin")
        cookie = security.start_session(s, user)
        some_item = s.scalar(select(func.max(Item.id)))
    server, base = _serve(create_app(engine))
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=base, cookies={security.SESSION_COOKIE: cookie},
                          timeout=60) as client:
            for page in PAGES:
                path = page.format(item=some_item)
                start = time.perf_counter()
                first = client.get(path)
                cold = time.perf_counter() - start
                assert first.status_code == 200, (path, first.status_code, first.text[:200])
                times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    r = client.get(path)
                    times.append(time.perf_counter() - start)
                    assert r.status_code == 200
                times.sort()
                results[page] = {"cold_ms": round(cold * 1000, 1),
                                 "p50_ms": round(statistics.median(times) * 1000, 1),
                                 "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 1),
                                 "max_ms": round(times[-1] * 1000, 1)}
    finally:
        server.should_exit = True
    worst = max(v["p95_ms"] for v in results.values())
    return {"web_pages": {"items": items, "backend": engine.dialect.name, "rounds": rounds,
                          "setup_s": round(setup, 1), "worst_p95_ms": worst,
                          "pages": results}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(run(args.items, args.url, args.rounds), indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
