"""Connections: add, get, remove; clear errors for names, configs and mappings; env overrides."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.connections import (
    add_connection,
    build_connector,
    get_connection,
    load_config,
    remove_connection,
    validate_config,
    validate_mapping,
)
from core.errors import ConfigError, NotFoundError
from core.model import Connection, Deviation, Event, Item, JobRun, WriteIntent
from core.outbox import enqueue
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector

MAPPING = {"id": "key", "planned_estimate": "estimate"}


def test_add_get_and_remove_with_everything_synced_from_it(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "jira-prod", {"items": 4, "api_token": "t0k3n"},
                              MAPPING, schedule="*/15 * * * *")
        assert conn.id is not None
    with unit_of_work(engine) as s:
        conn = get_connection(s, "jira-prod")
        assert (conn.kind, conn.mapping, conn.schedule) == ("fake", MAPPING, "*/15 * * * *")
        assert conn.config["items"] == 4 and conn.health == "unknown" and conn.cursor is None
        config = load_config(conn, FakeConnector)
        assert isinstance(config, FakeConfig) and config.api_token is not None
        assert config.api_token.get_secret_value() == "t0k3n"
        connector = build_connector(conn, FakeConnector)
    run_sync(engine, "jira-prod", connector)
    with unit_of_work(engine) as s:
        item_id = s.scalars(select(Item.id)).first()
        enqueue(s, conn.id, "F-1", "fields", {"x": 1}, item_id=item_id)
    with unit_of_work(engine) as s:
        remove_connection(s, "jira-prod")
    with unit_of_work(engine) as s:
        for model in (Connection, Item, Event, Deviation, WriteIntent, JobRun):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__
        with pytest.raises(NotFoundError):
            get_connection(s, "jira-prod")


def test_a_name_is_taken_once(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "dup", {}, MAPPING)
    with pytest.raises(ConfigError, match="'dup' already exists"), unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "dup", {"items": 3}, MAPPING)
    with pytest.raises(ConfigError, match="name of 1 to 200"), unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "", {}, MAPPING)
    with unit_of_work(engine) as s:
        assert s.scalars(select(Connection.config)).all() == [FakeConfig().model_dump(
            mode="json", exclude={"api_token"})]


def test_an_unknown_name_lists_the_known_ones(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        with pytest.raises(NotFoundError, match="none yet"):
            get_connection(s, "jira")
        add_connection(s, FakeConnector, "sheets", {}, MAPPING)
        add_connection(s, FakeConnector, "hubspot", {}, MAPPING)
    with pytest.raises(NotFoundError) as err, unit_of_work(engine) as s:
        remove_connection(s, "jira")
    assert str(err.value) == "unknown connection 'jira' (known: hubspot, sheets)"


def test_invalid_config_names_each_field_but_never_the_value() -> None:
    secret = "tok-leaks-if-echoed"
    with pytest.raises(ConfigError) as err:
        validate_config(FakeConnector, {"items": "many-items", "failure_rate": 7,
                                        "api_token": ["not", secret]})
    message = str(err.value)
    assert message.startswith("invalid fake config: ") and "\n" not in message
    for name in ("items", "failure_rate", "api_token"):
        assert name in message
    for value in ("many-items", "7", secret):
        assert value not in message


def test_an_environment_override_wins(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "env", {"items": 7}, MAPPING)
    monkeypatch.setenv("LEARNLOOP_FAKE__ITEMS", "3")
    monkeypatch.setenv("LEARNLOOP_OTHER__BATCH_SIZE", "5")  # another connector's: ignored
    with unit_of_work(engine) as s:
        connector = build_connector(get_connection(s, "env"), FakeConnector)
    assert isinstance(connector, FakeConnector)
    assert (connector.config.items, connector.config.batch_size) == (3, 4)
    assert len(connector.tool.items) == 3
    monkeypatch.setenv("LEARNLOOP_FAKE__ITEMS", "three")
    with pytest.raises(ConfigError, match="items"):
        validate_config(FakeConnector, {"items": 7})


def test_a_connector_of_another_kind_is_refused(engine: Engine) -> None:
    class OtherConnector(FakeConnector):
        name = "other"

    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "f", {}, MAPPING)
        with pytest.raises(ConfigError, match="is a fake connection, not other"):
            build_connector(conn, OtherConnector)


def test_mapping_names_known_fields_and_the_required_ones() -> None:
    assert validate_mapping(FakeConnector, {"id": "key", "segments": {"team": "Team"}}) == {
        "id": "key", "segments": {"team": "Team"}}
    with pytest.raises(ConfigError) as err:
        validate_mapping(FakeConnector, {"id": "key", "estimat": "Estimate", "zzz": "Z"})
    assert "estimat, zzz" in str(err.value) and "planned_estimate" in str(err.value)
    for mapping in ({}, {"id": ""}, {"title": "Summary"}):
        with pytest.raises(ConfigError, match=r"missing required field.*id"):
            validate_mapping(FakeConnector, mapping)


def test_an_invalid_mapping_stores_nothing(engine: Engine) -> None:
    with pytest.raises(ConfigError), unit_of_work(engine) as s:
        add_connection(s, FakeConnector, "bad", {}, {"title": "Summary"})
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Connection)) == 0


def test_environment_overrides_are_not_stored(engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNLOOP_FAKE__API_TOKEN", "env-token-123456")
    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "envonly", {"items": 2}, MAPPING)
        assert conn.secrets is None and "api_token" not in conn.config
        built = build_connector(conn, FakeConnector)
        assert built.config.api_token.get_secret_value() == "env-token-123456"  # type: ignore[attr-defined]
        stored = s.scalar(select(Connection.secrets).where(Connection.name == "envonly"))
        assert stored is None
