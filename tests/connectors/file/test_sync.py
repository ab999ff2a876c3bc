"""Pulling a file into the store: batches, cursor, quarantine, deletions, and the real SiP file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from core.connections import add_connection
from core.contract import ItemRecord, Problem
from core.model import Item, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync

MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate", "actual_effort": "Spent",
       "planned_due": "Due", "actual_end": "Done", "segments": ["Type"]}
HEAD = "Key,Summary,Type,Estimate,Spent,Due,Done\n"


def _rows(n: int) -> list[str]:
    return [f"A-{i},task {i},{'Bug' if i % 2 else 'Story'},{i % 4 + 1},{i % 3 + 1},"
            f"2025-01-{i % 28 + 1:02d},2025-02-{i % 28 + 1:02d}" for i in range(n)]


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_batches_of_a_thousand_with_the_cursor_on_the_last_only(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + "\n".join(_rows(2500)) + "\nA-x,bad,Bug,0,,,\n")
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    batches = list(conn.pull(None))
    assert [len(b.items) + len(b.problems) for b in batches] == [1000, 1000, 501]
    assert all(b.snapshot for b in batches)
    assert [b.cursor is None for b in batches] == [True, True, False]
    cursor = batches[-1].cursor
    assert cursor is not None and set(cursor) >= {"sha256", "mtime"}
    assert len(batches[-1].problems) == 1
    assert list(conn.pull(cursor)) == []  # unchanged file: nothing
    remapped = FileConnector(FileConfig(path=str(p)), {**MAP, "title": "Type"})
    assert list(remapped.pull(cursor)), "a changed mapping reads the same bytes again"


def test_sync_end_to_end_quarantines_reconciles_and_never_duplicates(engine: Engine,
                                                                     tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    rows = _rows(30)
    p.write_text(HEAD + "\n".join(rows) + "\nA-98,bad,Bug,4,,someday,\nA-0,again,Bug,1,,,\n")
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "plan", {"path": str(p)}, MAP)
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    report = run_sync(engine, "plan", conn)
    assert (report.created, report.quarantined) == (30, 2)
    assert _count(engine, Item) == 30
    with unit_of_work(engine) as s:
        quarantined = {q.locator: q.reason for q in s.scalars(select(QuarantinedRow))}
    assert quarantined == {"plan.csv row 32": "column 'Due': unparseable date 'someday'",
                           "plan.csv row 33": "duplicate id 'A-0' (first at row 2)"}
    again = run_sync(engine, "plan", conn)
    assert (again.created, again.updated, again.batches) == (0, 0, 0)
    p.write_text(HEAD + "\n".join(rows) + "\n")  # touched: read again, same items
    same = run_sync(engine, "plan", conn)
    assert (same.created, same.updated, same.unchanged, same.deleted) == (0, 0, 30, 0)
    assert _count(engine, Item) == 30 and _count(engine, QuarantinedRow) == 0
    p.write_text(HEAD + "\n".join(rows[1:]) + "\n")  # A-0 deleted from the file
    third = run_sync(engine, "plan", conn)
    assert (third.deleted, third.created) == (1, 0)
    assert _count(engine, Item) == 30
    assert _count(engine, Item, Item.deleted.is_(True), Item.external_id == "A-0") == 1
    p.write_text(HEAD + "\n".join(rows) + "\n")  # and back
    fourth = run_sync(engine, "plan", conn)
    assert (fourth.created, fourth.updated, fourth.deleted) == (0, 1, 0)
    assert _count(engine, Item, Item.deleted.is_(True)) == 0


def test_the_real_sip_file_every_row_accounted_for(shared_data: Path) -> None:
    path = shared_data / "sip-effort-estimates" / "Sip-task-info.csv"
    conn = FileConnector(FileConfig(path=str(path)), {
        "id": "TaskNumber", "title": "Summary", "planned_estimate": "HoursEstimate",
        "actual_effort": "HoursActual", "status": "StatusCode",
        "segments": "ProjectCode,Category,SubCategory"})
    items: list[ItemRecord] = []
    problems: list[Problem] = []
    for batch in conn.pull(None):
        items += batch.items
        problems += batch.problems
    duplicates = [p for p in problems if p.reason.startswith("duplicate id")]
    assert len(items) == 10_266 and len(items) + len(duplicates) == 12_299
    assert problems == duplicates
    assert len({i.external_id for i in items}) == 10_266
    first = next(i for i in items if i.external_id == "1735")
    assert first.planned_estimate == 14.0 and first.actual_effort == 1.75
    assert first.status == "done" and first.segments == {
        "ProjectCode": "PC2", "Category": "Development", "SubCategory": "Enhancement"}
    assert {i.status for i in items} == {"done", "cancelled", "open"}


def test_the_real_sip_dates_file_parses_every_date(shared_data: Path) -> None:
    path = shared_data / "sip-effort-estimates" / "est-act-dates.csv"
    conn = FileConnector(FileConfig(path=str(path)), {
        "id": "TaskNumber", "estimated_at": "EstimateOn", "actual_start": "StartedOn",
        "actual_end": "CompletedOn"})
    batches = list(conn.pull(None))
    items = [i for b in batches for i in b.items]
    problems = [p for b in batches for p in b.problems]
    assert len(items) == 10_266 and len(problems) == 12_299 - 10_266
    assert all(p.reason.startswith("duplicate id") for p in problems)
    estimated = [i.estimated_at for i in items if i.estimated_at is not None]
    assert len(estimated) == len(items)
    assert min(estimated).year == 2004 and max(estimated).year == 2014
