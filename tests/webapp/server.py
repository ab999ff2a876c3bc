"""The web app served by a real uvicorn on a free localhost port, in a thread, for tests."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from sqlalchemy import Engine

from webapp.app import create_app


class LiveServer:
    """`with LiveServer(engine) as url:` serves the app until the block ends."""

    def __init__(self, engine: Engine) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
