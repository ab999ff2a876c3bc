"""Shared fixtures: an isolated LEARNLOOP_HOME, and a store on SQLite and (if set) PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from core.model import Base
from core.store import open_store

PG_URL = os.environ.get("LEARNLOOP_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def learnloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LEARNLOOP_HOME and no database or secret key from outside."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEARNLOOP_HOME", str(home))
    for var in list(os.environ):
        if var.startswith("LEARNLOOP_") and var not in ("LEARNLOOP_HOME",
                                                       "LEARNLOOP_TEST_DATABASE_URL"):
            monkeypatch.delenv(var)
    return home


def _admin(sql: str) -> None:
    assert PG_URL
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(sql))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A PostgreSQL database of this test process's own (two suites on one server never
    share one), migrated once and dropped at the end."""
    if not PG_URL:
        pytest.skip("LEARNLOOP_TEST_DATABASE_URL is not set: PostgreSQL run skipped")
    name = f"learnloop_test_{worker_id}_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    open_store(url).dispose()
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as c:
        c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL: SQLite in tmp_path, or this worker's PostgreSQL emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    _truncate(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The opened (migrated) store."""
    eng = open_store(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def use_store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point LEARNLOOP_DATABASE_URL at the test store, for code that opens it itself (CLI)."""
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", db_url)
    return db_url


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, present in CI and in a session's checkout; absent in a user's clone."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"{path} is not here (a user's clone has no ../shared): real-data test skipped")
    return path


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> Iterator[str]:
    """A database that has never been migrated: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    assert PG_URL
    base = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"learnloop_test_empty_{worker_id}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
