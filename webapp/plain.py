"""A tool's error in plain words for a page: one headline a person can act on, the raw text
(redacted) kept apart for a folded-away "technical detail"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.secrets import redact

_HOST = (re.compile(r"host='([^']+)'"), re.compile(r"Host (\S+?) (?:contains|is)"),
         re.compile(r"https?://([^/\s:'\"]+)"))
# (pattern of the raw text, headline; {host} is the address it names)
_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), h) for p, h in (
        (r"Failed to parse|InvalidURL|Invalid URL|MissingSchema|No connection adapters|"
         r"LocationParseError|InvalidSchema|URL has an invalid label",
         "the address is not a valid web address: correct the URL in the settings"),
        (r"NameResolutionError|Name or service not known|nodename nor servname|getaddrinfo failed"
         r"|Failed to resolve|No address associated|name resolution|Name does not resolve",
         "{host} could not be found: check the address is spelled right and that this machine "
         "can reach it"),
        (r"Connection refused|ConnectionRefusedError|NewConnectionError",
         "nothing answered at {host}: check the address and that the service is running"),
        (r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLError|SSL:",
         "the secure connection to {host} failed: its certificate could not be verified"),
        (r"timed out|Timeout", "{host} did not answer in time: try again later, or allow a "
                               "longer timeout in the settings"),
        (r"Max retries exceeded|ConnectionError|RemoteDisconnected|Connection aborted|"
         r"Connection reset|ProtocolError",
         "could not reach {host}: check the address and the network"),
    ))
_TECHNICAL = re.compile(r"\w+(?:Error|Exception)\b|Traceback|ConnectionPool\(|object at 0x|"
                        r"\[Errno|<\w+[ .]")


@dataclass(frozen=True)
class Problem:
    """What went wrong: `headline` in plain words, `detail` the raw text when it differs."""

    headline: str
    detail: str | None = None


def _host(text: str) -> str:
    for pattern in _HOST:
        found = pattern.search(text)
        if found:
            return found.group(1).strip("'\",")
    return "the tool"


def _prefix(text: str) -> str:
    """What the message says before its raw part ("Connection failed: Jira"), if anything."""
    first = _TECHNICAL.search(text)
    head = text[:first.start()] if first else ""
    head = re.split(r"HTTPS?ConnectionPool|Failed to parse", head)[0]
    return head.strip().rstrip(":").strip()


def plain(text: str | None) -> Problem:
    """`text` (an exception's message, a tool's answer) as a headline and a folded detail."""
    raw = redact(str(text or "")).strip()
    if not raw:
        return Problem("something went wrong, without a message")
    for pattern, headline in _KNOWN:
        if pattern.search(raw):
            prefix = _prefix(raw)
            words = headline.format(host=_host(raw))
            return Problem(f"{prefix}: {words}" if prefix else words[:1].upper() + words[1:],
                           raw)
    if _TECHNICAL.search(raw) or len(raw) > 300:
        prefix = _prefix(raw)
        words = "the tool answered with an error; the technical detail below says which"
        return Problem(f"{prefix}: {words}" if prefix else words[:1].upper() + words[1:], raw)
    return Problem(raw)
