"""Server-rendered pages: one Jinja2 environment, and a render helper that adds the user."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from core.secrets import redact
from webapp.plain import plain

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
templates.env.globals["plain_error"] = plain  # a tool's error in plain words
templates.env.finalize = _shown  # before any template is compiled


def _signature(request: Request, msg: str, err: str) -> str:
    """Keyed by the browser session's own secret: a link cannot carry text to anyone else."""
    key = str(getattr(request.state, "csrf", "") or "")
    if not key:
        return ""
    return hmac.new(key.encode(), f"{msg}\x00{err}".encode(), hashlib.sha256).hexdigest()[:32]


def flash_url(request: Request, target: str, msg: str | None = None,
              err: str | None = None) -> str:
    """`target` with a message (or an error) for the next page, signed for this session."""
    pairs = [(k, v) for k, v in (("msg", msg), ("err", err)) if v]
    if not pairs:
        return target
    sig = _signature(request, msg or "", err or "")
    query = urllib.parse.urlencode([*pairs, ("sig", sig)])
    return f"{target}{'&' if '?' in target else '?'}{query}"


def redirect(request: Request, target: str, msg: str | None = None,
             err: str | None = None) -> RedirectResponse:
    """A 303 to `target` that shows `msg` or `err` there (see `flash_url`)."""
    return RedirectResponse(flash_url(request, target, msg, err), status_code=303)


def _flash(request: Request) -> tuple[str | None, str | None]:
    """The message and error of the query string, only when this session signed them."""
    msg, err = request.query_params.get("msg"), request.query_params.get("err")
    if not (msg or err):
        return None, None
    expected = _signature(request, msg or "", err or "")
    if not expected or not hmac.compare_digest(expected, request.query_params.get("sig", "")):
        return None, None
    return msg, err


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the signed-in user, the CSRF token and a flash message."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    flash, error = _flash(request)
    context.setdefault("flash", flash)
    context.setdefault("error", error)
    return templates.TemplateResponse(request, name, context, status_code=status_code)
