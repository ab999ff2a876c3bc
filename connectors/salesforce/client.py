"""The Salesforce client (imported lazily), one wrapper for every call, and errors in words.

simple-salesforce 1.12 hard-codes `https://{domain}.salesforce.com` for sign-in, never retries
a 429 or a 5xx, and re-logs in only for REST calls (not for Bulk API 2.0, not for the Metadata
API). So learnloop signs in itself through the token endpoint (`SalesforceLogin`: JWT bearer,
client credentials, or the retiring SOAP password login), hands simple-salesforce the session
id, and `Org.call` does the rest for every kind of call: a 401 `INVALID_SESSION_ID` (REST,
Bulk 2.0, or a Metadata API fault) signs in again and repeats the call; 429, 5xx, a transient
`REQUEST_LIMIT_EXCEEDED` and dropped connections back off; the daily allowance is watched
through `Sforce-Limit-Info` (every REST answer carries it) and `/limits`, and the quota guard
stops work at `quota_share` of it.

One `requests.Session` carries every call, the Metadata API's included (zeep would otherwise
build its own): its adapter sends `https://{domain}.salesforce.com` to `login_url` when one is
set (a proxy or a test org), trusts `ca_file`, gives every request a timeout, and reads the
usage header of every answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.salesforce.config import CLIENT_CREDENTIALS, JWT, RETIREMENT, SalesforceConfig
from core.errors import ConnectorError
from core.secrets import redact

if TYPE_CHECKING:
    import requests
    from simple_salesforce.api import Salesforce

log = logging.getLogger(__name__)
T = TypeVar("T")
READ, WRITE, CREATE = "read", "write", "create"
"""Kinds of call: a create is not repeated after a dropped connection (it may have been made;
the caller looks for it by its marker first)."""
USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceError(ConnectorError):
    """A Salesforce call failed: HTTP `status` (0 for no answer), Salesforce's `code`."""

    def __init__(self, message: str, status: int = 0, code: str = "",
                 retry_after: float | None = None, permanent: bool = False,
                 fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after
        self.permanent, self.fields = permanent, fields


class QuotaPaused(SalesforceError):
    """The quota guard stopped the work: the daily allowance is used up to `quota_share` (or
    entirely); the work resumes at the next slot (`retry_after` seconds)."""


def error_code(exc: BaseException) -> tuple[str, str]:
    """(errorCode, message) of a simple-salesforce error (its content is Salesforce's list of
    errors), or of a zeep Fault ("sf:INVALID_SESSION_ID")."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or ""), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or ""), str(
            content.get("message") or "")
    code = getattr(exc, "code", None)
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(code, str) and code:
        return code.split(":")[-1], message
    found = re.search(r"\b([A-Z][A-Z_]{5,})\b", message)
    return (found.group(1) if found else ""), message


def quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql(fields: Sequence[str], sobject: str, where: str | None = None, order: str = "",
         limit: int | None = None) -> str:
    """A SOQL statement; every value in `where` is a `quote`d literal or a date time."""
    text = "SELECT " + ", ".join(fields) + " FROM " + sobject  # noqa: S608 (SOQL, quoted)
    if where:
        text += " WHERE " + where
    if order:
        text += " ORDER BY " + order
    return text + (f" LIMIT {limit}" if limit is not None else "")


def status_of(exc: BaseException) -> int:
    code = getattr(exc, "status", None)
    return int(code) if isinstance(code, int) else 0


def _line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Org:
    """One Salesforce org: the session, the signed-in client, the call wrapper and the quota
    guard. `requests` counts the calls that count against the daily allowance (sign-ins do
    not); `logins` the sign-ins."""

    def __init__(self, config: SalesforceConfig, sleep: Callable[[float], None] = time.sleep
                 ) -> None:
        self.config = config
        self.sleep = sleep
        self.requests = 0
        self.logins = 0
        self.used: int | None = None  # from the last Sforce-Limit-Info (or /limits)
        self.allowance: int | None = None
        self.server_time: dt.datetime | None = None  # Salesforce's clock (the last Date header)
        self._sf: Salesforce | None = None
        self._session: requests.Session | None = None
        self._lock = threading.RLock()
        self._retry_after: float | None = None

    # -- the session and the client ---------------------------------------------------------
    def session(self) -> requests.Session:
        """The one requests session every call goes through (built once)."""
        with self._lock:
            if self._session is None:
                self._session = _session(self)
            return self._session

    def note_response(self, response: Any) -> None:
        """Read the usage header of an answer (a response hook of the session)."""
        path = str(getattr(response.request, "path_url", "") or "")
        if not (path.startswith("/services/oauth2/") or path.startswith("/services/Soap/u/")):
            self.requests += 1
        if response.headers.get("Date"):
            with contextlib.suppress(TypeError, ValueError):
                self.server_time = parsedate_to_datetime(response.headers["Date"])
        found = USAGE.search(response.headers.get("Sforce-Limit-Info") or "")
        if found:
            self.used, self.allowance = int(found.group(1)), int(found.group(2))
        told = response.headers.get("Retry-After")
        try:
            self._retry_after = float(told) if told else None
        except ValueError:
            self._retry_after = None

    @property
    def sf(self) -> Salesforce:
        """The signed-in client (signing in on first use)."""
        with self._lock:
            return self._sf if self._sf is not None else self.login()

    def login(self) -> Salesforce:
        """Sign in through the token endpoint (or the SOAP fallback) and build the client.

        Raises:
            SalesforceError: the sign-in was refused (permanent) or Salesforce did not answer.
        """
        import requests
        from simple_salesforce.api import Salesforce
        from simple_salesforce.exceptions import SalesforceAuthenticationFailed
        from simple_salesforce.login import SalesforceLogin

        cfg = self.config
        kwargs: dict[str, Any] = {"session": self.session(), "domain": cfg.domain,
                                  "sf_version": cfg.api_version}
        key = cfg.consumer_key.get_secret_value() if cfg.consumer_key is not None else ""
        if cfg.auth == JWT:
            assert cfg.private_key is not None
            how = "JWT bearer"
            kwargs.update(username=cfg.username, consumer_key=key,
                          privatekey=cfg.private_key.get_secret_value())
        elif cfg.auth == CLIENT_CREDENTIALS:
            assert cfg.consumer_secret is not None
            how = "client credentials"
            kwargs.update(consumer_key=key,
                          consumer_secret=cfg.consumer_secret.get_secret_value())
        else:
            assert cfg.password is not None and cfg.security_token is not None
            how = "username and password"
            log.warning(RETIREMENT)
            kwargs.update(username=cfg.username, password=cfg.password.get_secret_value(),
                          security_token=cfg.security_token.get_secret_value())
        with self._lock:
            try:
                session_id, instance = SalesforceLogin(**kwargs)
            except SalesforceAuthenticationFailed as exc:
                said = f"{exc.code}: {exc.auth_message}" if exc.auth_message else str(exc.code)
                hint = f"; {RETIREMENT}" if cfg.auth not in (JWT, CLIENT_CREDENTIALS) else ""
                raise SalesforceError(self.redacted(
                    f"Salesforce refused learnloop's sign-in ({how}) at {cfg.domain}: "
                    f"{_line(said)}{hint}"), 401, str(exc.code), permanent=True) from None
            except requests.RequestException as exc:
                raise SalesforceError(self.redacted(
                    f"Salesforce did not answer the sign-in at {cfg.domain}: "
                    f"{type(exc).__name__}")) from None
            self.logins += 1
            self._sf = Salesforce(instance=instance, session_id=session_id,
                                  session=self.session(), version=cfg.api_version)
            return self._sf

    def mdapi(self, sf: Salesforce) -> Any:
        """The Metadata API of `sf`, sending through learnloop's session (zeep builds its own
        transport session, which would skip the adapter and the CA file)."""
        api = sf.mdapi
        transport = getattr(getattr(api, "_client", None), "transport", None)
        if transport is not None and getattr(transport, "session", None) is not self.session():
            transport.session = self.session()
        return api

    # -- calling ----------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[Any], T], kind: str = READ,
             guard: bool = True) -> T:
        """`fn(sf)` with the session renewed, failures retried and the quota watched.

        Args:
            what: what the call does, in words, for the error message.
            fn: the call, given the signed-in client (a new one after a re-login).
            kind: READ, WRITE or CREATE (see the constants).
            guard: stop with QuotaPaused when the allowance is used to `quota_share`.

        Raises:
            QuotaPaused: the quota guard stopped the work (or the allowance is used up).
            SalesforceError: Salesforce refused the call, or retries ran out.
        """
        if guard:
            self.guard(what)
        attempt = relogins = 0
        while True:
            sf = self.sf
            try:
                return fn(sf)
            except Exception as exc:
                code, message = error_code(exc)
                status = status_of(exc)
                if code == "INVALID_SESSION_ID" or (status == 401 and not code):
                    if relogins >= 2:
                        raise self.explain(exc, what) from None
                    relogins += 1
                    with self._lock:
                        if self._sf is sf:  # another thread may have signed in already
                            self.login()
                    continue
                if status == 403 and code == "REQUEST_LIMIT_EXCEEDED" and \
                        "TotalRequests" in message:
                    raise self.paused(what, used_up=True) from None
                wait = self._wait(exc, status, code, attempt, kind)
                if wait is None:
                    raise self.explain(exc, what) from None
                attempt += 1
                self.sleep(wait)

    def _wait(self, exc: BaseException, status: int, code: str, attempt: int,
              kind: str) -> float | None:
        """How long to wait before the next try, or None when the call must fail now."""
        import requests

        cfg = self.config
        if attempt >= cfg.max_retries:
            return None
        backoff: float = min(cfg.backoff_seconds * float(2 ** attempt), cfg.max_wait_seconds)
        if status == 429 or (status == 403 and code == "REQUEST_LIMIT_EXCEEDED"):
            told = self._retry_after
            return min(float(told), cfg.max_wait_seconds) if told is not None else float(backoff)
        if status >= 500 and code != "INVALID_SESSION_ID":
            return None if kind == CREATE and status != 503 else backoff
        dropped = isinstance(exc, requests.ConnectionError | requests.Timeout)
        if dropped and kind != CREATE:
            return backoff
        return None

    def guard(self, what: str) -> None:
        """Stop when the allowance is used to `quota_share` (as the last answer said)."""
        if self.used is not None and self.allowance and \
                self.used >= self.config.quota_share * self.allowance:
            raise self.paused(what)

    def refresh_usage(self) -> tuple[int, int] | None:
        """Read `/limits` (around Bulk jobs, and before resuming after a pause): the daily
        API requests (used, allowed)."""
        data = self.call("read the org's limits", lambda sf: sf.limits(), guard=False)
        daily = (data or {}).get("DailyApiRequests") or {}
        if "Max" not in daily:
            return None
        allowed = int(daily["Max"])
        self.used, self.allowance = allowed - int(daily.get("Remaining", 0)), allowed
        return self.used, self.allowance

    def paused(self, what: str, used_up: bool = False) -> QuotaPaused:
        share = f"{self.config.quota_share:.0%}"
        wait = self.config.quota_pause_minutes * 60
        used = (f"{self.used:,} of {self.allowance:,} daily API requests used"
                if self.used is not None and self.allowance else "the daily API allowance")
        why = ("the org's daily API allowance is used up" if used_up else
               f"{used}, the quota guard's share is {share}")
        return QuotaPaused(f"stopped before trying to {what}: {why}; learnloop resumes in "
                           f"{self.config.quota_pause_minutes:g} minutes", 403,
                           "REQUEST_LIMIT_EXCEEDED", retry_after=wait)

    def explain(self, exc: BaseException, what: str) -> SalesforceError:
        """A client error in plain words (no secret in it)."""
        status = status_of(exc)
        code, message = error_code(exc)
        fields: tuple[str, ...] = ()
        content = getattr(exc, "content", None)
        if isinstance(content, list) and content and isinstance(content[0], dict):
            fields = tuple(str(f) for f in content[0].get("fields") or ())
        if status:
            text = f"Salesforce answered HTTP {status} while trying to {what}"
            if code or message:
                text += f": {code}{': ' if code and message else ''}{_line(message)}"
        elif type(exc).__module__.startswith("zeep"):
            text = f"the Metadata API refused to {what}: {_line(message)}"
        else:
            text = f"Salesforce did not answer while trying to {what}: {type(exc).__name__}"
        # A refusal (bad request, no access, no such record, a Metadata API fault) stays one
        # on retry; a 5xx, a 429 or no answer may not.
        permanent = status in (400, 403, 404) or (status == 0 and bool(code)
                                                  and code != "SERVER_UNAVAILABLE")
        retry = self._retry_after if status == 429 else None
        return SalesforceError(self.redacted(text), status, code, retry_after=retry,
                               permanent=permanent, fields=fields)

    def redacted(self, text: str) -> str:
        secrets = {k: v.get_secret_value() for k in ("private_key", "consumer_secret", "consumer_key",
                                                     "password", "security_token")
                   if (v := getattr(self.config, k)) is not None}
        if self._sf is not None:
            secrets["session_id"] = str(self._sf.session_id)
        return redact(text, secrets)


def _session(org: Org) -> requests.Session:
    """A session whose adapter routes `https://*.salesforce.com` to `login_url` (if set),
    trusts `ca_file`, times every request out and reads every answer's usage header."""
    import requests
    from requests.adapters import HTTPAdapter

    cfg = org.config
    target = cfg.login_url.rstrip("/")
    ca = cfg.ca_file or None
    timeout = cfg.timeout_seconds

    class Route(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if target:
                request.url = re.sub(r"^https://[^/]+\.salesforce\.com(?=/|$)", target,
                                     request.url or "")
            if ca:
                kwargs["verify"] = ca
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, *args, **kwargs)

    sess = requests.Session()
    sess.mount("https://", Route())
    if ca:
        sess.verify = ca
    sess.hooks["response"].append(lambda response, *a, **k: org.note_response(response))
    return sess
