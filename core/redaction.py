"""One redactor for every exit: known secrets in every encoding, and credentials by shape.

A secret reaches a person or a file in the forms a client sends it: in clear, URL-encoded,
JSON- or HTML-escaped, base64 alone or as HTTP Basic `user:secret`. The redactor knows every
secret this process has held in clear (`core.secrets` teaches it on each decryption) and hides
all of those forms; it also hides any `Authorization` header value and `Basic x` / `Bearer x`
credential, known or not. Installed as a log-record factory and a handler filter, it redacts
every log line, third-party libraries' included.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4  # shorter values are too common to hide safely (and too weak to matter)
_SCHEMES = ("basic", "bearer", "token", "digest", "negotiate")
_AUTH_HEADER = re.compile(
    r"(?i:\b(?:proxy-)?authorization\b)(\\?[\"']?\s*[:=]\s*\\?[\"']?)"
    r"(?:((?i:basic|bearer|token|digest|negotiate))(\s+|%20))?([A-Za-z0-9+/=._~%:-]+)")
_SCHEME_VALUE = re.compile(r"\b((?i:basic|bearer))(\s+|%20)([A-Za-z0-9+/=._~-]{4,})")


def _base64_runs(shortest: int) -> re.Pattern[str]:
    """Runs of base64 long enough to hold the shortest known secret."""
    least = max(8, -(-shortest * 4 // 3))
    return re.compile("[A-Za-z0-9+/_-]{" + str(least) + ",}(?:={1,2}|(?:%3D){1,2})?")


def _credential_like(value: str) -> bool:
    """Not a word of prose: long enough and not letters only (or very long)."""
    if value.lower() in _SCHEMES:
        return False
    return len(value) >= 16 or (len(value) >= 6 and not value.isalpha())


def _decoded_basic(value: str) -> str | None:
    """What a Basic credential decodes to, when it is printable `user:secret`."""
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    return text if ":" in text and text.isprintable() else None


def encodings(secret: str) -> set[str]:
    """Every text form of `secret` a client or a tool's echo may carry (base64 forms are
    found by decoding, whatever the user name or the alignment: see `_base64_run`)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             html.escape(secret), repr(secret)[1:-1]}
    if secret[:1] in "{[":  # a JSON key file: its secret parts may be echoed on their own
        try:
            leaves = _secret_leaves(json.loads(secret))
        except ValueError:
            leaves = []
        for leaf in leaves:
            forms.update({leaf, json.dumps(leaf)[1:-1], quote(leaf, safe="")})
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _secret_leaves(node: Any, key: str = "") -> list[str]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _secret_leaves(v, str(k))]
    if isinstance(node, list):
        return [leaf for v in node for leaf in _secret_leaves(v, key)]
    words = ("key", "secret", "token", "password")
    if isinstance(node, str) and len(node) >= 8 and any(w in key.lower() for w in words):
        return [node]
    return []


class Redactor:
    """Hides known secrets and credential-shaped text; thread-safe, secrets only added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._needles: re.Pattern[str] | None = None
        self._raw: re.Pattern[str] | None = None
        self._runs = _base64_runs(MIN_LENGTH)

    def add(self, secrets: Iterable[str]) -> None:
        """Know more secrets."""
        new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_LENGTH}
        with self._lock:
            if new <= self._secrets:
                return
            self._secrets |= new
            if not self._secrets:
                return
            needles: set[str] = set()
            for secret in self._secrets:
                needles |= encodings(secret)
            ordered = sorted(needles, key=len, reverse=True)
            self._needles = re.compile("|".join(map(re.escape, ordered)))
            self._raw = re.compile("|".join(map(re.escape, sorted(
                self._secrets, key=len, reverse=True))))
            self._runs = _base64_runs(min(map(len, self._secrets)))
        install_logging()

    def __call__(self, text: str) -> str:
        """`text` with every secret and credential replaced by ***."""
        if not text:
            return text
        needles, raw, runs = self._needles, self._raw, self._runs
        if raw is not None:  # first: a whole base64 run goes, not the part a needle matches
            text = runs.sub(lambda m: _base64_run(m, raw), text)
        if needles is not None:
            text = needles.sub(MASK, text)
        text = _AUTH_HEADER.sub(_header, text)
        return _SCHEME_VALUE.sub(_scheme, text)


def _header(m: re.Match[str]) -> str:
    sep, scheme, space, value = m.group(1), m.group(2), m.group(3), m.group(4)
    if value == MASK or not (scheme or _credential_like(value)):
        return m.group(0)
    head = m.group(0)[: m.start(1) - m.start(0)] + sep
    return head + (f"{scheme}{space}" if scheme else "") + MASK


def _scheme(m: re.Match[str]) -> str:
    scheme, space, value = m.group(1), m.group(2), m.group(3)
    basic = scheme.lower() == "basic" and _decoded_basic(value) is not None
    return f"{scheme}{space}{MASK}" if basic or _credential_like(value) else m.group(0)


def _base64_run(m: re.Match[str], raw: re.Pattern[str]) -> str:
    """A run that decodes (at any alignment) to text holding a known secret is hidden."""
    run = m.group(0).replace("%3D", "=")
    for offset in range(4):
        part = run[offset:].rstrip("=")
        part += "=" * (-len(part) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                text = decode(part).decode("latin-1")
            except (binascii.Error, ValueError):
                continue
            if raw.search(text):
                return MASK
    return m.group(0)


REDACTOR = Redactor()


def redact_value(value: Any) -> Any:
    """A JSON-like value with every string in it redacted (keys kept)."""
    if isinstance(value, str):
        return REDACTOR(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class RedactedRecord(logging.LogRecord):
    """A log record whose message, traceback and stack are redacted when formatted."""

    def getMessage(self) -> str:
        return REDACTOR(super().getMessage())

    @property
    def exc_text(self) -> str | None:
        return self.__dict__.get("_exc_text")

    @exc_text.setter
    def exc_text(self, value: str | None) -> None:
        self.__dict__["_exc_text"] = None if value is None else REDACTOR(value)

    @property
    def stack_info(self) -> str | None:
        return self.__dict__.get("_stack_info")

    @stack_info.setter
    def stack_info(self, value: str | None) -> None:
        self.__dict__["_stack_info"] = None if value is None else REDACTOR(value)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record in place (for records made elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message and any traceback; never drops a record."""
        if isinstance(record, RedactedRecord):
            return True
        record.msg, record.args = REDACTOR(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = REDACTOR(record.exc_text)
        return True


LIBRARY_LOGGERS = ("jira", "atlassian", "urllib3", "requests", "gspread", "google",
                   "googleapiclient", "httpx", "uvicorn", "uvicorn.error", "uvicorn.access",
                   "apscheduler", "sqlalchemy")
_installed = threading.Lock()
_done = False
FILTER = RedactingFilter()


def install_logging() -> None:
    """Redact every log line of this process: records are made as `RedactedRecord`, and the
    root's and the client libraries' handlers carry `RedactingFilter` (idempotent)."""
    global _done
    with _installed:
        if not _done and logging.getLogRecordFactory() is logging.LogRecord:
            logging.setLogRecordFactory(RedactedRecord)
        _done = True
        for name in ("", *LIBRARY_LOGGERS):
            for handler in logging.getLogger(name).handlers:
                if FILTER not in handler.filters:
                    handler.addFilter(FILTER)
