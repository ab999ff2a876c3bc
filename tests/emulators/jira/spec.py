"""Check the Jira emulator's answers against Atlassian's own OpenAPI document
(`../shared/specs/jira/platform/openapi-v3.json`): the route must exist with that method, and a
JSON response must have the declared types and every required field of its schema."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "jira" / "platform" / \
    "openapi-v3.json"
TYPES = {"string": str, "boolean": bool, "array": list, "object": dict}


def available() -> bool:
    """Whether the spec is here (CI and sessions have ../shared; a user's clone does not)."""
    return SPEC.is_file()


@functools.cache
def _spec() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(SPEC.read_text())
    return result


@functools.cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for path in _spec()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        out.append((re.compile(f"^{pattern}$"), path))
    return out


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = _spec()["components"]["schemas"][name]
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return schema


def _check(value: Any, schema: dict[str, Any], where: str, errors: list[str], depth: int = 0) -> None:
    schema = _resolve(schema)
    kind = schema.get("type")
    if value is None or depth > 6 or kind is None:
        return
    if kind in ("integer", "number"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{where}: expected {kind}, got {type(value).__name__}")
        return
    expected = TYPES.get(kind)
    if expected and not isinstance(value, expected):
        errors.append(f"{where}: expected {kind}, got {type(value).__name__}")
        return
    if kind == "array":
        for i, item in enumerate(value[:20]):
            _check(item, schema.get("items", {}), f"{where}[{i}]", errors, depth + 1)
    elif kind == "object":
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: required field {name!r} missing")
        for name, item in value.items():
            if name in schema.get("properties", {}):
                _check(item, schema["properties"][name], f"{where}.{name}", errors, depth + 1)


def validate(method: str, path: str, status: int, body: Any) -> list[str]:
    """Problems with one answer of the emulator (v2 paths are checked as their v3 twins)."""
    twin = re.sub(r"^/rest/api/2/", "/rest/api/3/", path)
    template = next((p for pattern, p in _routes() if pattern.match(twin)), None)
    if template is None:
        return [f"{method} {path}: not in the official spec"]
    operation = _spec()["paths"][template].get(method.lower())
    if operation is None:
        return [f"{method} {path}: the spec has no {method} for {template}"]
    response = operation.get("responses", {}).get(str(status))
    if response is None:
        return [f"{method} {path}: the spec does not list status {status}"]
    schema = (response.get("content", {}).get("application/json") or {}).get("schema")
    errors: list[str] = []
    if schema is not None and body is not None:
        _check(body, schema, f"{method} {template} {status}", errors)
    return errors
