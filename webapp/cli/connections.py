"""`learnloop connections add|list|test|set-secret|remove`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from connectors import registry
from connectors.runtime import test_connection
from core import secrets
from core.connections import (
    add_connection,
    build_connector,
    env_overrides,
    get_connection,
    merge_secrets,
    remove_connection,
    validate_config,
)
from core.errors import ConfigError
from core.model import Connection, Item, QuarantinedRow
from core.secrets import secret_field_names
from core.store import unit_of_work
from webapp.cli.common import JSON_HELP, emit_json, err, fmt_time, out, parse_pairs, store

app = typer.Typer(help="Install, list, test and remove connections to tools.", no_args_is_help=True)


def _value(raw: str) -> Any:
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


@app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help="Connector: file, jira, ...")],
    name: Annotated[str, typer.Argument(help="A name for this connection.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config KEY=VALUE.")] = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="Mapping FIELD=Column (segments=ColA,ColB).")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="A secret config field to prompt for (hidden input).")] = None,
    secret_file: Annotated[list[str] | None, typer.Option(
        "--secret-file", help="A secret read from a file, NAME=PATH (e.g. a JSON key file).")]
    = None,
    schedule: Annotated[str | None, typer.Option(help="Sync schedule, e.g. 'every 15m'.")] = None,
    commit_on: Annotated[list[str] | None, typer.Option(
        "--commit-on", help="When a plan counts as committed: RULE for every kind, or "
        "KIND=RULE; rules: start, creation, first_seen, stage:<status>.")] = None,
    kind_map: Annotated[list[str] | None, typer.Option(
        "--kind-map", help="Learn items of one kind with another's, KIND=AS_KIND "
        "(e.g. milestone=task).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Add a connection: validate its config and mapping, store secrets encrypted."""
    factory = registry.get(kind)
    secret_names = set(secret_field_names(factory.config_model))
    config: dict[str, Any] = {k: _value(v) for k, v in parse_pairs(set_, "--set").items()}
    leaked = sorted(secret_names & set(config))
    if leaked:
        env = f"LEARNLOOP_{kind.upper()}__{leaked[0].upper()}"
        raise ConfigError(f"pass {', '.join(leaked)} with --secret {leaked[0]} (prompted, hidden) "
                          f"or the environment variable {env}, not on the command line")
    for field in secret or []:
        if field not in secret_names:
            raise ConfigError(f"{field!r} is not a secret field of {kind} "
                              f"(secret fields: {', '.join(sorted(secret_names)) or 'none'})")
        if field not in env_overrides(kind):
            config[field] = typer.prompt(field, hide_input=True)
    for field, path in parse_pairs(secret_file, "--secret-file").items():
        if field not in secret_names:
            raise ConfigError(f"{field!r} is not a secret field of {kind} "
                              f"(secret fields: {', '.join(sorted(secret_names)) or 'none'})")
        try:
            config[field] = Path(path).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--secret-file {field}: cannot read {path}: {exc.strerror}") from None
    mapping: dict[str, Any] = dict(parse_pairs(map_, "--map"))
    if "segments" in mapping:
        mapping["segments"] = [c.strip() for c in mapping["segments"].split(",") if c.strip()]
    scope: dict[str, Any] = {}
    rules = [r for r in commit_on or [] if "=" not in r]
    per_kind = parse_pairs([r for r in commit_on or [] if "=" in r], "--commit-on")
    if len(rules) > 1 or (rules and per_kind):
        raise ConfigError("--commit-on: give one RULE for every kind, or KIND=RULE pairs "
                          "(use *=RULE for the rest)")
    if rules or per_kind:
        scope["commit_on"] = rules[0] if rules else per_kind
    if kind_map:
        scope["kind_map"] = dict(parse_pairs(kind_map, "--kind-map"))
    with unit_of_work(store()) as s:
        conn = add_connection(s, factory, name, config, mapping, schedule, scope)
        # What can be checked without reaching a remote tool (the file is there, the mapped
        # columns are in its header): a problem is one line and nothing is stored.
        preflight = getattr(build_connector(conn, factory), "preflight", None)
        problem = preflight() if callable(preflight) else None
        if problem:
            raise ConfigError(f"{kind} connection {name} not added: {problem}")
        result = {"name": conn.name, "kind": conn.kind, "id": conn.id}
    if as_json:
        emit_json(result)
    else:
        out.print(f"added {kind} connection {name}; next: learnloop sync {name}")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List connections with their health, last sync and item counts."""
    rows: list[dict[str, Any]] = []
    with unit_of_work(store()) as s:
        items: dict[int, int] = dict(s.execute(select(Item.connection_id, func.count()).where(
            Item.deleted.is_(False)).group_by(Item.connection_id)).all())
        bad: dict[int, int] = dict(s.execute(select(QuarantinedRow.connection_id, func.count())
                             .group_by(QuarantinedRow.connection_id)).all())
        for c in s.scalars(select(Connection).order_by(Connection.name)):
            rows.append({"name": c.name, "kind": c.kind, "health": c.health,
                         "last_sync_at": c.last_sync_at, "last_error": c.last_error,
                         "items": items.get(c.id, 0), "quarantined": bad.get(c.id, 0),
                         "schedule": c.schedule})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no connections yet; add one with: learnloop connections add KIND NAME --set ...")
    for r in rows:
        out.print(f"{r['name']} ({r['kind']}): {r['health']}, {r['items']} items, "
                  f"{r['quarantined']} quarantined rows, last sync {fmt_time(r['last_sync_at'])}"
                  + (f"\n  last error: {r['last_error']}" if r["last_error"] else ""))


@app.command("test")
def test(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check that a connection reaches its tool; exit 1 when it does not."""
    health = test_connection(store(), name)
    if as_json:
        emit_json({"name": name, "ok": health.ok, "message": health.message,
                   "missing_permissions": health.missing_permissions})
    elif health.ok:
        out.print(f"{name}: ok, {health.message}")
    else:
        err.print(f"{name}: not working: {health.message}")
    if not health.ok:
        raise typer.Exit(1)


def _secret_fields(kind: str, fields: list[str]) -> set[str]:
    names = set(secret_field_names(registry.get(kind).config_model))
    for field in fields:
        if field not in names:
            raise ConfigError(f"{field!r} is not a secret field of {kind} "
                              f"(secret fields: {', '.join(sorted(names)) or 'none'})")
    return names


@app.command("set-secret")
def set_secret(
    name: Annotated[str, typer.Argument(help="The connection.")],
    fields: Annotated[list[str], typer.Argument(help="Secret field(s) to set, e.g. api_token.")],
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="Read the (single) secret from this file instead of a prompt.")]
    = None,
) -> None:
    """Replace secrets of a connection (prompted, hidden), keeping everything synced.

    After the secret key changed, re-entering the secrets repairs the connection.
    """
    engine = store()
    with unit_of_work(engine) as s:
        kind = get_connection(s, name).kind
    _secret_fields(kind, fields)
    if from_file is not None and len(fields) != 1:
        raise ConfigError("--from-file sets one secret field; name exactly one")
    given: dict[str, Any] = {}
    for field in fields:
        if from_file is not None:
            try:
                given[field] = from_file.expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"--from-file: cannot read {from_file}: {exc.strerror}") from None
        else:
            given[field] = typer.prompt(field, hide_input=True)
    with unit_of_work(engine) as s:
        conn = get_connection(s, name)
        factory = registry.get(conn.kind)
        model = validate_config(factory, {**conn.config, **merge_secrets(conn, factory, given)})
        _, secret_values = secrets.split_config(model)
        from_env = set(env_overrides(factory.name)) - set(given)
        conn.secrets = secrets.encrypt({k: v for k, v in secret_values.items()
                                        if k not in from_env})
    out.print(f"{name}: {', '.join(fields)} saved (encrypted); next: learnloop connections "
              f"test {name}")


@app.command("remove")
def remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a connection and everything synced from it."""
    engine = store()
    with unit_of_work(engine) as s:
        get_connection(s, name)
    if not yes and os.isatty(0):
        typer.confirm(f"remove {name} and every item synced from it?", abort=True)
    with unit_of_work(engine) as s:
        remove_connection(s, name)
    out.print(f"removed {name}")
