"""The store: migrations, the default location, portable timestamps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from core.errors import ConfigError
from core.model import Base, Connection
from core.store import make_engine, migrate, open_store, unit_of_work


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_second_open_is_a_no_op(db_url: str) -> None:
    first = open_store(db_url)
    with unit_of_work(first) as s:
        s.add(Connection(kind="fake", name="kept"))
    migrate(first)
    second = open_store(db_url)
    with unit_of_work(second) as s:
        assert s.scalars(select(Connection.name)).all() == ["kept"]


def test_default_store_is_sqlite_under_home(learnloop_home: Path) -> None:
    engine = open_store()
    assert engine.url.get_backend_name() == "sqlite"
    assert Path(str(engine.url.database)) == learnloop_home / "learnloop.db"
    assert (learnloop_home / "learnloop.db").exists()


def test_bad_url_is_one_line_without_password() -> None:
    with pytest.raises(ConfigError) as err:
        make_engine("not a url at all")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        open_store("postgresql://user:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(err.value) and "cannot open the store" in str(err.value)


def test_timestamps_round_trip_as_aware_utc(engine: Engine) -> None:
    local = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with unit_of_work(engine) as s:
        s.add(Connection(kind="fake", name="t", last_sync_at=local))
    with unit_of_work(engine) as s:
        value = s.scalars(select(Connection.last_sync_at)).one()
    assert value == local and value.tzinfo == dt.UTC and value.hour == 10
