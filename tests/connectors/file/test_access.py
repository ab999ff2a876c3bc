"""File access: the web app and the API reach only allowed directories; only regular files of
a capped size are read; learnloop writes and deletes only the files it created."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from connectors.file.client import read_source
from connectors.file.owned import MANIFEST
from core.connections import validate_config
from core.contract import FIELDS, Intent
from core.errors import ConfigError, InputError
from core.model import Connection
from core.store import unit_of_work
from webapp import security
from webapp.app import create_app

PASSWORD = "a long enough password"
MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate"}
PLAN = "Key,Summary,Estimate\nA-1,one,3\nA-2,two,5\n"


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    allowed, other = tmp_path / "allowed", tmp_path / "shared"
    allowed.mkdir()
    other.mkdir()
    monkeypatch.setenv("LEARNLOOP_FILE_ROOTS", f"{allowed}{os.pathsep}{other}")
    (allowed / "plan.csv").write_text(PLAN)
    return allowed, other


@pytest.fixture
def admin(engine: Engine) -> TestClient:
    with unit_of_work(engine) as s:
        security.create_user(s, "admin@example.com", PASSWORD, "admin")
    client = TestClient(create_app(engine))
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD,
                                     "csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    return client


def _create(client: TestClient, **config: str) -> tuple[int, str]:
    """POST /api/connections with an admin's API token."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with unit_of_work(engine) as s:
        user = s.scalars(select(security.User)).one()
        _, secret = security.create_token(s, user, "test")
    name = f"c{abs(hash(tuple(config.items())))}"
    r = client.post("/api/connections", headers={"Authorization": f"Bearer {secret}"},
                    json={"kind": "file", "name": name, "config": config, "mapping": MAP})
    return r.status_code, r.text


def test_the_api_refuses_paths_outside_the_allowed_directories(
        admin: TestClient, roots: tuple[Path, Path], tmp_path: Path, engine: Engine) -> None:
    allowed, shared = roots
    outside = tmp_path / "outside.csv"
    outside.write_text(PLAN)
    (allowed / "link.csv").symlink_to(outside)
    (allowed / "escape").symlink_to(tmp_path)
    for config in ({"path": "/etc/passwd", "delimiter": ":"},
                   {"path": str(allowed / ".." / "outside.csv")},
                   {"path": str(allowed / "link.csv")},
                   {"path": str(allowed / "escape" / "outside.csv")},
                   {"path": "../outside.csv"},
                   {"path": str(allowed / "plan.csv"), "output_path": str(tmp_path / "x.csv")}):
        code, text = _create(admin, **config)
        assert code == 422, (config, text)
        assert "must be inside" in text and str(allowed) in text and "Traceback" not in text
    assert _create(admin, path="plan.csv")[0] == 201, "relative: in the first allowed directory"
    (shared / "q.csv").write_text(PLAN)
    assert _create(admin, path=str(shared / "q.csv"), output_path=str(shared / "q.out.csv"))[0] \
        == 201
    with unit_of_work(engine) as s:
        paths = sorted(c.config["path"] for c in s.scalars(select(Connection)))
    assert paths == [str((allowed / "plan.csv").resolve()), str((shared / "q.csv").resolve())]


def test_an_edit_on_the_admin_page_is_confined_too(admin: TestClient, roots: tuple[Path, Path],
                                                   engine: Engine) -> None:
    assert _create(admin, path="plan.csv")[0] == 201
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        conn_id, before = conn.id, dict(conn.config)
    page = admin.get(f"/admin/connections/{conn_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = admin.post(f"/admin/connections/{conn_id}/config",
                   data={"csrf_token": token.group(1), "path": "/etc/passwd"})
    assert r.status_code == 200 and "must be inside" in r.text
    with unit_of_work(engine) as s:
        assert s.get_one(Connection, conn_id).config == before


def test_the_default_allowed_directory_is_files_under_the_home(
        learnloop_home: Path, tmp_path: Path) -> None:
    inside = learnloop_home / "files" / "plan.csv"
    with pytest.raises(ConfigError, match="must be inside"):
        validate_config(FileConnector, {"path": str(tmp_path / "plan.csv")}, confined=True)
    assert validate_config(FileConnector, {"path": str(inside)}, confined=True)
    # The operator's own CLI names any path, as the quickstart does.
    assert validate_config(FileConnector, {"path": "/etc/passwd", "delimiter": ":"})


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.csv"
    os.mkfifo(fifo)
    caught: list[BaseException] = []
    reader = threading.Thread(target=lambda: _catch(caught, str(fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO must not hang"
    assert isinstance(caught[0], InputError) and "named pipe" in str(caught[0])
    with pytest.raises(InputError, match="is a device"):
        read_source("/dev/zero")
    with pytest.raises(InputError, match="is a directory"):
        read_source(str(tmp_path))


def _catch(out: list[BaseException], path: str) -> None:
    try:
        read_source(path)
    except BaseException as exc:  # handed to the test thread
        out.append(exc)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNLOOP_FILE_MAX_MB", "0.001")
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN + "A-3,three,2\n" * 200)
    health = FileConnector(FileConfig(path=str(plan)), MAP).check()
    assert not health.ok
    assert health.message.endswith(f"plan.csv: {plan.stat().st_size:,} bytes is larger than "
                                   "the 1,000 bytes a file may have (LEARNLOOP_FILE_MAX_MB)")
    plan.write_text(PLAN)
    assert FileConnector(FileConfig(path=str(plan)), MAP).check().ok


def _deliver(conn: FileConnector) -> list[bool]:
    return [d.ok for d in conn.deliver([Intent(1, "A-1", FIELDS, {"forecast_p80": 4.0})])]


def test_a_file_learnloop_did_not_write_is_never_replaced_chmodded_or_deleted(
        tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN)
    important = tmp_path / "important.csv"
    important.write_text("keep me\n")
    important.chmod(0o644)
    conn = FileConnector(FileConfig(path=str(plan), output_path=str(important)), MAP)
    results = conn.deliver([Intent(1, "A-1", FIELDS, {"forecast_p80": 4.0})])
    assert not results[0].ok and "was not written by learnloop" in (results[0].error or "")
    assert not conn.check().ok and "not written by learnloop" in conn.check().message
    assert conn.install().problems
    report = conn.uninstall()
    assert report.removed == [] and "did not write it" in report.problems[0]
    assert important.read_text() == "keep me\n"
    assert stat.S_IMODE(important.stat().st_mode) == 0o644


def test_learnloop_deletes_its_own_copy_and_adopts_one_from_before_the_manifest(
        tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN)
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    assert _deliver(conn) == [True]
    copy = tmp_path / "plan.learnloop.csv"
    assert copy.name in (tmp_path / MANIFEST).read_text()
    (tmp_path / MANIFEST).unlink()  # a copy written by the previous release
    assert _deliver(conn) == [True], "a copy with learnloop's columns is learnloop's"
    assert conn.uninstall().removed == [str(copy)]
    assert not copy.exists() and not (tmp_path / MANIFEST).exists() and plan.exists()
