"""The HubSpot client (imported lazily), one backoff wrapper for every call, and errors in words.

hubspot-api-client retries only idempotent calls that carry Retry-After, never a POST search or
batch, and raises urllib3's `MaxRetryError` when its own retries run out; each of its 61
generated packages has its own `ApiException`. So the client is built with no retries of its
own, and `Hub.call` does them all: it backs off on 429 (Retry-After when HubSpot sends it,
else by `policyName`: one second for SECONDLY, ten for TEN_SECONDLY_ROLLING; DAILY is not
waited out), on 5xx and on dropped or stalled connections, paces search calls, and catches on
the status, never on the exception class.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.hubspot.config import HubSpotConfig
from core.errors import ConnectorError
from core.secrets import redact

TEMPLATES = "/automation/email-templates/2026-09-beta"
"""The beta sales-email-template API (answers a user-level token only)."""
SEQUENCES = "/automation/sequences/2026-09-beta/serviceaccounts/sequences"
"""The beta sequence API (answers a user-level token only)."""

if TYPE_CHECKING:
    import hubspot

T = TypeVar("T")
SEARCH, READ, WRITE, CREATE = "search", "read", "write", "create"
"""Kinds of call: a create is retried only when HubSpot surely did not take it (a 429)."""


class HubSpotError(ConnectorError):
    """A HubSpot call failed: `status` (0 for no answer), `retry_after`, HubSpot's category."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None,
                 category: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status, self.retry_after, self.category = status, retry_after, category
        self.detail = detail  # HubSpot's whole message (redacted), for the caller to read

    @property
    def missing_property(self) -> bool:
        """A write named a property that does not exist (deleted or renamed in HubSpot)."""
        return self.status == 400 and "PROPERTY_DOESNT_EXIST" in self.detail

    @property
    def permanent(self) -> bool:
        """Retrying the same call cannot help (a bad request, a missing object or scope)."""
        return self.status in (400, 403, 404, 409, 414)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client exception (any of the 61 ApiException classes)."""
    code = getattr(exc, "status", None)
    return int(code) if isinstance(code, int) and code else None


def _body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _header(exc: BaseException, name: str) -> str | None:
    headers = getattr(exc, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def retry_after(exc: BaseException) -> float | None:
    """Seconds HubSpot asked us to wait (the Retry-After header of a 429)."""
    value = _header(exc, "Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def is_transport(exc: BaseException) -> bool:
    """A dropped, refused or stalled connection (urllib3's errors, MaxRetryError among them)."""
    import urllib3

    return isinstance(exc, urllib3.exceptions.HTTPError | TimeoutError | ConnectionError)


class Hub:
    """One HubSpot account: the client, its generated APIs (built once: each property access
    of the client builds a new connection pool), and the backoff wrapper."""

    def __init__(self, config: HubSpotConfig, token_dir: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.requests = 0  # calls sent, retries included (benchmarks report it)
        self._lock = threading.Lock()
        self._last_search = 0.0
        self._oauth = OAuthTokens(config, token_dir) if config.oauth else None
        self._apis: dict[str, Any] = {}
        self._client: hubspot.HubSpot | None = None

    # -- the client and its APIs --------------------------------------------------------
    def token(self) -> str:
        if self._oauth is not None:
            return self._oauth.access_token(self)
        assert self.config.access_token is not None
        return self.config.access_token.get_secret_value()

    @property
    def client(self) -> hubspot.HubSpot:
        if self._client is None:
            from hubspot import HubSpot
            from urllib3.util.retry import Retry

            self._client = HubSpot(
                access_token=self.token(), host=self.config.base_url.rstrip("/"),
                base_url=self.config.base_url.rstrip("/"),
                retry=Retry(total=0, connect=0, read=0, redirect=0, status=0,
                            raise_on_status=False, respect_retry_after_header=False))
        return self._client

    def api(self, name: str) -> Any:
        """A generated API by dotted path under the client (`crm.objects.batch_api`), built
        once."""
        with self._lock:
            found = self._apis.get(name)
            if found is None:
                found = self.client
                for part in name.split("."):
                    found = getattr(found, part)
                self._apis[name] = found
            return found

    def _reset(self) -> None:
        """Forget the client after a token refresh (each API holds the old token)."""
        with self._lock:
            self._client = None
            self._apis.clear()

    # -- calling ------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., T], *args: Any, kind: str = READ,
             timeout: bool = True, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` with HubSpot's limits respected and its failures retried.

        Args:
            what: what the call does, in words, for the error message.
            fn: a generated API method (looked up again after a token refresh by name).
            kind: SEARCH (paced), READ or WRITE (retried on 429, 5xx and dropped
                connections), or CREATE (retried only on 429: a create that timed out may
                have been made, and the caller looks for it before making it again).

        Raises:
            HubSpotError: when HubSpot refused the call, or retries ran out.
        """
        if timeout:  # a generated API method: its own timeout argument
            kwargs.setdefault("_request_timeout", (min(10.0, self.config.timeout_seconds),
                                                   self.config.timeout_seconds))
        attempt = 0
        refreshed = False
        while True:
            if kind == SEARCH:
                self._pace()
            self.requests += 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                code = status_of(exc)
                if code == 401 and self._oauth is not None and not refreshed:
                    refreshed = True
                    name = self._name_of(fn)
                    self._oauth.refresh(self)
                    self._reset()
                    if name:  # the generated API held the old token: the same method anew
                        fn = getattr(self.api(name), fn.__name__)
                    continue
                wait = self._wait(exc, code, attempt, kind)
                if wait is None:
                    raise self.explain(exc, what) from None
                attempt += 1
                self.sleep(wait)

    def json(self, what: str, fn: Callable[..., Any], *args: Any, kind: str = READ,
             **kwargs: Any) -> Any:
        """`call` with the answer as parsed JSON (the generated models are skipped: reading
        100,000 deals through them costs more than the requests)."""
        raw = self.call(what, fn, *args, kind=kind, _preload_content=False, **kwargs)
        data = raw.data
        return json.loads(data) if data else None

    def _name_of(self, fn: Callable[..., Any]) -> str | None:
        """The dotted name of the generated API `fn` is a method of, if it is one."""
        owner = getattr(fn, "__self__", None)
        return next((name for name, api in self._apis.items() if api is owner), None)

    def _pace(self) -> None:
        gap = 1.0 / self.config.search_per_second
        with self._lock:
            now = time.monotonic()
            due = self._last_search + gap
            self._last_search = max(now, due)
        if due > now:
            self.sleep(due - now)

    def _wait(self, exc: BaseException, code: int | None, attempt: int,
              kind: str) -> float | None:
        """How long to wait before retrying, or None when the call must fail now."""
        cfg = self.config
        if attempt >= cfg.max_retries:
            return None
        if code == 429:
            body = _body(exc)
            policy = str(body.get("policyName") or "").upper()
            if policy == "DAILY":
                return None
            told: float | None = retry_after(exc)
            if told is None:
                secondly = policy == "SECONDLY" or "secondly limit" in str(body.get("message"))
                told = float(cfg.backoff_seconds * (1 if secondly else 10 if policy
                                                    else 2 ** attempt))
            return told if told <= cfg.max_wait_seconds else None
        if kind == CREATE:
            return None
        if (code is not None and code >= 500) or (code is None and is_transport(exc)):
            return float(min(cfg.backoff_seconds * 2 ** attempt, cfg.max_wait_seconds))
        return None

    def explain(self, exc: BaseException, what: str) -> HubSpotError:
        """A client error in plain words: what failed, the status and HubSpot's own message
        (the token, in any encoding, never in it)."""
        code = status_of(exc)
        body = _body(exc)
        said = _line(str(body.get("message") or ""))
        wait = retry_after(exc)
        if code == 401:
            text = f"HubSpot rejected learnloop's token while trying to {what} (HTTP 401)"
        elif code == 403:
            scope = missing_scope(body)
            text = (f"the HubSpot app lacks the scope {scope}, needed to {what}" if scope
                    else f"HubSpot refused to {what} (HTTP 403): {said}")
        elif code == 429:
            policy = str(body.get("policyName") or "rate").lower()
            text = f"HubSpot's {policy} limit was reached while trying to {what}; retry later"
            if policy == "daily" and wait is None:
                wait = _seconds_to_midnight()
        elif code:
            text = f"HubSpot answered HTTP {code} while trying to {what}" + (
                f": {said}" if said else "")
        else:
            first = str(exc).strip().splitlines()
            reason = getattr(exc, "reason", None)
            text = (f"HubSpot did not answer while trying to {what}: "
                    f"{type(reason or exc).__name__}")
            if first and not reason:
                text += f": {_line(first[0], 160)}"
        return HubSpotError(self._redacted(text), code or 0, wait,
                            str(body.get("category") or ""),
                            self._redacted(str(body.get("message") or "")))

    def _redacted(self, text: str) -> str:
        secrets = {k: v.get_secret_value() for k in ("access_token", "client_secret",
                                                     "refresh_token")
                   if (v := getattr(self.config, k)) is not None}
        if self._oauth is not None and self._oauth.current:
            secrets["oauth_access_token"] = self._oauth.current
        return redact(text, secrets)

    # -- api_request (sequences and sales templates: not in the generated client) --------
    def sales_template(self, template_id: str) -> dict[str, Any] | None:
        """A sales email template (HubSpot's `2026-09-beta` API, which answers only a
        user-level token): None without one, for an id that is not a number, and when
        HubSpot refuses or does not have it (401, 403, 404); other failures raise."""
        if not self.config.oauth or not str(template_id).isdigit():
            return None
        try:
            found = self.request(f"read sales template {template_id}", "GET",
                                 f"{TEMPLATES}/{template_id}")
        except HubSpotError as exc:
            if exc.status in (401, 403, 404):
                return None
            raise
        return dict(found) if isinstance(found, dict) else None

    def request(self, what: str, method: str, path: str, qs: dict[str, Any] | None = None,
                body: Any = None, kind: str = READ) -> Any:
        """A call through `api_request` (bare `requests`: no retry, no timeout, no raise on
        4xx/5xx), with the same backoff and errors as `call`. Returns the parsed JSON."""
        def send() -> Any:
            import requests

            options: dict[str, Any] = {"method": method, "path": path,
                                       "base_url": self.config.base_url.rstrip("/")}
            if qs:
                options["qs"] = qs
            if body is not None:
                options["body"] = body
            # api_request has no timeout of its own: requests' default would wait forever.
            with _timeout(requests, self.config.timeout_seconds):
                response = self.client.api_request(options)
            if response.status_code >= 400:
                raise RequestFailed(response)
            return response.json() if response.content else None

        return self.call(what, send, kind=kind, timeout=False)


class RequestFailed(Exception):
    """An `api_request` answer of 4xx/5xx, shaped like the generated clients' ApiException."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = int(response.status_code)
        self.body = response.text
        self.headers = response.headers
        self.reason = None


class _timeout:
    """Give `requests`' module-level calls a timeout for the duration of one call."""

    _lock = threading.Lock()

    def __init__(self, requests: Any, seconds: float) -> None:
        self.requests, self.seconds = requests, seconds

    def __enter__(self) -> None:
        self._lock.acquire()
        self.api = self.requests.api
        self.original = self.api.request
        seconds = self.seconds
        original = self.original

        def request(method: str, url: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", seconds)
            return original(method, url, **kwargs)

        self.api.request = request

    def __exit__(self, *exc: object) -> None:
        self.api.request = self.original
        self._lock.release()


def missing_scope(body: dict[str, Any]) -> str | None:
    """The scope a 403 names (HubSpot's MISSING_SCOPES errors list them in `errors[].context`
    or in the message)."""
    for err in body.get("errors") or []:
        context = (err or {}).get("context") or {}
        scopes = context.get("requiredGranularScopes") or context.get("requiredScopes") or []
        if scopes:
            return ", ".join(str(s) for s in scopes)
    context = body.get("context") or {}
    for key in ("requiredScopes", "requiredGranularScopes", "scopes"):
        if context.get(key):
            return ", ".join(str(s) for s in context[key])
    message = str(body.get("message") or "")
    for marker in ("requires the scope ", "scope ", "scopes: "):
        if marker in message:
            return message.split(marker, 1)[1].split()[0].strip(".,;:'\"[]")
    return None


def _line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _seconds_to_midnight() -> float:
    now = dt.datetime.now(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


class OAuthTokens:
    """A user-level app's tokens: refreshed when they expire (or a call answers 401), and the
    new ones kept encrypted with the store's key in a file under learnloop's home."""

    def __init__(self, config: HubSpotConfig, directory: Path | None = None) -> None:
        from core.settings import get_settings

        assert config.refresh_token is not None
        self.config = config
        seed = f"{config.client_id}:{config.refresh_token.get_secret_value()}"
        name = "hubspot-oauth-" + hashlib.sha256(seed.encode()).hexdigest()[:16] + ".enc"
        self.path = (directory or get_settings().home) / name
        self.current: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        from core.secrets import decrypt

        if not self.path.exists():
            return {}
        try:
            stored = decrypt(self.path.read_text())
        except Exception:
            return {}
        return dict(stored)

    def access_token(self, hub: Hub) -> str:
        with self._lock:
            stored = self._load()
            if stored.get("access_token") and float(stored.get("expires_at", 0)) > time.time() + 60:
                self.current = str(stored["access_token"])
                return self.current
        return self.refresh(hub)

    def refresh(self, hub: Hub) -> str:
        """Trade the refresh token for a new access token (and the refresh token HubSpot may
        rotate), store both encrypted, and return the access token."""
        from hubspot import HubSpot

        from core.secrets import encrypt

        with self._lock:
            stored = self._load()
            refresh = str(stored.get("refresh_token") or
                          self.config.refresh_token.get_secret_value())  # type: ignore[union-attr]
            assert self.config.client_secret is not None
            api = HubSpot(host=self.config.base_url.rstrip("/")).oauth.tokens_api
            try:
                got = api.create(grant_type="refresh_token", client_id=self.config.client_id,
                                 client_secret=self.config.client_secret.get_secret_value(),
                                 refresh_token=refresh, _preload_content=False,
                                 _request_timeout=self.config.timeout_seconds)
                hub.requests += 1
                data = json.loads(got.data)
            except Exception as exc:
                raise hub.explain(exc, "refresh the OAuth access token") from None
            self.current = str(data["access_token"])
            record = {"access_token": self.current,
                      "refresh_token": str(data.get("refresh_token") or refresh),
                      "expires_at": str(time.time() + float(data.get("expires_in") or 1800))}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = encrypt(record)
            assert text is not None
            self.path.write_text(text)
            self.path.chmod(0o600)
            return self.current
