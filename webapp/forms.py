"""Install forms rendered from a connector's config model, and form input turned back into config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.errors import ConfigError


@dataclass
class FormField:
    """One input of an install form, from one property of the config model's JSON schema."""

    name: str
    label: str
    description: str
    kind: str  # text | password | number | checkbox | list
    required: bool
    value: str
    secret: bool


def _kind(prop: Mapping[str, Any]) -> str:
    if prop.get("format") == "password" or prop.get("writeOnly"):
        return "password"
    types = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", [])}
    if "boolean" in types:
        return "checkbox"
    if types & {"integer", "number"}:
        return "number"
    if "array" in types:
        return "list"
    return "text"


def fields_of(model: type[BaseModel], current: Mapping[str, Any] | None = None) -> list[FormField]:
    """The form inputs for `model`, filled with `current` values; secrets are never filled."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind = _kind(prop)
        value: Any = (current or {}).get(name, prop.get("default", ""))
        if kind == "password":
            value = ""
        elif kind == "list":
            value = ", ".join(str(v) for v in (value or []))
        elif value is None:
            value = ""
        out.append(FormField(name=name, label=prop.get("title", name), kind=kind,
                             description=prop.get("description", ""), required=name in required,
                             value=str(value), secret=kind == "password"))
    return out


def config_from_form(model: type[BaseModel], form: Mapping[str, Any],
                     keep_secrets: bool = False) -> dict[str, Any]:
    """Config values from submitted form fields (strings), ready for the model to validate.

    Blank optional fields fall back to the model's default; a blank secret is left out when
    editing (`keep_secrets`), so the stored one stays.

    Raises:
        ConfigError: naming a required field left blank.
    """
    values: dict[str, Any] = {}
    for f in fields_of(model):
        raw = form.get(f.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if f.kind == "checkbox":
            values[f.name] = raw is not None and text not in ("", "off", "false")
        elif f.kind == "list":
            if text:
                values[f.name] = [part.strip() for part in text.split(",") if part.strip()]
        elif text:
            values[f.name] = text
        elif f.required and not (f.secret and keep_secrets):
            raise ConfigError(f"{f.label} is required")
    return values
