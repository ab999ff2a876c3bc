"""Fixtures for the web layer's tests: the CLI run in-process on the test's own store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from webapp.cli import main

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], use_store: str) -> CliRun:
    """`cli(*args)` runs `learnloop *args` and returns (exit code, stdout, stderr); a traceback
    on stderr fails the test (errors are one line)."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err
    return run
