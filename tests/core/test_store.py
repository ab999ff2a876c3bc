"""The store: migrations, the default location, clear URL errors, portable timestamps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from core.errors import ConfigError
from core.model import Base, Connection
from core.settings import get_settings
from core.store import alembic_config, make_engine, migrate, open_store, unit_of_work


def _revision(engine: Engine) -> str | None:
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def test_migrations_apply_on_an_empty_database_and_a_second_open_is_a_no_op(
        empty_url: str) -> None:
    first = make_engine(empty_url)
    assert inspect(first).get_table_names() == []
    migrate(first)
    head = ScriptDirectory.from_config(alembic_config(first)).get_current_head()
    assert head is not None and _revision(first) == head
    assert set(Base.metadata.tables) <= set(inspect(first).get_table_names())
    with unit_of_work(first) as s:
        s.add(Connection(kind="fake", name="kept"))
    first.dispose()

    second = make_engine(empty_url)
    statements: list[str] = []
    event.listen(second, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_: statements.append(stmt.strip().split()[0].upper()))
    migrate(second)
    assert statements  # it did look at the version table
    assert not {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"} & set(statements)
    assert _revision(second) == head
    with unit_of_work(second) as s:
        assert s.scalars(select(Connection.name)).all() == ["kept"]
    second.dispose()
    open_store(empty_url).dispose()  # and through the public entry point, once more


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []


def test_default_store_is_sqlite_under_home(learnloop_home: Path) -> None:
    assert get_settings().resolved_database_url() == f"sqlite:///{learnloop_home / 'learnloop.db'}"
    engine = open_store()
    assert engine.url.get_backend_name() == "sqlite"
    assert Path(str(engine.url.database)) == learnloop_home / "learnloop.db"
    assert (learnloop_home / "learnloop.db").is_file()
    assert "connections" in inspect(engine).get_table_names()
    engine.dispose()


def test_configured_url_wins_over_the_default(learnloop_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    engine = open_store()
    assert Path(str(engine.url.database)) == tmp_path / "elsewhere.db"
    assert not (learnloop_home / "learnloop.db").exists()
    engine.dispose()


@pytest.mark.parametrize("url", [
    "not a url at all",
    "postgresql://user:hunter2@host:notaport/db",
    "nodialect://user:hunter2@host/db",
    "postgresql+nodriver://user:hunter2@host/db",
    "postgresql://user:hunter2@127.0.0.1:1/none",
])
def test_bad_url_is_one_config_error_line_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_store(url)
    message = str(err.value)
    assert message and "\n" not in message and "hunter2" not in message


def test_timestamps_round_trip_as_aware_utc(engine: Engine) -> None:
    local = dt.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2025, 3, 2, 8, 30)
    with unit_of_work(engine) as s:
        s.add(Connection(kind="fake", name="aware", last_sync_at=local))
        s.add(Connection(kind="fake", name="naive", last_sync_at=naive))
    with unit_of_work(engine) as s:
        got = {n: t for n, t in s.execute(select(Connection.name, Connection.last_sync_at))}
        later = s.scalars(select(Connection.name).where(
            Connection.last_sync_at > dt.datetime(2025, 3, 1, 10, 30, tzinfo=dt.UTC))).all()
    aware = got["aware"]
    assert aware == local and aware.tzinfo == dt.UTC and aware.hour == 10
    assert aware.microsecond == 123456
    assert got["naive"] == naive.replace(tzinfo=dt.UTC)  # naive values are taken as UTC
    assert later == ["naive"]  # compared in SQL as UTC instants


def test_a_non_datetime_is_refused(engine: Engine) -> None:
    bad: Any = "2025-03-01"
    with pytest.raises(StatementError, match="expected datetime"), unit_of_work(engine) as s:
        s.add(Connection(kind="fake", name="bad", last_sync_at=bad))
