"""The Jira clients (imported lazily): `jira` for reads, `atlassian-python-api` for writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.jira.config import JiraConfig
from core.errors import ConnectorError

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


def explain(exc: Exception, config: JiraConfig) -> ConnectorError:
    """A client error in plain words (the token never appears)."""
    code = status_of(exc)
    if code == 401:
        return ConnectorError(f"Jira at {config.url} rejected the email/API token (HTTP 401)")
    if code == 403:
        return ConnectorError(f"the account {config.email} lacks a permission (HTTP 403): "
                              f"{getattr(exc, 'text', '')}".strip())
    if code == 429:
        return ConnectorError("Jira rate limit reached (HTTP 429); retry later")
    text = str(exc).replace(config.api_token.get_secret_value(), "***")
    return ConnectorError(f"Jira: {text.splitlines()[0] if text else type(exc).__name__}")
