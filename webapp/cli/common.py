"""Shared CLI plumbing: the store, output as text or JSON, errors as one line.

Everything printed goes through `safe_text`: secrets redacted, no rich markup interpreted (a
name like `x[/]` or `team[red]` prints as typed) and control characters shown as visible
escapes, so data from a tool can never drive the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from sqlalchemy import Engine

from core.secrets import redact, remember_store
from core.store import open_store

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no in-use lock
    fcntl = None  # type: ignore[assignment]

# C0 and C1 controls except tab and newline, DEL, and the bidirectional overrides that
# reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                      "\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object) -> str:
    """`text` as it may reach a terminal: redacted, control characters made visible."""
    return _CONTROL.sub(_visible, redact(str(text)))


class Printer:
    """Plain lines on stdout or stderr: never markup, never raw control characters."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    @property
    def stream(self) -> TextIO:
        """The stream now (tests and redirections swap sys.stdout)."""
        return sys.stderr if self.stderr else sys.stdout

    def print(self, *parts: object, markup: bool = False) -> None:
        """Print `parts` joined by spaces as one line.

        Args:
            parts: what to print; data is printed as it is (rich markup is not read).
            markup: ignored, kept so no caller can turn markup on by accident.
        """
        del markup
        self.stream.write(safe_text(" ".join(str(p) for p in parts)) + "\n")
        self.stream.flush()


out = Printer()
err = Printer(stderr=True)
_progress_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False,
                            emoji=False)

JSON_HELP = "Print machine-readable JSON on stdout."


def store() -> Engine:
    """Open the configured store (migrating it); its secrets are known to the redactor."""
    engine = open_store()
    remember_store(engine)
    return engine


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
    text = json.dumps(data, default=_default, indent=None if compact else 2)
    sys.stdout.write(redact(text) + "\n")  # JSON escapes control characters itself


def progress() -> Progress:
    """A progress display on stderr (so --json output stays clean)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), console=_progress_console, transient=True,
                    disable=not sys.stderr.isatty())


def error_line(message: str) -> None:
    """One plain line on stderr (no markup, no wrapping, nothing secret)."""
    sys.stderr.write(f"error: {safe_text(message)}\n")


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


def _sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite store (None for another database or an in-memory one)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    name = url.database.removeprefix("file:").split("?")[0]
    return Path(name).expanduser().absolute()


def in_use_marker(engine: Engine) -> Path | None:
    """The file a process serving or working on this SQLite store holds a shared lock on."""
    path = _sqlite_file(engine)
    return path.with_name(path.name + ".in-use") if path is not None else None


@contextlib.contextmanager
def using_store(engine: Engine) -> Iterator[None]:
    """Mark the store as in use while the block runs (a shared lock on its marker file), so
    `learnloop demo` never deletes a store a server or a worker is using (POSIX only)."""
    marker = in_use_marker(engine)
    if marker is None or fcntl is None:
        yield
        return
    try:
        fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a read-only directory: nothing can delete the store from there either
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def store_in_use(marker: Path) -> bool:
    """Whether a process holds the in-use lock of a store (its marker file)."""
    if fcntl is None or not marker.exists():
        return False
    try:
        fd = os.open(marker, os.O_RDWR)
    except OSError:  # a marker this user cannot open: treated as not in use
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
