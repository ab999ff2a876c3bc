"""Shared CLI plumbing: the store, output as text or JSON, errors as one line."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from sqlalchemy import Engine

from core.store import open_store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_HELP = "Print machine-readable JSON on stdout."


def store() -> Engine:
    """Open the configured store (migrating it)."""
    return open_store()


def default_user() -> str:
    """Who is deciding, when --by is not given."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any, compact: bool = False) -> None:
    """Write `data` as JSON to stdout (indented, unless `compact` for large outputs)."""
    sys.stdout.write(json.dumps(data, default=_default, indent=None if compact else 2) + "\n")


def progress() -> Progress:
    """A progress display on stderr (so --json output stays clean)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), console=err, transient=True,
                    disable=not sys.stderr.isatty())


def error_line(message: str) -> None:
    """One plain line on stderr (no markup, no wrapping)."""
    sys.stderr.write(f"error: {message}\n")


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """`key=value` options into a dict.

    Raises:
        typer.BadParameter: for a value without '='.
    """
    import typer

    result = {}
    for raw in values or []:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {raw!r}", param_hint=option)
        result[key.strip()] = value.strip()
    return result


def fmt_time(value: dt.datetime | None) -> str:
    """A short, readable UTC time."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"
