"""Create, read and remove connections; build a connector for one, secrets decrypted."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import measures, plans, secrets
from core.contract import Connector, ConnectorFactory
from core.errors import ConfigError, NotFoundError
from core.model import Connection
from core.settings import get_settings


def env_overrides(kind: str) -> dict[str, str]:
    """Config values from LEARNLOOP_<TOOL>__<FIELD> environment variables."""
    prefix = f"LEARNLOOP_{kind.upper()}__"
    return {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}


def validation_message(exc: ValidationError, what: str) -> str:
    """One line naming each invalid field, never echoing the values (they may be secrets)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(config)"
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(parts)


def validate_config(factory: ConnectorFactory, values: Mapping[str, Any],
                    confined: bool = False) -> BaseModel:
    """Validate raw config values (env overrides win) against the connector's model.

    Args:
        factory: the connector.
        values: raw config values.
        confined: the values come from the web app or the API, not the operator's shell:
            local paths must lie inside LEARNLOOP_FILE_ROOTS (the model's validators get
            them as the validation context `file_roots`).

    Raises:
        ConfigError: naming every invalid or missing field.
    """
    merged = {**values, **env_overrides(factory.name)}
    context = {"file_roots": get_settings().allowed_file_roots()} if confined else None
    try:
        return factory.config_model.model_validate(merged, context=context)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, f"{factory.name} config")) from exc


def validate_mapping(factory: ConnectorFactory, mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Check a field mapping names only known core fields and has the required ones.

    Raises:
        ConfigError: for an unknown core field or a missing required one.
    """
    known = {f.name for f in factory.mapping_fields}
    unknown = sorted(k for k in mapping if k not in known and k != "segments")
    if unknown:
        raise ConfigError(
            f"unknown mapping field(s) {', '.join(unknown)}; "
            f"{factory.name} maps: {', '.join(sorted(known | {'segments'}))}"
        )
    missing = [f.name for f in factory.mapping_fields if f.required and not mapping.get(f.name)]
    if missing:
        raise ConfigError(f"mapping is missing required field(s): {', '.join(missing)}")
    return dict(mapping)


def validate_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Check a connection's scope: its `kind_map` must map item kinds to kinds (strings),
    its `commit_on` name known commit rules (core.plans), for every kind or per kind.

    Raises:
        ConfigError: for a kind_map that is not a mapping of non-empty names, or an unknown
            commit rule.
    """
    raw = scope.get("kind_map")
    if raw is not None and (not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
            for k, v in raw.items())):
        raise ConfigError("scope kind_map must map item kinds to kinds, e.g. "
                          '{"milestone": "task"}')
    commit = scope.get("commit_on")
    if isinstance(commit, str):
        plans.validate_rule(commit)
    elif isinstance(commit, Mapping):
        for kind, rule in commit.items():
            plans.validate_rule(str(rule), str(kind))
    elif commit is not None:
        raise ConfigError("scope commit_on must be a rule (start, creation, first_seen, "
                          "stage:<status>) or a mapping of item kind -> rule")
    return dict(scope)


def validate_kinds(factory: ConnectorFactory, name: str, mapping: Mapping[str, Any],
                   scope: Mapping[str, Any] | None = None) -> None:
    """Check every mapped core field is used by a measure of the connection's kind of items.

    The kind is the connector's `item_kind` (task when it declares none) after the scope's
    `kind_map`; a mapping with a kind column is checked row by row by nobody here (its rows
    may be of several kinds).

    Raises:
        ConfigError: in one line naming the mapped field and the kind of items.
    """
    if mapping.get("kind"):
        return
    kind = str(getattr(factory, "item_kind", measures.TASK))
    fam = measures.family(kind, measures.kind_map(scope))
    mapped = [k for k, v in mapping.items() if v and k != "segments"]
    why = measures.check_mapping(fam, mapped)
    if why is not None:
        hint = ("; map a kind column (kind=COLUMN) if the rows are of another kind"
                if any(f.name == "kind" for f in factory.mapping_fields) else "")
        raise ConfigError(f"{factory.name} connection {name!r}: {why}{hint}")


def add_connection(
    session: Session,
    factory: ConnectorFactory,
    name: str,
    config: Mapping[str, Any],
    mapping: Mapping[str, Any] | None = None,
    schedule: str | None = None,
    scope: Mapping[str, Any] | None = None,
    confined: bool = False,
) -> Connection:
    """Validate and store a new connection, its secrets encrypted.

    Args:
        session: the store.
        factory: the connector.
        name: the connection's name.
        config: raw config values (secrets included; they are stored encrypted).
        mapping: core field -> tool field or column.
        schedule: its sync schedule.
        scope: what the connection covers; `kind_map` maps item kinds onto others so their
            items are learned from together (e.g. {"milestone": "task"}).
        confined: added through the web app or the API (see `validate_config`).

    Raises:
        ConfigError: for an invalid config, mapping or scope, a mapped field no measure of
            the connection's kind of items uses, or a name already taken.
    """
    if not name or len(name) > 200:
        raise ConfigError("a connection needs a name of 1 to 200 characters")
    if session.scalar(select(Connection.id).where(Connection.name == name)) is not None:
        raise ConfigError(f"a connection named {name!r} already exists")
    model = validate_config(factory, config, confined)
    checked_scope = validate_scope(scope or {})
    checked_mapping = validate_mapping(factory, mapping or {})
    validate_kinds(factory, name, checked_mapping, checked_scope)
    plain, secret_values = secrets.split_config(model)
    # Environment overrides apply when the connector runs; they are not stored with it.
    from_env = set(env_overrides(factory.name)) - set(config)
    plain = {k: v for k, v in plain.items() if k not in from_env}
    secret_values = {k: v for k, v in secret_values.items() if k not in from_env}
    conn = Connection(
        kind=factory.name,
        name=name,
        config=plain,
        secrets=secrets.encrypt(secret_values),
        mapping=checked_mapping,
        scope=checked_scope,
        schedule=schedule,
    )
    session.add(conn)
    session.flush()
    return conn


def unreadable_secrets(conn: Connection, factory: ConnectorFactory) -> list[str]:
    """The secret fields to re-enter because the stored secrets cannot be decrypted with the
    current key (it changed since they were saved); [] when they can be.

    The required secret fields are listed (all secret fields when none is required); values
    from LEARNLOOP_<TOOL>__<FIELD> environment variables need no re-entering.
    """
    if not conn.secrets or secrets.readable(conn.secrets) is not None:
        return []
    model = factory.config_model
    names = secrets.secret_field_names(model)
    required = [n for n in names if model.model_fields[n].is_required()] or names
    from_env = env_overrides(factory.name)
    return [n for n in required if n not in from_env]


def repair_message(names: list[str]) -> str:
    """The plain sentence saying which secrets to re-enter after the secret key changed."""
    return ("the stored secrets cannot be decrypted with the current secret key (it changed "
            f"since they were saved): re-enter {', '.join(names)} and save; the synced data "
            "is kept")


def merge_secrets(conn: Connection, factory: ConnectorFactory,
                  given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` config values over the stored secrets, ready to validate.

    When the stored secrets cannot be decrypted (the key changed), the re-entered ones
    replace them all and the connection, its items and history are kept.

    Raises:
        ConfigError: naming the secrets that must still be re-entered.
    """
    stored = secrets.readable(conn.secrets)
    if stored is None:
        missing = [n for n in unreadable_secrets(conn, factory) if not given.get(n)]
        if missing:
            raise ConfigError(repair_message(missing))
        stored = {}
    return {**stored, **given}


def get_connection(session: Session, name: str) -> Connection:
    """The connection called `name`.

    Raises:
        NotFoundError: naming the connections that do exist.
    """
    conn = session.scalar(select(Connection).where(Connection.name == name))
    if conn is None:
        names = session.scalars(select(Connection.name).order_by(Connection.name)).all()
        known = ", ".join(names) if names else "none yet; add one with `learnloop connections add`"
        raise NotFoundError(f"unknown connection {name!r} (known: {known})")
    return conn


def remove_connection(session: Session, name: str) -> None:
    """Delete a connection and everything synced from it."""
    session.delete(get_connection(session, name))


def load_config(conn: Connection, factory: ConnectorFactory) -> BaseModel:
    """The connection's validated config with its secrets decrypted (and known to the
    redactor, environment overrides included)."""
    config = validate_config(factory, {**conn.config, **secrets.decrypt(conn.secrets)})
    secrets.remember_config(config)
    return config


def build_connector(conn: Connection, factory: ConnectorFactory) -> Connector:
    """A ready connector instance for a stored connection."""
    if conn.kind != factory.name:
        raise ConfigError(f"connection {conn.name!r} is a {conn.kind} connection, not {factory.name}")
    return factory(load_config(conn, factory), conn.mapping)
