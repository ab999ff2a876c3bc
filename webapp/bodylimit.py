"""Refuse over-large request bodies with a 413 before anything reads them into memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANONYMOUS_LIMIT = 1 << 20  # 1 MiB: sign-in, first run, and any request without credentials
SIGNED_IN_LIMIT = 16 << 20  # 16 MiB for requests that carry a session cookie or bearer token
PUBLIC_PATHS = ("/login", "/setup")
SESSION_COOKIE = b"learnloop_session="


class BodyTooLarge(HTTPException):
    """The body went past the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // (1 << 20)} MB")
        self.limit = limit


def limit_for(scope: Scope) -> int:
    """The body cap of a request: the small one unless it presents credentials off the
    public pages (the credentials are checked later; this only bounds the memory)."""
    if scope.get("path", "") in PUBLIC_PATHS:
        return ANONYMOUS_LIMIT
    headers = dict(scope.get("headers") or [])
    if headers.get(b"authorization", b"").lower().startswith(b"bearer ") \
            or SESSION_COOKIE in headers.get(b"cookie", b""):
        return SIGNED_IN_LIMIT
    return ANONYMOUS_LIMIT


class LimitBody:
    """ASGI middleware: a declared Content-Length over the cap is refused unread; a streamed
    body is counted chunk by chunk and cut off (413) as soon as it passes the cap."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(scope, receive, send, BodyTooLarge(limit)
                          if declared.isdigit() else None)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(scope, receive, send, exc)


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge | None) -> None:
    status, text = (exc.status_code, str(exc.detail)) if exc else \
        (400, "the Content-Length header is not a number")
    headers = {"Connection": "close"}
    if str(scope.get("path", "")).startswith("/api/"):
        response: Any = JSONResponse({"detail": text}, status_code=status, headers=headers)
    else:
        response = PlainTextResponse(text, status_code=status, headers=headers)
    await response(scope, receive, send)
