"""Open the store: create the engine, apply Alembic migrations, hand out sessions."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigError
from core.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
_lock = threading.Lock()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and the given engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) and tighten one made readable by others.

    SQLite gives its -wal, -shm and -journal files the mode of the database file; those left
    by an older release are tightened too. Files of another owner are left alone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for each in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
        try:
            info = each.stat()
            if info.st_uid == os.getuid() and info.st_mode & 0o077:
                os.chmod(each, 0o600)
        except OSError:  # gone meanwhile, or not ours to change
            continue


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for `url` (default: settings), creating the SQLite directory if needed.

    Raises:
        ConfigError: if the URL cannot be parsed.
    """
    url = url or get_settings().resolved_database_url()
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"LEARNLOOP_DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if not parsed.drivername.startswith("sqlite"):
            return create_engine(parsed, pool_pre_ping=True)
        if parsed.database and parsed.database != ":memory:" \
                and not parsed.database.startswith("file:"):
            _private_file(Path(parsed.database).expanduser())
        engine = create_engine(parsed, connect_args={"timeout": 30})
    except (NoSuchModuleError, ImportError) as exc:  # unknown dialect or its driver missing
        safe = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"cannot use the database URL {safe}: {exc}") from exc
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, safe from several processes)."""
    with _lock:
        command.upgrade(alembic_config(engine), "head")


def open_store(url: str | None = None) -> Engine:
    """Open (and migrate) the store at `url` or the configured one.

    Raises:
        ConfigError: if the database cannot be reached.
    """
    engine = make_engine(url)
    try:
        migrate(engine)
    except ConfigError:
        raise
    except Exception as exc:
        safe = engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"cannot open the store at {safe}: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One session, one transaction: committed on success, rolled back on error."""
    with sessions(engine)() as session, session.begin():
        yield session
