"""Secrets: encrypted at rest with a key outside the database, never shown or stored in clear."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core import outbox, secrets
from core.connections import add_connection, build_connector
from core.contract import FIELDS, Batch, Connector, Delivery, Intent
from core.errors import ConfigError
from core.model import Base, Connection, WriteIntent, utcnow
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector

TOKEN = "tok-very-secret-1234"


def test_round_trip_with_a_0600_key_file_that_is_reused(learnloop_home: Path) -> None:
    token = secrets.encrypt({"api_token": TOKEN})
    assert token and TOKEN not in token
    key_file = learnloop_home / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_bytes()
    assert secrets.decrypt(token) == {"api_token": TOKEN}
    assert key_file.read_bytes() == key
    assert secrets.encrypt({}) is None and secrets.decrypt(None) == {}


def test_a_loose_key_file_is_tightened(learnloop_home: Path) -> None:
    learnloop_home.mkdir(parents=True)
    key_file = learnloop_home / "secret.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o644)
    secrets.load_key()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


@pytest.mark.parametrize("kind", ["fernet key", "passphrase"])
def test_the_environment_key_is_used(kind: str, monkeypatch: pytest.MonkeyPatch,
                                     learnloop_home: Path) -> None:
    value = Fernet.generate_key().decode() if kind == "fernet key" else "correct horse battery"
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", value)
    token = secrets.encrypt({"x": "y"})
    assert secrets.decrypt(token) == {"x": "y"}
    assert not (learnloop_home / "secret.key").exists()
    if kind == "fernet key":  # used as the key itself, not as a passphrase
        assert Fernet(value.encode()).decrypt(str(token).encode()) == b'{"x": "y"}'
    other = Fernet.generate_key().decode() if kind == "fernet key" else "incorrect horse"
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", other)
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        secrets.decrypt(token)


def test_a_replaced_key_file_gives_a_config_error(learnloop_home: Path) -> None:
    token = secrets.encrypt({"x": "y"})
    (learnloop_home / "secret.key").write_bytes(Fernet.generate_key())
    with pytest.raises(ConfigError, match="cannot be decrypted") as err:
        secrets.decrypt(token)
    assert "\n" not in str(err.value)


class _Echoing:
    """A tool whose errors echo the token back (as some APIs do with a bad request URL)."""

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        raise RuntimeError(f"401 for https://tool.example/api?token={TOKEN}")
        yield Batch()

    def __init__(self, raising: bool = True) -> None:
        self.raising = raising

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        if self.raising:
            raise RuntimeError(f"403 forbidden for token {TOKEN}")
        return [Delivery(i.id, ok=False, error=f"400: bad header Bearer {TOKEN}") for i in intents]


def test_no_plaintext_secret_anywhere_in_the_store(engine: Engine, db_url: str) -> None:
    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "f", {"api_token": TOKEN}, {"id": "key"})
        assert "api_token" not in conn.config and conn.secrets
        connector = build_connector(conn, FakeConnector)
        outbox.enqueue(s, conn.id, "F-1", FIELDS, {"forecast_p80": 3.0})
    config = connector.config  # type: ignore[attr-defined]
    assert isinstance(config, FakeConfig) and config.api_token is not None
    assert config.api_token.get_secret_value() == TOKEN
    with pytest.raises(RuntimeError):  # errors that echo the token are stored redacted
        run_sync(engine, "f", _Echoing())  # type: ignore[arg-type]
    for raising in (True, False):
        with unit_of_work(engine) as s:
            s.execute(update(WriteIntent).values(next_attempt_at=utcnow()))
        report = outbox.deliver(engine, lambda _c, r=raising: _Echoing(r))  # type: ignore[arg-type, misc]
        assert report.retrying == 1

    with engine.connect() as c:
        assert "***" in str(c.scalar(select(Connection.last_error)))
        assert "Bearer ***" in str(c.scalar(select(WriteIntent.last_error)))
        scanned = 0
        for table in Base.metadata.sorted_tables:
            for row in c.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    assert TOKEN not in str(value), f"{table.name}.{column.name}"
                    scanned += value is not None
    assert scanned > 20
    if engine.dialect.name == "sqlite":  # and not in the file's bytes either (WAL included)
        engine.dispose()
        path = Path(db_url.removeprefix("sqlite:///"))
        for part in path.parent.glob(path.name + "*"):
            assert TOKEN.encode() not in part.read_bytes(), part.name


def test_config_repr_and_json_never_show_the_secret() -> None:
    config = FakeConfig(api_token=TOKEN)  # type: ignore[arg-type]
    connector: Connector = FakeConnector(config)
    for shown in (repr(config), str(config), config.model_dump_json(), repr(vars(connector))):
        assert TOKEN not in shown


def test_redact() -> None:
    found = {"api_token": TOKEN, "password": "pw-42", "pin": "123"}
    assert secrets.redact(f"401 for {TOKEN} with pw-42", found) == "401 for *** with ***"
    assert secrets.redact("code 1234", found) == "code 1234"  # too short to redact safely
    assert secrets.secret_field_names(FakeConfig) == ["api_token"]
    stored = secrets.encrypt({"api_token": TOKEN})
    assert secrets.redact_stored(f"x {TOKEN}", stored) == "x ***"
    # Once decrypted in this process, a secret is hidden in any text, whoever's it is.
    assert secrets.redact_stored(f"x {TOKEN}", None) == "x ***"
