"""The file connector on real-looking tables: encodings, formats, bad rows, write-back copy."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from core.connections import add_connection
from core.contract import FIELDS, Intent, ItemRecord, Problem
from core.errors import InputError
from core.model import Item, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from core.tabular import DateParser, parse_number

MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate", "actual_effort": "Spent",
       "planned_due": "Due", "actual_end": "Done", "segments": ["Type"]}


def _pull(path: Path, mapping: dict | None = None, **config: object) -> tuple[list[ItemRecord],
                                                                              list[Problem]]:
    conn = FileConnector(FileConfig(path=str(path), **config), mapping or MAP)
    items: list[ItemRecord] = []
    problems: list[Problem] = []
    for batch in conn.pull(None):
        items += batch.items
        problems += batch.problems
    return items, problems


def test_cp1252_file_reads_with_auto_encoding(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_bytes("Key;Summary;Type;Estimate;Spent;Due;Done\n"
                  "A-1;Caf\u00e9 \u2013 fix;Bug;4;5,5;02-Nov-04;16-Nov-04\n".encode("cp1252"))
    (item,), problems = _pull(p)
    assert problems == []
    assert item.title == "Caf\u00e9 \u2013 fix" and item.actual_effort == 5.5
    assert item.planned_due == dt.datetime(2004, 11, 2, tzinfo=dt.UTC)
    assert item.status == "done" and item.segments == {"Type": "Bug"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-04", dt.datetime(2025, 3, 4)), ("2025-03-04T10:30:00Z", dt.datetime(2025, 3, 4, 10, 30)),
    ("2025-03-04T12:30:00+02:00", dt.datetime(2025, 3, 4, 10, 30)), ("04-Mar-25", dt.datetime(2025, 3, 4)),
    ("Mar 4, 2025", dt.datetime(2025, 3, 4)), ("4 March 2025", dt.datetime(2025, 3, 4)),
    ("2025/03/04", dt.datetime(2025, 3, 4)), (45720, dt.datetime(2025, 3, 4)),
    (dt.date(2025, 3, 4), dt.datetime(2025, 3, 4)),
])
def test_date_formats(text: object, expected: dt.datetime) -> None:
    assert DateParser().parse(text) == expected.replace(tzinfo=dt.UTC)  # type: ignore[arg-type]


def test_day_first_is_inferred_per_column_and_timezone_applies() -> None:
    parser = DateParser(timezone="Europe/London")
    parser.learn(["03/04/2025", "25/04/2025"])
    assert parser.dayfirst is True
    assert parser.parse("03/04/2025") == dt.datetime(2025, 4, 2, 23, tzinfo=dt.UTC)
    us = DateParser()
    us.learn(["04/25/2025"])
    assert us.parse("03/04/2025").month == 3


@pytest.mark.parametrize(("text", "value"), [("1,234.5", 1234.5), ("1.234,5", 1234.5),
                                             ("1,5", 1.5), ("1,234", 1234.0), ("3 h", 3.0)])
def test_numbers(text: str, value: float) -> None:
    assert parse_number(text) == value


def test_bad_rows_are_problems_with_rows_and_good_rows_are_kept(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text("Key,Summary,Type,Estimate,Spent,Due,Done\n"
                 "A-1,ok,Bug,4,5,2025-01-02,2025-01-03\n"
                 "A-2,bad date,Bug,4,,31/02/2025,\n"
                 "A-3,zero,Bug,0,,2025-01-02,\n"
                 "A-4,negative,Bug,-2,,2025-01-02,\n"
                 "A-5,text,Bug,lots,,2025-01-02,\n"
                 "A-1,dup,Bug,4,,2025-01-02,\n"
                 ",no id,Bug,4,,2025-01-02,\n"
                 "A-6,ok,Story,2,,2025-01-09,\n")
    items, problems = _pull(p)
    assert [i.external_id for i in items] == ["A-1", "A-6"]
    got = {pr.locator: pr.reason for pr in problems}
    assert got == {
        "plan.csv row 3": "column 'Due': unparseable date '31/02/2025'",
        "plan.csv row 4": "column 'Estimate': estimate must be above 0, got 0",
        "plan.csv row 5": "column 'Estimate': estimate must be above 0, got -2",
        "plan.csv row 6": "column 'Estimate': not a number: 'lots'",
        "plan.csv row 7": "duplicate id 'A-1' (first at row 2)",
        "plan.csv row 8": "column 'Key': no id",
    }
    assert problems[0].raw["Summary"] == "bad date"


def test_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text("Key,Summary,Estimate\nA-1,x,3\n")
    with pytest.raises(InputError) as err:
        _pull(p)
    msg = str(err.value)
    assert msg.startswith("plan.csv: missing column 'Spent' (mapped to actual_effort)")
    assert "'Type' (mapped to segment Type)" in msg and "'Key', 'Summary', 'Estimate'" in msg
    assert "\n" not in msg


def test_wrong_configured_encoding_is_named(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_bytes("Key,Summary\nA-1,Café\n".encode("cp1252"))
    with pytest.raises(InputError, match=r"plan.csv: cannot be read as utf-8 \(byte 19"):
        _pull(p, {"id": "Key"}, encoding="utf-8")


def test_xlsx_with_dates_blank_header_and_title_rows(tmp_path: Path) -> None:
    p = tmp_path / "plan.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Project plan Q1"])
    ws.append([])
    ws.append(["Key", "Summary", None, "Estimate", "Due", "Done", "Spent", "Type"])
    ws.append(["X-1", "=not a formula", "note", 3, dt.datetime(2025, 1, 2), dt.datetime(2025, 1, 5), 4.5, "Bug"])
    ws.append([101, "numeric id", None, 2.0, "2025-01-03", None, None, "Story"])
    book.save(p)
    items, problems = _pull(p)
    assert problems == [] and [i.external_id for i in items] == ["X-1", "101"]
    assert items[0].planned_due == dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert items[0].raw["Column 3"] == "note"
    assert items[1].status == "open"
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    conn.deliver([Intent(1, "X-1", FIELDS, {"forecast_p80": 6.0, "insight": "=HYPERLINK(1)"})])
    out = openpyxl.load_workbook(tmp_path / "plan.learnloop.xlsx")
    ws2 = out.active
    header = [c.value for c in ws2[3]]
    assert "learnloop P80" in header and "learnloop insight" in header
    cell = ws2.cell(row=4, column=header.index("learnloop insight") + 1)
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"
    assert ws2.cell(row=4, column=1).value == "X-1"  # values copied (formulas as last computed)


def test_write_back_copy_is_idempotent_and_never_touches_the_source(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    original = ("Key,Summary,Type,Estimate,Spent,Due,Done,learnloop P80\n"
                "A-1,x,Bug,4,5,2025-01-02,2025-01-03,mine\nA-2,y,Bug,4,,2025-01-02,,\n")
    p.write_text(original)
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    intents = [Intent(1, "A-2", FIELDS, {"forecast_p80": 7.5, "insight": "-risky", "delta": None}),
               Intent(2, "A-1", FIELDS, {"delta": 1.0}),
               Intent(3, "nope", FIELDS, {"delta": 1.0})]
    first = conn.deliver(intents)
    assert [d.ok for d in first] == [True, True, False] and first[2].permanent
    out = tmp_path / "plan.learnloop.csv"
    text = out.read_bytes()
    assert conn.deliver(intents)[0].tool_ref == "plan.learnloop.csv#A-2"
    assert out.read_bytes() == text and p.read_text() == original
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1]["learnloop P80 (learnloop)"] == "7.5" and rows[0]["learnloop P80"] == "mine"
    assert rows[1]["learnloop insight"] == "'-risky" and rows[0]["learnloop Δ"] == "1.0"
    conn.deliver([Intent(4, "A-1", FIELDS, {"effort_factor": 1.4})])
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0]["learnloop Δ"] == "1.0" and rows[0]["learnloop factor"] == "1.4"
    assert len(rows) == 2


def test_unchanged_file_pulls_nothing(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text("Key,Summary,Type,Estimate,Spent,Due,Done\nA-1,x,Bug,4,5,2025-01-02,2025-01-03\n")
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    (batch,) = list(conn.pull(None))
    assert list(conn.pull(batch.cursor)) == []
    assert conn.check().ok and not FileConnector(FileConfig(path=str(tmp_path / "no.csv")), MAP).check().ok
    types = {f.name: f.type for f in conn.discover_fields()}
    assert types["Estimate"] == "number" and types["Due"] == "date" and types["Summary"] == "string"


def test_sync_end_to_end_quarantines_and_reconciles(engine: Engine, tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    rows = [f"A-{i},t,Bug,{i % 4 + 1},{i % 3 + 1},2025-01-0{i % 9 + 1},2025-02-01" for i in range(30)]
    p.write_text("Key,Summary,Type,Estimate,Spent,Due,Done\n" + "\n".join(rows)
                 + "\nA-99,bad,Bug,4,,someday,\n")
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "plan", {"path": str(p)}, MAP)
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    report = run_sync(engine, "plan", conn)
    assert report.created == 30 and report.quarantined == 1
    again = run_sync(engine, "plan", conn)
    assert again.created == 0 and again.batches == 0
    p.write_text("Key,Summary,Type,Estimate,Spent,Due,Done\n" + "\n".join(rows[1:]) + "\n")
    third = run_sync(engine, "plan", conn)
    assert third.deleted == 1 and third.created == 0
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 30
        assert s.scalar(select(func.count()).select_from(Item).where(Item.deleted.is_(True))) == 1
        assert s.scalar(select(func.count()).select_from(QuarantinedRow)) == 0


def test_real_sip_file_every_row_accounted_for(shared_data: Path) -> None:
    path = shared_data / "sip-effort-estimates" / "Sip-task-info.csv"
    items, problems = _pull(path, {
        "id": "TaskNumber", "title": "Summary", "planned_estimate": "HoursEstimate",
        "actual_effort": "HoursActual", "status": "StatusCode",
        "segments": ["ProjectCode", "Category", "SubCategory"]})
    dups = [p for p in problems if p.reason.startswith("duplicate id")]
    assert len(items) + len(problems) == 12_299
    assert len(items) == 10_266 - (len(problems) - len(dups))
    assert len({i.external_id for i in items}) == len(items)
