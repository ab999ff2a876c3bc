"""The demo workspace built once per test module (600 generated tasks and the outreach test),
and a crawler that walks every page a person reaches by following links."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import Engine

from core.store import open_store

HREF = re.compile(r"""<a\b[^>]*\bhref="([^"]+)\"""")
ATTRS = re.compile(r"""\b(?:value|title|aria-label|placeholder)="([^"]*)\"""")
REPRS = {
    "a dict": re.compile(r"\{'[^']*': "),
    "a list of floats": re.compile(r"\[-?\d+\.\d+, -?\d+\.\d+\]"),
    "None": re.compile(r"\bNone\b"),
    "an object repr": re.compile(r"object at 0x|<[a-zA-Z_.]+ object\b"),
    "a datetime repr": re.compile(r"datetime\.(?:datetime|date)\("),
    "a Decimal repr": re.compile(r"Decimal\("),
    "an exception repr": re.compile(r"\b[A-Z][A-Za-z]+(?:Error|Exception)\("),
}
LONG_FLOAT = re.compile(r"\d\.\d{5,}")
GROUPED = re.compile(r"/\d+(?=/|$)")
PER_SHAPE = 4
"""Pages of one shape (`/items/<id>`, `/items?kind=...`) walked per role."""


def build_demo(home: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Run `learnloop demo --no-serve --items 600` into `home`; the demo's store."""
    from webapp.demo import run_demo

    monkeypatch.setenv("LEARNLOOP_HOME", str(home))
    monkeypatch.delenv("LEARNLOOP_DATABASE_URL", raising=False)
    run_demo(items=600, serve=False)
    return open_store(f"sqlite:///{home / 'demo' / 'learnloop.db'}")


def visible(page: str) -> str:
    """What a person reads: text nodes and the values of form fields and tooltips."""
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    attrs = " ".join(ATTRS.findall(body))
    return html.unescape(re.sub(r"(?s)<[^>]+>", " ", body) + " " + attrs)


def problems(path: str, page: str) -> list[str]:
    """Python reprs and floats printed with more than four decimals on one page."""
    text = visible(page)
    found = [f"{path}: {what} in {m.group(0)!r} ...{text[max(0, m.start() - 60):m.end() + 20]!r}"
             for what, rx in REPRS.items() for m in [rx.search(text)] if m]
    m = LONG_FLOAT.search(text)
    if m:
        found.append(f"{path}: a float with more than four decimals "
                     f"{text[max(0, m.start() - 60):m.end() + 10]!r}")
    return found


def shape(path: str) -> str:
    """`/items/12` and `/items/40` are one shape; so are `/items?kind=a` and `?kind=b`."""
    parts = urlsplit(path)
    keys = ",".join(sorted(k.split("=")[0] for k in parts.query.split("&") if k))
    return GROUPED.sub("/#", parts.path) + ("?" + keys if keys else "")


def crawl(get: Callable[[str], tuple[int, str, str]], start: str = "/",
          limit: int = 400) -> tuple[list[str], list[str]]:
    """Follow every local link from `start` (a few pages per shape): the pages walked, and the
    problems found (a link not answering 200 or 3xx, a repr, a long float).

    `get(path)` answers (status, content type, body) without following redirects.
    """
    seen, queue, walked, bad = {start}, [start], [], []
    shapes: dict[str, int] = {}
    while queue and len(walked) < limit:
        path = queue.pop(0)
        status, kind, body = get(path)
        walked.append(path)
        if not (200 <= status < 400):
            bad.append(f"{path}: answered {status}")
            continue
        if status >= 300 or "html" not in kind:
            continue
        bad += problems(path, body)
        for href in HREF.findall(body):
            href = html.unescape(href)
            url = urlsplit(urljoin("http://t" + path, href))
            if url.netloc != "t" or href.startswith(("#", "javascript:")):
                continue
            target = url.path + (f"?{url.query}" if url.query else "")
            if target in seen or url.path in ("/logout",):
                continue
            seen.add(target)
            key = shape(target)
            shapes[key] = shapes.get(key, 0) + 1
            if shapes[key] <= PER_SHAPE:
                queue.append(target)
    return walked, bad
