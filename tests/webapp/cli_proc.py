"""`learnloop` in a process of its own, with the test connectors findable (tests only).

Run as `python -m tests.webapp.cli_proc GO_FILE ARGS...`: waits until GO_FILE exists (so
several processes start their command together), then runs `learnloop ARGS...`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from core.contract import Batch
from tests.fakes import FakeConfig, FakeConnector


class GatedConfig(FakeConfig):
    """The fake tool, whose pull stops after its first batch until a file exists."""

    gate: str = Field(default="", description="The file the pull waits for.")


class GatedConnector(FakeConnector):
    """A sync that is still running when the test wants it to be."""

    name: ClassVar[str] = "gated"
    config_model: ClassVar[type[BaseModel]] = GatedConfig

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        assert isinstance(self.config, GatedConfig)
        for n, batch in enumerate(super().pull(cursor)):
            yield batch
            deadline = time.monotonic() + 60
            while n == 0 and self.config.gate and not Path(self.config.gate).exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the gate was never opened")
                time.sleep(0.02)


def main(argv: list[str]) -> int:
    from connectors import registry
    from webapp.cli import main as learnloop

    registry.BUILTINS = (*registry.BUILTINS, f"{__name__}:GatedConnector")
    go, args = Path(argv[0]), argv[1:]
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.stderr.write("no go signal\n")
            return 3
        time.sleep(0.005)
    return learnloop(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
