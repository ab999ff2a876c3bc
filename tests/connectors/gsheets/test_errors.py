"""Google's errors in plain words: its status and message fields, never a credential."""

from __future__ import annotations

import json

import requests

from connectors.gsheets.client import explain
from connectors.gsheets.config import GSheetsConfig
from tests.connectors.gsheets.harness import key_json


def _response(code: int, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = code, body.encode()
    response.headers["Content-Type"] = "application/json"
    return response


def test_a_google_error_that_echoes_the_credentials_is_quoted_redacted() -> None:
    import gspread

    key = key_json("http://127.0.0.1:1")
    config = GSheetsConfig(spreadsheet_id="s1", worksheet="Plan", service_account_key=key)
    private = json.loads(key)["private_key"]
    echo = {"error": {"code": 500, "status": "INTERNAL", "message":
                      f"backend failed for Authorization: Bearer ya29.a0Af-xyz123 key {private}"},
            "request": {"authorization": "Bearer ya29.a0Af-xyz123", "key": private}}
    error = explain(gspread.exceptions.APIError(_response(500, json.dumps(echo))), config)
    text = str(error)
    assert text.startswith("Google Sheets answered HTTP 500 INTERNAL: backend failed for "
                           "Authorization: Bearer ***"), text
    assert "ya29" not in text and "BEGIN PRIVATE KEY" not in text and "request" not in text
    raw = explain(gspread.exceptions.APIError(_response(502, "<html>Bearer ya29.a0Af-x1</html>")),
                  config)
    assert "ya29" not in str(raw) and "HTTP 502" in str(raw)
