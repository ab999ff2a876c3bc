"""The app for ASGI servers (`uvicorn webapp.asgi:app`), over the configured store."""

from __future__ import annotations

from webapp.app import create_app

app = create_app()
