"""Build a gspread client (imported lazily) for a service account, optionally re-pointed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from connectors.gsheets.config import GSheetsConfig
from core.errors import ConfigError, ConnectorError
from core.secrets import redact

if TYPE_CHECKING:
    import gspread

GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com",
                "https://iamcredentials.googleapis.com")
UNFORMATTED = "UNFORMATTED_VALUE"
SERIAL = "SERIAL_NUMBER"


def service_account(config: GSheetsConfig) -> dict[str, Any]:
    """The key file's fields.

    Raises:
        ConfigError: when the key is not a service-account JSON key.
    """
    try:
        info: dict[str, Any] = json.loads(config.service_account_key.get_secret_value())
    except json.JSONDecodeError:
        raise ConfigError("service_account_key is not JSON: paste the whole key file") from None
    missing = [k for k in ("client_email", "private_key", "token_uri") if k not in info]
    if missing:
        raise ConfigError(f"service_account_key lacks {', '.join(missing)}: use a service "
                          "account's JSON key file")
    return info


def connect(config: GSheetsConfig) -> gspread.Client:
    """A gspread client; with `endpoint`, every Google URL goes there instead."""
    import gspread
    import requests.adapters

    info = service_account(config)
    client = gspread.service_account_from_dict(info)
    if config.endpoint:
        base = config.endpoint.rstrip("/")

        class Rewrite(requests.adapters.HTTPAdapter):
            def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                for host in GOOGLE_HOSTS:
                    if request.url.startswith(host):
                        request.url = base + request.url[len(host):]
                return super().send(request, **kwargs)

        for host in GOOGLE_HOSTS:
            client.http_client.session.mount(host, Rewrite())
    return client


class QuotaError(ConnectorError):
    """Google's per-minute quota is used up: retry after a minute."""

    retry_after = 60.0


def explain(exc: Exception, config: GSheetsConfig) -> ConnectorError:
    """A Google API error in plain words (with what to do about it)."""
    import gspread

    if isinstance(exc, gspread.exceptions.SpreadsheetNotFound):
        email = service_account(config).get("client_email", "the service account")
        return ConnectorError(f"spreadsheet {config.spreadsheet_id}: not found or not shared; "
                              f"share it with {email} as Editor")
    if isinstance(exc, gspread.exceptions.APIError):
        code = exc.response.status_code
        if code in (403, 404):
            email = service_account(config).get("client_email", "the service account")
            return ConnectorError(f"spreadsheet {config.spreadsheet_id}: not found or not "
                                  f"shared (HTTP {code}); share it with {email} as Editor")
        if code == 429:
            return QuotaError("Google Sheets quota exceeded (HTTP 429); retry in a minute")
        return ConnectorError(f"Google Sheets answered HTTP {code}"
                              f"{_redacted(_google_message(exc, config), config)}")
    if isinstance(exc, gspread.exceptions.WorksheetNotFound):
        return ConnectorError(f"no tab named {config.worksheet!r} in the spreadsheet")
    said = _line(_redacted(str(exc), config))
    return ConnectorError(f"{type(exc).__name__}" + (f": {said}" if said else ""))


def _line(text: str, limit: int = 300) -> str:
    """`text` (redacted already: a secret may span lines) on one line, at most `limit` long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _google_message(exc: Any, config: GSheetsConfig) -> str:
    """Google's error status and message fields (never the raw body), or nothing."""
    error = getattr(exc, "error", None)
    if not isinstance(error, dict):
        return ""
    status = str(error.get("status") or "")
    message = _line(_redacted(str(error.get("message") or ""), config))
    return "".join(part for part in (f" {status}" if status else "",
                                     f": {message}" if message else ""))


def _redacted(text: str, config: GSheetsConfig) -> str:
    return redact(text, {"service_account_key": config.service_account_key.get_secret_value()})


def search_metadata(book: gspread.Spreadsheet, key: str) -> list[dict[str, Any]]:
    """Developer metadata with `key` anywhere in the spreadsheet."""
    from gspread.urls import SPREADSHEETS_API_V4_BASE_URL

    url = f"{SPREADSHEETS_API_V4_BASE_URL}/{book.id}/developerMetadata:search"
    body = {"dataFilters": [{"developerMetadataLookup": {"metadataKey": key}}]}
    res = book.client.request("post", url, json=body).json()
    return [m["developerMetadata"] for m in res.get("matchedDeveloperMetadata", [])]


def on_tab(meta: dict[str, Any], tab_id: int, dimension: str) -> int | None:
    """The start index of a piece of metadata on this tab's rows or columns, else None."""
    where = meta.get("location", {}).get("dimensionRange", {})
    if where.get("sheetId") == tab_id and where.get("dimension") == dimension:
        return int(where["startIndex"])
    return None


def metadata_request(key: str, value: str, tab_id: int, dimension: str,
                     index: int) -> dict[str, Any]:
    """A createDeveloperMetadata request pinning `key=value` to one row or column."""
    return {"createDeveloperMetadata": {"developerMetadata": {
        "metadataKey": key, "metadataValue": value, "visibility": "DOCUMENT",
        "location": {"dimensionRange": {"sheetId": tab_id, "dimension": dimension,
                                        "startIndex": index, "endIndex": index + 1}}}}}
