"""Server-rendered pages: one Jinja2 environment, and a render helper that adds the user."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from core.secrets import redact

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _shown(value: Any) -> Any:
    """Every `{{ value }}` of every page: text is redacted (a tool's echo of a credential,
    stored by an older release, is never shown)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return redact(value)
    return value


templates.env.filters.update(when=_when, num=_num, pct=_pct, svg=Markup)
templates.env.finalize = _shown  # before any template is compiled


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the signed-in user, the CSRF token and a flash message."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("flash", request.query_params.get("msg"))
    context.setdefault("error", request.query_params.get("err"))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
