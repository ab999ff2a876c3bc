"""The SQLite store file and its journals are private to the owner (0600), like the key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import select

from core.model import Connection
from core.store import open_store, unit_of_work


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_and_its_wal_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        db = tmp_path / "home" / "learnloop.db"
        engine = open_store(f"sqlite:///{db}")
        with unit_of_work(engine) as s:
            s.add(Connection(kind="fake", name="kept"))
            wal = db.with_name(db.name + "-wal")
            shm = db.with_name(db.name + "-shm")
            assert _mode(db) == 0o600
            assert wal.exists() and _mode(wal) == 0o600 and _mode(shm) == 0o600
        engine.dispose()
    finally:
        os.umask(old)


def test_a_store_left_readable_by_an_older_release_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "learnloop.db"
    open_store(f"sqlite:///{db}").dispose()
    os.chmod(db, 0o644)
    engine = open_store(f"sqlite:///{db}")
    assert _mode(db) == 0o600
    with unit_of_work(engine) as s:
        assert s.scalars(select(Connection)).all() == []
    engine.dispose()
