"""The redactor: known secrets in every encoding, credentials by shape, prose left alone,
and every log line of the process (third-party loggers' included) redacted."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from core import secrets
from core.redaction import REDACTOR, RedactingFilter, Redactor, encodings

SECRET = "s3cr/et+tok=en&1 x"
USER = "ops@example.com"


@pytest.fixture
def redactor() -> Redactor:
    found = Redactor()
    found.add([SECRET])
    return found


@pytest.mark.parametrize("shown", [
    SECRET, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1],
    base64.b64encode(SECRET.encode()).decode(),
    base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
    base64.urlsafe_b64encode(f"{USER}:{SECRET}".encode()).decode().rstrip("="),
    base64.b64encode(f"other@example.com:{SECRET}".encode()).decode(),  # a user not known
    "xy" + base64.b64encode(f"zz{SECRET}".encode()).decode(),  # misaligned in a longer run
])
def test_every_encoding_of_a_known_secret_is_hidden(redactor: Redactor, shown: str) -> None:
    text = f"403: {shown} was refused"
    assert redactor(text) == "403: *** was refused"


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ("{'authorization': 'Bearer eyJhbGciOi.J9x-1'}", "{'authorization': 'Bearer ***'}"),
    ('{\\"Authorization\\": \\"Token abcdef123456\\"}', '{\\"Authorization\\": \\"Token ***\\"}'),
    ("authorization=Basic%20dXNlcjpwYXNzd29yZA", "authorization=Basic%20***"),
    ("Authorization: abcdef123456", "Authorization: ***"),
    ("sent Bearer ll_9f8e7d6c5b and Basic dXNlcjpwYXNz", "sent Bearer *** and Basic ***"),
])
def test_credentials_are_hidden_by_shape(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize("prose", [
    "sign in: send `Authorization: Bearer <API token>`",
    "basic authentication failed for the account",
    "Bearer authentication is required",
    "the Authorization header is missing",
    "code 1234 in team [red]",
])
def test_prose_is_left_alone(redactor: Redactor, prose: str) -> None:
    assert redactor(prose) == prose


def test_a_json_key_file_hides_its_parts_and_json_stays_json() -> None:
    key = json.dumps({"type": "service_account", "private_key_id": "a1b2c3d4e5f6",
                      "private_key": "-----BEGIN KEY-----\nMIIBVQIBADAN\n-----END KEY-----\n",
                      "client_email": "bot@proj.iam.gserviceaccount.com"})
    found = Redactor()
    found.add([key])
    assert "a1b2c3d4e5f6" in encodings(key)
    shown = found(json.dumps({"error": "bad key a1b2c3d4e5f6",
                              "echo": "-----BEGIN KEY-----\nMIIBVQIBADAN\n-----END KEY-----\n"}))
    assert json.loads(shown) == {"error": "bad key ***", "echo": "***"}
    assert found("share it with bot@proj.iam.gserviceaccount.com") == \
        "share it with bot@proj.iam.gserviceaccount.com"


def test_what_the_process_decrypts_it_hides() -> None:
    token = secrets.encrypt({"api_token": "only-in-the-store-5678"})
    assert secrets.redact("x only-in-the-store-5678") == "x ***"
    assert secrets.redact_stored(f"y {base64.b64encode(b'me:only-in-the-store-5678').decode()}",
                                 token) == "y ***"
    assert secrets.redact_value({"a": ["only-in-the-store-5678", 3]}) == {"a": ["***", 3]}


def test_log_lines_are_redacted_for_every_logger_and_handler(
        caplog: pytest.LogCaptureFixture) -> None:
    REDACTOR.add(["log-secret-9876"])
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(b"bot@example.com:log-secret-9876").decode()
    logging.getLogger("jira").error("invalid server_info: %s", {"auth": f"Basic {basic}"})
    logging.getLogger("atlassian.rest_client").debug("HTTP: Response text -> %s",
                                                     "token log-secret-9876")
    try:
        raise RuntimeError("refused log-secret-9876")
    except RuntimeError:
        logging.getLogger("learnloop.any").exception("failed")
    assert "log-secret-9876" not in caplog.text and basic not in caplog.text
    assert "invalid server_info: {'auth': 'Basic ***'}" in caplog.text
    assert "RuntimeError: refused ***" in caplog.text
    made = logging.makeLogRecord({"msg": "made elsewhere %s", "args": ("log-secret-9876",)})
    assert RedactingFilter().filter(made) and made.getMessage() == "made elsewhere ***"
