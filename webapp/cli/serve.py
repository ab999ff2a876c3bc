"""`learnloop serve`: the web app, and `init --admin-email` for the first admin."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from core.store import unit_of_work
from webapp.cli.common import out, store, using_store

PASSWORD_ENV = "LEARNLOOP_ADMIN_PASSWORD"  # noqa: S105 - the name of a variable


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Web processes.")] = 1,
) -> None:
    """Serve the web app (pages for people, the JSON API under /api/)."""
    import uvicorn

    from webapp.app import create_app

    engine = store()
    out.print(f"learnloop on http://{host}:{port}/ (store: "
              f"{engine.url.render_as_string(hide_password=True)}); Ctrl+C stops it")
    with using_store(engine):
        if workers > 1:
            uvicorn.run("webapp.asgi:app", host=host, port=port, workers=workers,
                        log_level="warning")
        else:
            uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")


def create_first_admin(email: str, password: str | None) -> str:
    """Create the first admin (only while there are no users).

    Raises:
        ConfigError: when users exist already or the email/password are unusable.
    """
    from webapp import security

    password = password or os.environ.get(PASSWORD_ENV)
    if not password:
        password = typer.prompt("password for the first admin", hide_input=True,
                                confirmation_prompt=True)
    with unit_of_work(store()) as session:
        user = security.create_first_admin(session, email, password or "", via="cli")
        return user.email
