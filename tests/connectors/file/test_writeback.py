"""Write-back into the copy: idempotent, never touching the user's file or columns, no formulas."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from connectors.file import FileConfig, FileConnector
from connectors.file.writeback import COLUMNS
from core.contract import FIELDS, Intent

MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate"}
SOURCE = ("Key,Summary,Estimate,learnloop P80\r\n"
          "A-1,first,4,mine\r\nA-2,second,3,\r\nA-1,duplicate,2,\r\n,no id,1,\r\n")


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    p = tmp_path / "plan.csv"
    p.write_text(SOURCE, encoding="cp1252", newline="")
    return p


def test_write_twice_leaves_an_identical_copy_and_one_set_of_columns(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    intents = [Intent(1, "A-2", FIELDS, {"forecast_p80": 7.5, "forecast_p50": 5.0,
                                         "insight": "runs over", "delta": None, "unit": "hours"}),
               Intent(2, "A-1", FIELDS, {"delta": -1.5})]
    first = conn.deliver(intents)
    assert [(d.ok, d.tool_ref) for d in first] == [(True, "plan.learnloop.csv#A-2"),
                                                   (True, "plan.learnloop.csv#A-1")]
    out = plan.with_name("plan.learnloop.csv")
    data, mtime = out.read_bytes(), out.stat().st_mtime_ns
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, so Excel opens it as UTF-8
    assert conn.deliver(intents) == first
    assert out.read_bytes() == data and out.stat().st_mtime_ns == mtime
    rows = _rows(out)
    assert rows[0] == ["Key", "Summary", "Estimate", "learnloop P80", "learnloop Δ",
                       "learnloop P50", "learnloop P80 (learnloop)", "learnloop P90",
                       "learnloop finish P80", "learnloop factor", "learnloop insight"]
    assert rows[1][:4] == ["A-1", "first", "4", "mine"] and rows[1][4] == "-1.5"
    assert rows[2][4:8] == ["", "5", "7.5", ""] and rows[2][-1] == "runs over"
    assert rows[3] == ["A-1", "duplicate", "2", ""] + [""] * 7  # only the item's own row
    assert rows[4][:2] == ["", "no id"] and len(rows) == 5
    assert plan.read_bytes() == SOURCE.encode("cp1252")


def test_earlier_values_are_kept_and_none_clears(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    conn.deliver([Intent(1, "A-1", FIELDS, {"delta": 1.0, "insight": "on plan"})])
    conn.deliver([Intent(2, "A-1", FIELDS, {"effort_factor": 1.4, "insight": None})])
    row = dict(zip(*_rows(plan.with_name("plan.learnloop.csv"))[:2], strict=True))
    assert row["learnloop Δ"] == "1" and row["learnloop factor"] == "1.4"
    assert row["learnloop insight"] == ""


def test_a_changed_source_is_recopied_with_the_values_kept(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    conn.deliver([Intent(1, "A-2", FIELDS, {"forecast_p80": 9.0})])
    plan.write_text("Key,Summary,Estimate,learnloop P80\nA-0,new,1,\nA-2,second,3,\n")
    conn.deliver([Intent(2, "A-0", FIELDS, {"forecast_p80": 2.0})])
    rows = _rows(plan.with_name("plan.learnloop.csv"))
    assert [(r[0], r[6]) for r in rows[1:]] == [("A-0", "2"), ("A-2", "9")]


def test_formula_looking_text_is_neutralised_in_csv(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    texts = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"]
    for n, text in enumerate(texts):
        conn.deliver([Intent(n, "A-1", FIELDS, {"insight": text, "delta": -2.0})])
        row = _rows(plan.with_name("plan.learnloop.csv"))[1]
        assert row[-1] == "'" + text and row[4] == "-2"


def test_unknown_ids_and_surfaces_fail_permanently(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    missing, other = conn.deliver([Intent(1, "Z-9", FIELDS, {"delta": 1.0}),
                                   Intent(2, "A-1", "comment", {"text": "x"})])
    assert not missing.ok and missing.permanent
    assert missing.error == "id 'Z-9' not found in plan.csv"
    assert not other.ok and other.permanent
    assert not plan.with_name("plan.learnloop.csv").exists()


def test_an_unreadable_source_fails_the_delivery_for_a_retry(plan: Path) -> None:
    conn = FileConnector(FileConfig(path=str(plan)), MAP)
    plan.unlink()
    (result,) = conn.deliver([Intent(1, "A-1", FIELDS, {"delta": 1.0})])
    assert not result.ok and not result.permanent and "no such file" in (result.error or "")


def test_install_notes_the_copy_and_uninstall_deletes_it(plan: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "copy.csv"
    conn = FileConnector(FileConfig(path=str(plan), output_path=str(out)), MAP)
    report = conn.install()
    assert report.created == [] and str(out) in report.existing[0]
    assert conn.deliver([Intent(1, "A-1", FIELDS, {"delta": 1.0})])[0].tool_ref == "copy.csv#A-1"
    assert conn.uninstall().removed == [str(out)] and not out.exists()
    assert conn.uninstall().removed == [] and plan.exists()


def _workbook(path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Plan"
    ws.append(["Q1 plan"])
    ws.append(["Key", "Summary", "Estimate", "Due", "Total"])
    ws.append(["X-1", "first", 3, dt.datetime(2025, 1, 2), "=C3*2"])
    ws.append([102, "second", 5, dt.datetime(2025, 1, 9), "=C4*2"])
    ws["B3"].font = openpyxl.styles.Font(bold=True)
    book.create_sheet("Notes").append(["keep me"])
    book.save(path)


def test_xlsx_copy_keeps_the_workbook_and_writes_text_as_text(tmp_path: Path) -> None:
    p = tmp_path / "plan.xlsx"
    _workbook(p)
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    intents = [Intent(1, "X-1", FIELDS, {"forecast_p80": 6.0, "insight": "=HYPERLINK(1)"}),
               Intent(2, "102", FIELDS, {"delta": -1.0, "insight": "@risk"})]
    assert all(d.ok for d in conn.deliver(intents))
    out = tmp_path / "plan.learnloop.xlsx"
    mtime = out.stat().st_mtime_ns
    assert all(d.ok for d in conn.deliver(intents))
    assert out.stat().st_mtime_ns == mtime  # nothing changed, nothing written
    book = openpyxl.load_workbook(out)
    ws = book["Plan"]
    header = [c.value for c in ws[2]]
    assert header == ["Key", "Summary", "Estimate", "Due", "Total", *COLUMNS.values()]
    insight = ws.cell(row=3, column=header.index("learnloop insight") + 1)
    assert insight.value == "=HYPERLINK(1)" and insight.data_type == "s"
    assert ws.cell(row=3, column=header.index("learnloop P80") + 1).value == 6.0
    assert ws.cell(row=4, column=header.index("learnloop Δ") + 1).value == -1.0
    assert ws["E3"].value == "=C3*2" and ws["B3"].font.bold  # the user's formulas and formats
    assert ws["D3"].value == dt.datetime(2025, 1, 2)
    assert book["Notes"]["A1"].value == "keep me" and ws["A1"].value == "Q1 plan"
    assert openpyxl.load_workbook(p)["Plan"].max_column == 5  # the input is untouched
    conn.deliver([Intent(3, "X-1", FIELDS, {"effort_factor": 1.3})])
    ws = openpyxl.load_workbook(out)["Plan"]
    assert ws.cell(row=3, column=header.index("learnloop P80") + 1).value == 6.0
    assert ws.cell(row=3, column=header.index("learnloop factor") + 1).value == 1.3
