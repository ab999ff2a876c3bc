"""Install forms rendered from a connector's config model, and form input turned back into config."""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
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
    placeholder: str = ""


# Words a field name is made of that people write in capitals (or otherwise than `title()`).
WORDS = {"url": "URL", "jql": "JQL", "api": "API", "id": "ID", "json": "JSON", "csv": "CSV",
         "xlsx": "XLSX", "iana": "IANA", "http": "HTTP", "https": "HTTPS", "oauth": "OAuth",
         "soql": "SOQL", "crm": "CRM"}
URL_NAMES = ("url", "endpoint", "base_url", "site", "instance_url")


def label_of(model: type[BaseModel], name: str) -> str:
    """A person's label for a config field: the model's own `title`, else its name in words
    ("api_token" -> "API token", "jql" -> "JQL"), never pydantic's generated "Api Token"."""
    info = model.model_fields.get(name)
    if info is not None and info.title:
        return info.title
    words = [WORDS.get(w, w) for w in name.split("_") if w]
    if not words:
        return name
    first = words[0]
    words[0] = first if first in WORDS.values() else first[:1].upper() + first[1:]
    return " ".join(words)


def number_text(value: Any) -> str:
    """A number as a person writes it: 10, 0.25, 1/3600 (never 0.0002777777777777778)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.4g}"
    if float(text) == value:
        return text
    ratio = Fraction(value).limit_denominator(100_000)
    if ratio.numerator == 1 and math.isclose(float(ratio), value, rel_tol=1e-12):
        return f"1/{ratio.denominator}"
    return f"{value:.6g}"


def _number_value(text: str) -> float | str:
    """A submitted number; "1/3600" (how a default is shown) is read as the fraction."""
    if "/" in text:
        top, _, bottom = text.partition("/")
        try:
            return float(Fraction(int(top.strip()), int(bottom.strip())))
        except (ValueError, ZeroDivisionError):
            return text
    return text


def url_problem(name: str, value: str) -> str | None:
    """Why `value` is not a web address (None when it is one): http(s), a host, no spaces."""
    text = value.strip()
    parts = urllib.parse.urlsplit(text)
    host = parts.hostname or ""
    if (parts.scheme not in ("http", "https") or not host or " " in text
            or not all(c.isalnum() or c in ".-_[]:" for c in host)):
        return (f"{name} must be a web address such as https://yourteam.atlassian.net; "
                f"{text!r} is not one")
    return None


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
        default = prop.get("default")
        value: Any = (current or {}).get(name, default if default is not None else "")
        placeholder = ""
        if kind == "password":
            value = ""
        elif kind == "list":
            value = ", ".join(str(v) for v in (value or []))
        elif kind == "number":
            # Shown as a person writes it; the field is text so that "1/3600" is allowed.
            value = number_text(value)
            placeholder = f"default {number_text(default)}" if default is not None else ""
        elif value is None:
            value = ""
        out.append(FormField(name=name, label=label_of(model, name), kind=kind,
                             description=prop.get("description", ""), required=name in required,
                             value=str(value), secret=kind == "password",
                             placeholder=placeholder))
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
        elif text and f.kind == "number":
            values[f.name] = _number_value(text)
        elif text:
            values[f.name] = text
        elif f.required and not (f.secret and keep_secrets):
            raise ConfigError(f"{f.label} is required")
    check_urls(model, values)
    return values


def check_urls(model: type[BaseModel], values: Mapping[str, Any]) -> None:
    """Refuse a web-address field (url, endpoint, ..._url) that holds no web address.

    Raises:
        ConfigError: naming the field and what a web address looks like.
    """
    for name, value in values.items():
        if (name in URL_NAMES or name.endswith("_url")) and isinstance(value, str) and value:
            problem = url_problem(label_of(model, name), value)
            if problem:
                raise ConfigError(problem)
