"""One worker process of the multi-process test (tests/webapp/test_worker.py).

Run as `python -m tests.webapp.worker_proc URL LOG CONNECTION_ID NOW READY_DIR INDEX`. It makes
the "fake" connector findable (test code only: the registry's built-ins are extended in this
process), waits until its siblings are ready, then runs the worker's jobs the way a worker
does: a sync of CONNECTION_ID for the slot of NOW (with its learning run) in one thread,
outbox passes in another until the sync is over and nothing is left to deliver. The connector
appends one line per write it receives to LOG (O_APPEND, one write() per line, so lines of
several processes never mix). Prints a JSON summary on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from core.contract import Delivery, Intent
from tests.fakes import FakeConnector

BATCH = 7  # intents per outbox claim, small so the three processes interleave their claims


class RecordingConnector(FakeConnector):
    """The fake tool, logging every write it is handed to a file all processes share."""

    log_path: ClassVar[str] = ""

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        results = super().deliver(intents)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for intent in intents:
                os.write(fd, f"{intent.id} {intent.target} {intent.surface} {os.getpid()}\n"
                         .encode())
        finally:
            os.close(fd)
        return results


class LeakyConnector(FakeConnector):
    """A tool whose error message echoes the connection's token (over two lines)."""

    name: ClassVar[str] = "leaky"

    def pull(self, cursor: Any) -> Any:
        token = self.config.api_token.get_secret_value() if self.config.api_token else ""
        raise RuntimeError(f"401 Unauthorized for token {token}\nsecond line")


def register(log_path: str = "") -> None:
    """Make `connectors.registry.get("fake")` return RecordingConnector in this process."""
    from connectors import registry

    RecordingConnector.log_path = log_path
    registry.BUILTINS = (*registry.BUILTINS, f"{__name__}:RecordingConnector",
                         f"{__name__}:LeakyConnector")


def _small_claims() -> None:
    from core import outbox

    real = outbox.deliver

    def deliver(engine: Any, connector_for: Any, limit: int = 500,
                connection_id: int | None = None) -> outbox.DeliveryReport:
        return real(engine, connector_for, min(limit, BATCH), connection_id)

    outbox.deliver = deliver  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    url, log_path, connection_id, now_text, ready_dir, index = argv
    register(log_path)
    _small_claims()
    from core.store import make_engine
    from webapp import worker

    engine = make_engine(url)
    now = dt.datetime.fromisoformat(now_text)
    ready = Path(ready_dir)
    (ready / f"ready-{index}").touch()
    deadline = time.monotonic() + 30
    while not (ready / "go").exists():  # start together with the other processes
        if time.monotonic() > deadline:
            sys.stderr.write("no go signal\n")
            return 3
        time.sleep(0.005)

    def deliver_until_done(sync_done: Any) -> dict[str, int]:
        totals = {"delivered": 0, "retrying": 0, "dead": 0, "passes": 0}
        stop = time.monotonic() + 60
        while time.monotonic() < stop:
            finished = sync_done.done()  # read before the pass: its writes are then seen
            report = worker.deliver_job(engine=engine)
            for k in ("delivered", "retrying", "dead"):
                totals[k] += report[k]
            totals["passes"] += 1
            if finished and not (report["delivered"] or report["retrying"]):
                break
        return totals

    started = time.monotonic()

    def timed_sync() -> dict[str, Any]:
        result = worker.sync_job(int(connection_id), engine=engine, now=now)
        result["seconds"] = round(time.monotonic() - started, 2)
        return result

    with ThreadPoolExecutor(2) as pool:
        sync = pool.submit(timed_sync)
        delivery = pool.submit(deliver_until_done, sync)
        result = sync.result()
        totals = delivery.result()
    engine.dispose()
    learn = result.get("learn") or {}
    print(json.dumps({"index": int(index), "pid": os.getpid(), "sync": result["status"],
                      "key": result.get("key"), "learn": learn.get("status"), "sync_seconds": result["seconds"],
                      "seconds": round(time.monotonic() - started, 2), **totals}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
