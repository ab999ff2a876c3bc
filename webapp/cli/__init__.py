"""The `learnloop` command line."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from core.errors import LearnloopError


def __getattr__(name: str) -> Any:
    # `app` (every command) is imported on first use: `learnloop experiments analyze` loads
    # only its own engine, which keeps its whole-command time down (benchmarks/experiments_gbstats).
    if name == "app":
        from webapp.cli.app import app

        return app
    raise AttributeError(name)


def _command(args: list[str]) -> tuple[Any, list[str], str]:
    """The Typer app to run `args` with (the experiments commands alone when those are asked
    for), the arguments, and the program name."""
    if args[:1] == ["experiments"]:
        import typer

        from webapp.cli import experiments

        only = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                           add_completion=False)
        only.add_typer(experiments.app, name="experiments")
        return only, args, "learnloop"
    from webapp.cli.app import app

    return app, args, "learnloop"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and a non-zero exit code."""
    try:
        command, args, prog = _command(list(sys.argv[1:] if argv is None else argv))
        result = command(args=args, standalone_mode=False, prog_name=prog)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except LearnloopError as exc:
        from webapp.cli.common import safe_text

        sys.stderr.write(f"error: {safe_text(exc)}\n")
        return 2
    except Exception as exc:
        # typer >= 0.25 raises its own copy of click's exceptions: match both by shape.
        kind = type(exc).__name__
        if kind == "Exit" or isinstance(exc, click.exceptions.Exit):
            return int(getattr(exc, "exit_code", 0) or 0)
        if kind == "Abort" or isinstance(exc, click.exceptions.Abort):
            sys.stderr.write("aborted\n")
            return 1
        code = getattr(exc, "exit_code", None)
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        if os.environ.get("LEARNLOOP_DEBUG"):
            raise
        from webapp.cli.common import safe_text

        if kind == "OperationalError" and type(exc).__module__.startswith("sqlalchemy"):
            sys.stderr.write(f"error: {safe_text(_store_failure(exc))}\n")
            return 1
        first = str(exc).splitlines()[0] if str(exc) else ""
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {safe_text(first)} "
                         "(set LEARNLOOP_DEBUG=1 to see the traceback)\n")
        return 70
    return result if isinstance(result, int) else 0


def _store_failure(exc: Exception) -> str:
    """A database that refused to work (disk full, read-only, gone away), in one line that
    names the store."""
    from core.settings import get_settings

    url = get_settings().resolved_database_url()
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            url = parsed.render_as_string(hide_password=True)
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (f"the store {url} failed: {cause[0] if cause else type(exc).__name__} (check that "
            "its disk has space and that it is writable and reachable)")


__all__ = ["app", "main"]
