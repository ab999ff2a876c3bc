"""The file connector reading real-looking files: encodings, delimiters, XLSX, formats, bad rows."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from connectors.file import FileConfig, FileConnector
from core.connections import validate_config
from core.contract import ItemRecord, Problem
from core.errors import ConfigError, InputError

UTC = dt.UTC
MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate", "actual_effort": "Spent",
       "planned_due": "Due", "actual_end": "Done", "segments": ["Type"]}
HEAD = "Key,Summary,Type,Estimate,Spent,Due,Done\n"


def pull_all(path: Path, mapping: dict[str, Any] | None = None,
             **config: Any) -> tuple[list[ItemRecord], list[Problem]]:
    conn = FileConnector(FileConfig(path=str(path), **config), mapping or MAP)
    items: list[ItemRecord] = []
    problems: list[Problem] = []
    for batch in conn.pull(None):
        items += batch.items
        problems += batch.problems
    return items, problems


def test_cp1252_file_with_accents_and_dashes_reads_with_auto_encoding(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_bytes(("Key;Summary;Type;Estimate;Spent;Due;Done\r\n"
                   "A-1;Caf\u00e9 \u2013 fix \u201cquotes\u201d;Bug;4;5,5;02-Nov-04;16-Nov-04\r\n").encode("cp1252"))
    (item,), problems = pull_all(p)
    assert problems == []
    assert item.title == "Caf\u00e9 \u2013 fix \u201cquotes\u201d" and item.actual_effort == 5.5
    assert item.planned_due == dt.datetime(2004, 11, 2, tzinfo=UTC)
    assert item.status == "done" and item.segments == {"Type": "Bug"}


def test_utf8_with_bom_and_tab_delimiter_below_a_title_line(tmp_path: Path) -> None:
    p = tmp_path / "plan.tsv"
    p.write_bytes(("Exported from Planner, 2025\n" + HEAD.replace(",", "\t")
                   + "Ä-1\tÜber\tStory\t3\t\t2025-01-02\t\n").encode("utf-8-sig"))
    (item,), _ = pull_all(p)
    assert item.external_id == "Ä-1" and item.title == "Über" and item.status == "open"


def test_a_configured_encoding_that_fails_names_file_encoding_and_offset(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_bytes("Key,Summary\nA-1,Café\n".encode("cp1252"))
    with pytest.raises(InputError) as err:
        pull_all(p, {"id": "Key"}, encoding="utf-8")
    assert str(err.value).startswith("plan.csv: cannot be read as utf-8 (byte 19: ")
    items, _ = pull_all(p, {"id": "Key", "title": "Summary"}, encoding="cp1252")
    assert items[0].title == "Café"


def test_missing_file_and_missing_column_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no\.csv: no such file"):
        pull_all(tmp_path / "no.csv")
    p = tmp_path / "plan.csv"
    p.write_text("Key,Summary,Estimate\nA-1,x,3\n")
    with pytest.raises(InputError) as err:
        pull_all(p)
    assert str(err.value) == (
        "plan.csv: missing column 'Spent' (mapped to actual_effort), 'Due' (mapped to "
        "planned_due), 'Done' (mapped to actual_end), 'Type' (mapped to segment Type); the "
        "columns are: 'Key', 'Summary', 'Estimate'")
    p.write_text("just,some\nnumbers,here\n")
    with pytest.raises(InputError, match=r"plan\.csv: no header row with the id column 'Key'"):
        pull_all(p)


def test_xlsx_with_date_cells_blank_header_title_rows_and_numeric_ids(tmp_path: Path) -> None:
    p = tmp_path / "plan.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Project plan Q1"])
    ws.append([])
    ws.append(["Key", "Summary", None, "Estimate", "Due", "Done", "Spent", "Type"])
    ws.append(["X-1", "first", "note", 3, dt.datetime(2025, 1, 2, 9, 30), dt.date(2025, 1, 5),
               4.5, "Bug"])
    ws.append([101, "numeric id", None, 2.0, 45660, None, None, "Story"])
    ws.append(["X-3", "bad", None, 0, None, None, None, "Bug"])
    book.create_sheet("Other").append(["Key"])
    book.save(p)
    items, problems = pull_all(p)
    assert [i.external_id for i in items] == ["X-1", "101"]
    assert items[0].planned_due == dt.datetime(2025, 1, 2, 9, 30, tzinfo=UTC)
    assert items[0].actual_end == dt.datetime(2025, 1, 5, tzinfo=UTC)
    assert items[0].raw["Column 3"] == "note" and items[0].status == "done"
    assert items[1].planned_due == dt.datetime(2025, 1, 3, tzinfo=UTC)  # a serial day number
    assert [(p.locator, p.reason) for p in problems] == [
        ("plan.xlsx row 6", "column 'Estimate': estimate must be above 0, got 0")]
    with pytest.raises(InputError, match=r"plan\.xlsx: no sheet 'Nope' \(sheets: 'Sheet', 'Other'\)"):
        pull_all(p, sheet="Nope")


@pytest.mark.parametrize(("due", "expected"), [
    ("2025-03-04", dt.datetime(2025, 3, 4)), ("2025-03-04T10:30:00Z", dt.datetime(2025, 3, 4, 10, 30)),
    ("2025-03-04T12:30:00+02:00", dt.datetime(2025, 3, 4, 10, 30)),
    ("04/03/2025", dt.datetime(2025, 4, 3)),  # month-first: no value in the column shows the order
    ("04-Mar-25", dt.datetime(2025, 3, 4)), ("04-Mar-2025", dt.datetime(2025, 3, 4)),
    ("\"Mar 4, 2025\"", dt.datetime(2025, 3, 4)), ("4 March 2025", dt.datetime(2025, 3, 4)),
    ("2025/03/04", dt.datetime(2025, 3, 4)), ("45720", dt.datetime(2025, 3, 4)),
])
def test_each_date_format_in_a_csv(tmp_path: Path, due: str, expected: dt.datetime) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + f"A-1,x,Bug,3,,{due},\n")
    (item,), problems = pull_all(p)
    assert problems == [] and item.planned_due == expected.replace(tzinfo=UTC)


def test_dayfirst_inferred_configured_and_timezone(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + "A-1,x,Bug,3,,03/04/2025,\nA-2,y,Bug,3,,25/04/2025,\n")
    items, _ = pull_all(p)
    assert items[0].planned_due == dt.datetime(2025, 4, 3, tzinfo=UTC)
    p.write_text(HEAD + "A-1,x,Bug,3,,03/04/2025,\n")
    (item,), _ = pull_all(p, dayfirst=True, timezone="Australia/Sydney")
    assert item.planned_due == dt.datetime(2025, 4, 2, 13, tzinfo=UTC)
    with pytest.raises(ConfigError, match="unknown time zone"):
        validate_config(FileConnector, {"path": str(p), "timezone": "Nowhere/City"})


def test_decimal_comma_semicolon_csv_and_unit_suffixes(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text("Key;Summary;Type;Estimate;Spent;Due;Done\n"
                 "A-1;x;Bug;1,5;2,25;;\nA-2;y;Bug;1.234,5;1d;;\nA-3;z;Bug;3h;90 min;;\n"
                 "A-4;w;Bug;3 pts;;;\n")
    items, problems = pull_all(p)
    assert [(i.planned_estimate, i.actual_effort) for i in items] == [
        (1.5, 2.25), (1234.5, 8.0), (3.0, 1.5)]
    assert [p.reason for p in problems] == [
        "column 'Estimate': unit 'pts' in '3 pts' is not a time unit (known: h, d, w, min)"]


def test_bad_rows_are_problems_with_row_numbers_and_good_rows_are_kept(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + "A-1,ok,Bug,4,5,2025-01-02,2025-01-03\n"
                 "A-2,bad date,Bug,4,,31/02/2024,\n"
                 "A-3,zero,Bug,0,,2025-01-02,\n"
                 "A-4,negative,Bug,-2,,2025-01-02,\n"
                 "A-5,text,Bug,lots,,2025-01-02,\n"
                 "A-1,dup,Bug,4,,2025-01-02,\n"
                 ",no id,Bug,4,,2025-01-02,\n"
                 ",,,,,,\n"
                 "A-6,\"multi\nline\",Story,2,,2025-01-09,\n"
                 "A-7,ok,Story,2,,2025-01-09,\n")
    items, problems = pull_all(p)
    assert [i.external_id for i in items] == ["A-1", "A-6", "A-7"]
    assert [(pr.locator, pr.reason) for pr in problems] == [
        ("plan.csv row 3", "column 'Due': unparseable date '31/02/2024'"),
        ("plan.csv row 4", "column 'Estimate': estimate must be above 0, got 0"),
        ("plan.csv row 5", "column 'Estimate': estimate must be above 0, got -2"),
        ("plan.csv row 6", "column 'Estimate': not a number: 'lots'"),
        ("plan.csv row 7", "duplicate id 'A-1' (first at row 2)"),
        ("plan.csv row 8", "column 'Key': blank id"),
    ]
    assert problems[0].raw == {"Key": "A-2", "Summary": "bad date", "Type": "Bug",
                               "Estimate": "4", "Spent": "", "Due": "31/02/2024", "Done": ""}
    assert items[1].title == "multi\nline"


def test_status_column_with_configured_lists(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text("Key,State,Spent\nA,Closed,\nB,Won't Do,\nC,In progress,3\nD,Live,\nE,,2\n")
    mapping = {"id": "Key", "status": "State", "actual_effort": "Spent"}
    items, _ = pull_all(p, mapping)
    assert [i.status for i in items] == ["done", "cancelled", "open", "open", "done"]
    items, _ = pull_all(p, mapping, done_statuses=["live"], cancelled_statuses=["closed"])
    assert [i.status for i in items] == ["cancelled", "open", "open", "done", "done"]
    config = validate_config(FileConnector, {"path": str(p), "done_statuses": "Live, Shipped"})
    assert isinstance(config, FileConfig) and config.done_statuses == ["Live", "Shipped"]


def test_discover_fields_and_check(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + "A-1,x,Bug,4,\"1,5\",03/04/2025,2025-01-03\nA-2,y,Bug,2,,,\n")
    conn = FileConnector(FileConfig(path=str(p)), MAP)
    types = {f.name: f.type for f in conn.discover_fields()}
    assert types == {"Key": "string", "Summary": "string", "Type": "string", "Estimate": "number",
                     "Spent": "number", "Due": "date", "Done": "date"}
    health = conn.check()
    assert health.ok and health.message == ("plan.csv is readable: header on row 1, 2 data rows; "
                                            "learnloop writes its columns into plan.learnloop.csv")
    unmapped = FileConnector(FileConfig(path=str(p)), {})
    assert [f.name for f in unmapped.discover_fields()][:2] == ["Key", "Summary"]
    bad = FileConnector(FileConfig(path=str(p)), {**MAP, "actual_effort": "Hours"})
    assert not bad.check().ok and "missing column 'Hours'" in bad.check().message
    gone = FileConnector(FileConfig(path=str(tmp_path / "no.csv")), MAP).check()
    assert not gone.ok and gone.message.endswith("no.csv: no such file")


def test_config_refuses_to_overwrite_the_input_and_mixed_formats(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    with pytest.raises(ConfigError, match="output_path must differ from path"):
        validate_config(FileConnector, {"path": str(p), "output_path": str(p)})
    with pytest.raises(ConfigError, match="same format"):
        validate_config(FileConnector, {"path": str(p), "output_path": str(tmp_path / "o.xlsx")})
    with pytest.raises(TypeError):
        FileConnector({"path": str(p)}, MAP)  # type: ignore[arg-type]


def test_importing_the_connector_does_not_import_openpyxl() -> None:
    code = "import sys, connectors.file; sys.exit('openpyxl' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
