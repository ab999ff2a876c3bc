"""Check the emulator's traffic against Google's own discovery documents (the copies that ship
inside google-api-python-client): every route must be a real method, every request and
response body must use only the fields its schema declares, with the declared types."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

TYPES = {"string": str, "boolean": bool, "array": list, "object": dict}


@functools.cache
def _documents() -> list[tuple[str, dict[str, Any]]]:
    import googleapiclient

    base = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    return [(prefix, json.loads((base / name).read_text()))
            for prefix, name in (("/", "sheets.v4.json"), ("/drive/v3/", "drive.v3.json"))]


@functools.cache
def _methods() -> list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]]:
    out = []
    for prefix, doc in _documents():
        def walk(resource: dict[str, Any], doc: dict[str, Any] = doc, prefix: str = prefix) -> None:
            for method in resource.get("methods", {}).values():
                path = prefix + (method.get("flatPath") or method["path"])
                pattern = re.escape(path)
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+?", pattern)
                out.append((method["httpMethod"], re.compile(f"^{pattern}$"), method, doc))
            for sub in resource.get("resources", {}).values():
                walk(sub)
        walk(doc)
    return out


def find(method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The discovery method (and its document) that serves `method path`, if any."""
    for http, pattern, spec, doc in _methods():
        if http == method and pattern.match(path):
            return spec, doc
    return None


def _check(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str,
           errors: list[str]) -> None:
    if "$ref" in schema:
        schema = doc["schemas"][schema["$ref"]]
    kind = schema.get("type")
    if value is None or kind in (None, "any"):
        return
    if kind in ("integer", "number"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{where}: expected {kind}, got {type(value).__name__}")
        return
    if kind == "string" and isinstance(value, int | float):
        return  # int64 and numbers as strings in JSON: Google accepts either
    expected = TYPES.get(kind)
    if expected and not isinstance(value, expected):
        errors.append(f"{where}: expected {kind}, got {type(value).__name__}")
        return
    if kind == "array":
        for i, item in enumerate(value):
            _check(item, schema.get("items", {}), doc, f"{where}[{i}]", errors)
    elif kind == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props and key in props:
                _check(item, props[key], doc, f"{where}.{key}", errors)
            elif extra is not None:
                _check(item, extra, doc, f"{where}.{key}", errors)
            elif props is not None:
                errors.append(f"{where}: unknown field {key!r}")


def validate(method: str, path: str, request: Any, response: Any) -> list[str]:
    """Problems with one exchange (empty when it matches the discovery documents)."""
    found = find(method, path)
    if found is None:
        return [f"{method} {path}: no such method in the discovery documents"]
    spec, doc = found
    errors: list[str] = []
    if request and "request" in spec:
        _check(request, spec["request"], doc, f"{method} {path} request", errors)
    if response is not None and "response" in spec:
        _check(response, spec["response"], doc, f"{method} {path} response", errors)
    return errors
