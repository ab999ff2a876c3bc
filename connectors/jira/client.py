"""The Jira clients (imported lazily): `jira` for reads, `atlassian-python-api` for writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.jira.config import JiraConfig
from core.errors import ConnectorError
from core.secrets import redact

if TYPE_CHECKING:
    import atlassian
    import jira


def reader(config: JiraConfig) -> jira.JIRA:
    """A `jira.JIRA` client; retries are the outbox's business, not the session's."""
    from jira import JIRA

    try:
        return JIRA(server=config.url, basic_auth=(config.email,
                                                   config.api_token.get_secret_value()),
                    max_retries=0, options={"check_update": False},
                    timeout=config.timeout_seconds)
    except Exception as exc:
        raise explain(exc, config) from exc


def writer(config: JiraConfig) -> atlassian.Jira:
    """An `atlassian.Jira` client in Cloud mode."""
    from atlassian import Jira

    # No sleeping on Retry-After inside the client: the outbox schedules the retry, so a
    # worker is never blocked for a minute by one issue's write limit.
    return Jira(url=config.url, username=config.email,
                password=config.api_token.get_secret_value(), cloud=True,
                retry_with_header=False, timeout=config.timeout_seconds)


def status_of(exc: Exception) -> int | None:
    """The HTTP status of a client exception, if it carries one."""
    code = getattr(exc, "status_code", None)
    response: Any = getattr(exc, "response", None)
    if code is None and response is not None:
        code = getattr(response, "status_code", None)
    return int(code) if code else None


def retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (429 Retry-After)."""
    response: Any = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def tool_message(exc: Exception, config: JiraConfig, limit: int = 300) -> str:
    """Jira's own error fields (errorMessages, errors, message), never its raw body or the
    request's headers, redacted, on one line of at most `limit` characters."""
    response: Any = getattr(exc, "response", None)
    try:
        data = response.json() if response is not None else None
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict):
        parts += [str(m) for m in data.get("errorMessages") or [] if m]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if data.get("message"):
            parts.append(str(data["message"]))
    return _line(_redacted("; ".join(parts), config), limit)


def _redacted(text: str, config: JiraConfig) -> str:
    return redact(text, {"api_token": config.api_token.get_secret_value()})


def _line(text: str, limit: int = 300) -> str:
    """`text` (redacted already: a secret may hold spaces) on one line, at most `limit` long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def explain(exc: Exception, config: JiraConfig) -> ConnectorError:
    """A client error in plain words: the status and Jira's error message (the token, in any
    encoding, and any credential it echoes never appear)."""
    code = status_of(exc)
    said = tool_message(exc, config)
    if code == 401:
        text = f"Jira at {config.url} rejected the email/API token (HTTP 401)"
    elif code == 403:
        text = f"the account {config.email} lacks a permission (HTTP 403): {said}".strip()
    elif code == 429:
        text = "Jira rate limit reached (HTTP 429); retry later"
    elif code:
        reason = getattr(getattr(exc, "response", None), "reason", "") or ""
        text = f"Jira answered HTTP {code}: {said or reason or type(exc).__name__}"
    else:
        first = _redacted(str(exc), config).strip().splitlines()
        text = f"Jira: {type(exc).__name__}" + (f": {_line(first[0])}" if first else "")
    return ConnectorError(_redacted(text, config))
