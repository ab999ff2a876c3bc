"""The protocol a connector's test harness follows so the conformance suite can drive it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Harness(Protocol):
    """One fresh tool (an emulator, a file) seeded for one test, and eyes on its state.

    Built by a `HarnessFactory` called with pytest's `tmp_path`: building it starts (or
    resets) the emulator. Counting and reading back look at the emulator's own state, never at
    what the connector returned: a count of 0 or 1 by construction would hide a duplicate.

    Optional members the suite uses when present: `build(factory)` returns the connector when
    it needs more than `factory(config, mapping)` (a tool living in-process); `close()` stops
    what the harness started.
    """

    sdk_modules: tuple[str, ...]
    """Modules of the tool's SDK that importing the connector package must not import."""

    def config(self) -> dict[str, Any]:
        """Raw config values (as an admin would type them) pointing at the emulator."""
        ...

    def mapping(self) -> dict[str, Any]:
        """The field mapping for the seeded data."""
        ...

    def targets(self, surface: str) -> list[str]:
        """Where to write `surface`: ids of pulled items for item surfaces (fields, comment,
        property, link, note), else the object the surface writes to (a template issue or tab,
        the insights page); the harness seeds whatever the surface needs first."""
        ...

    def count(self, target: str, surface: str) -> int:
        """How many objects of `surface` learnloop's writes left on `target`, in the tool's own
        state (comments on the issue, tabs and column sets, rows of the copy...)."""
        ...

    def read_back(self, target: str, surface: str) -> str:
        """What the tool holds for that object, as text (the suite looks for its marker)."""
        ...

    def unexpected(self) -> list[str]:
        """What the strict emulator refused or flagged since the harness was built: unknown
        routes, parameters or body fields, answers off the official spec. Must stay empty."""
        ...


HarnessFactory = Callable[[Path], Harness]
"""Builds a harness in a test's temporary directory (a harness class is one)."""
