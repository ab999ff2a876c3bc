"""Secrets: encrypted at rest with a key outside the database, never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import String, Text, select
from sqlalchemy.engine import Engine

from core import secrets
from core.connections import add_connection, build_connector, validate_config
from core.errors import ConfigError
from core.model import Base
from core.store import unit_of_work
from tests.fakes import FakeConnector

TOKEN = "tok-very-secret-1234"


def test_round_trip_and_key_file_mode(learnloop_home: Path) -> None:
    token = secrets.encrypt({"api_token": TOKEN})
    assert token and TOKEN not in token
    assert secrets.decrypt(token) == {"api_token": TOKEN}
    mode = stat.S_IMODE(os.stat(learnloop_home / "secret.key").st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("key", ["fernet", "a long passphrase"])
def test_env_key_is_used(key: str, monkeypatch: pytest.MonkeyPatch, learnloop_home: Path) -> None:
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", Fernet.generate_key().decode() if key == "fernet" else key)
    token = secrets.encrypt({"x": "y"})
    assert secrets.decrypt(token) == {"x": "y"}
    assert not (learnloop_home / "secret.key").exists()
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", "another key")
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        secrets.decrypt(token)


def test_no_plaintext_secret_anywhere_in_the_store(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "f", {"api_token": TOKEN}, {"id": "key"})
        connector = build_connector(conn, FakeConnector)
    assert connector.config.api_token.get_secret_value() == TOKEN  # type: ignore[attr-defined]
    assert TOKEN not in repr(connector.config) and TOKEN not in str(connector.config)
    with engine.connect() as c:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, String | Text) or "JSON" in repr(column.type):
                    for (value,) in c.execute(select(column)):
                        assert TOKEN not in str(value), f"{table.name}.{column.name}"


def test_invalid_config_names_field_not_value() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(FakeConnector, {"items": "many", "api_token": TOKEN})
    assert "items" in str(err.value) and TOKEN not in str(err.value)


def test_redact() -> None:
    assert secrets.redact(f"401 for {TOKEN}", {"api_token": TOKEN}) == "401 for ***"
    assert secrets.secret_field_names(FakeConnector.config_model) == ["api_token"]
