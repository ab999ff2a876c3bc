"""A template linked to a file connection is written beside the copy (so the demo's accepted
proposals become applied), replaced by each version, and removed on uninstall; a file
learnloop did not write is never touched."""

from __future__ import annotations

import csv
from pathlib import Path

from connectors.file import FileConnector
from connectors.file.config import FileConfig
from core.contract import TEMPLATE, Intent
from core.testing.payloads import payload_for


def _connector(tmp_path: Path) -> FileConnector:
    plan = tmp_path / "plan.csv"
    plan.write_text("Key,Estimate\nT-1,4\n", encoding="utf-8")
    return FileConnector(FileConfig(path=str(plan)), {"id": "Key", "planned_estimate": "Estimate"})


def test_versions_replace_each_other_and_uninstall_removes_the_table(tmp_path: Path) -> None:
    conn = _connector(tmp_path)
    first = conn.deliver([Intent(1, "bugfix", TEMPLATE, payload_for(TEMPLATE, "one"))])
    again = conn.deliver([Intent(2, "bugfix", TEMPLATE, payload_for(TEMPLATE, "two"))])
    assert first[0].ok and again[0].ok and first[0].tool_ref == again[0].tool_ref
    table = tmp_path / "plan.learnloop-templates.csv"
    with table.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["Template"], r["Version"], r["Plan P80"]) for r in rows] == [("bugfix", "2", "12")]
    assert "[two]" in rows[0]["Why"]
    report = conn.uninstall()
    assert str(table) in report.removed and not table.exists()


def test_a_foreign_file_at_the_templates_path_is_kept(tmp_path: Path) -> None:
    conn = _connector(tmp_path)
    table = tmp_path / "plan.learnloop-templates.csv"
    table.write_text("mine\n", encoding="utf-8")
    (got,) = conn.deliver([Intent(1, "bugfix", TEMPLATE, payload_for(TEMPLATE, "x"))])
    assert not got.ok and "not written by learnloop" in (got.error or "")
    assert conn.uninstall().problems and table.read_text(encoding="utf-8") == "mine\n"
