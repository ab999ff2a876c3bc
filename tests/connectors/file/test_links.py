"""The file connector's link and enrollment columns: links to other rows, enrollments with
their test, arm, assignment, unit, date and split, and clear errors for bad mappings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from core.connections import add_connection
from core.errors import ConfigError, InputError
from core.links import account_of, inherited_segments
from core.model import Enrollment, Item, ItemLink
from core.store import unit_of_work
from core.sync import run_sync

CRM = """Id,Kind,Company,Email,Industry,Seniority,Variant,Sequence,Assignment,Sent,Split
ACME,company,,,finance,,,,,,
ann@acme,contact,ACME,,,VP,,,,,
D-1,deal,ACME,ann@acme,,,,,,,
E-1,enrollment,,ann@acme,,,B,seq1,random,2025-03-02,A=50;B=50
E-2,enrollment,GLOBEX,,,,A,seq1,rep choice,03/04/2025,
"""
MAP = {"id": "Id", "kind": "Kind", "company": "Company", "contact": "Email",
       "segments": ["Industry", "Seniority"], "variant": "Variant", "test": "Sequence",
       "assignment": "Assignment", "assigned_at": "Sent", "split": "Split"}


def _sync(engine: Engine, path: Path, mapping: dict[str, object]) -> object:
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "crm", {"path": str(path)}, mapping)
    return run_sync(engine, "crm", FileConnector(FileConfig(path=str(path)), mapping))


def test_link_columns_point_at_other_rows_and_enrollments_are_read(engine: Engine,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(CRM)
    report = _sync(engine, path, MAP)
    assert report.quarantined == 0  # type: ignore[attr-defined]
    with unit_of_work(engine) as s:
        ids = {e: i for e, i in s.execute(select(Item.external_id, Item.id))}
        got = {(link.from_external_id, link.relation, link.to_external_id,
                link.to_item_id is not None) for link in s.scalars(select(ItemLink))}
        segments = inherited_segments(s, [ids["D-1"], ids["E-1"]])
        accounts = account_of(s, [ids["D-1"], ids["E-1"], ids["E-2"]])
        enrolled = {s.get_one(Item, e.item_id).external_id: e for e in s.scalars(
            select(Enrollment))}
    assert got == {("ann@acme", "company", "ACME", True), ("D-1", "company", "ACME", True),
                   ("D-1", "contact", "ann@acme", True), ("E-1", "contact", "ann@acme", True),
                   ("E-2", "company", "GLOBEX", False)}  # GLOBEX is not a row: pending
    assert segments[ids["D-1"]] == {"Industry": "finance", "Seniority": "VP"}
    assert segments[ids["E-1"]] == {"Seniority": "VP", "Industry": "finance"}
    assert accounts == {ids["D-1"]: ids["ACME"], ids["E-1"]: ids["ACME"]}
    e1, e2 = enrolled["E-1"], enrolled["E-2"]
    assert (e1.test, e1.arm, e1.random, e1.expected_split) == \
        ("seq1", "B", True, {"A": 50.0, "B": 50.0})
    assert e1.assigned_at == dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    assert (e2.arm, e2.random, e2.assigned_at) == ("A", False,
                                                   dt.datetime(2025, 3, 4, tzinfo=dt.UTC))
    assert set(enrolled) == {"E-1", "E-2"}  # rows without an arm are not enrollments


def test_an_unreadable_split_quarantines_the_row_with_its_number(engine: Engine,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(CRM.replace("A=50;B=50", "half and half"))
    report = _sync(engine, path, MAP)
    (problem,) = report.problems  # type: ignore[attr-defined]
    assert problem.locator == "crm.csv row 5" and "expected split 'half and half'" in \
        problem.reason


def test_bad_link_and_enrollment_mappings_are_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(CRM)
    with pytest.raises(InputError, match=r"missing column 'Parent' \(mapped to parent\)"):
        list(FileConnector(FileConfig(path=str(path)), {**MAP, "parent": "Parent"}).pull(None))
    with pytest.raises(ConfigError, match="map either arm or variant, not both"):
        list(FileConnector(FileConfig(path=str(path)), {**MAP, "arm": "Variant"}).pull(None))
    no_arm = {k: v for k, v in MAP.items() if k != "variant"}
    with pytest.raises(ConfigError, match="map its arm too"):
        list(FileConnector(FileConfig(path=str(path)), no_arm).pull(None))
    health = FileConnector(FileConfig(path=str(path)), {**MAP, "deal": "Deal"}).check()
    assert not health.ok and "missing column 'Deal' (mapped to deal)" in health.message
