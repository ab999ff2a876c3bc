"""Bad files cost their bad rows only: unclosed quotes, oversized cells, unsaved formulas."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from connectors.file.csvrows import MAX_CELL
from core.connections import add_connection
from core.contract import ItemRecord, Problem
from core.model import Item, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from webapp.cli import main

MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate", "status": "Status"}
HEAD = "Key,Summary,Estimate,Status\n"


def _rows(n: int, **odd: str) -> str:
    return "".join(odd.get(f"K{i}", f"K-{i},task {i},{i},done\n") for i in range(1, n + 1))


def _pull(path: Path, mapping: dict[str, object] | None = None) -> tuple[list[ItemRecord],
                                                                         list[Problem]]:
    records = [r for b in FileConnector(FileConfig(path=str(path)), mapping or MAP).pull(None)
               for r in (*b.items, *b.problems)]
    return ([r for r in records if isinstance(r, ItemRecord)],
            [r for r in records if isinstance(r, Problem)])


def test_an_unclosed_quote_quarantines_its_row_and_keeps_the_rows_it_would_swallow(
        tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(10, K5='K-5,"Broken title,5,done\n'))
    items, problems = _pull(p)
    assert [i.external_id for i in items] == [f"K-{i}" for i in (1, 2, 3, 4, 6, 7, 8, 9, 10)]
    assert items[4].title == "task 6" and items[4].planned_estimate == 6
    assert len(problems) == 1 and problems[0].locator == "plan.csv row 6"
    assert "quote" in problems[0].reason and "never closed" in problems[0].reason
    assert problems[0].raw["Key"] == "K-5"


def test_an_unclosed_quote_that_a_later_quote_closes_is_caught_too(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(10, K3='K-3,"Broken,3,done\n', K7='K-7,"seven, with a comma",7,done\n'))
    items, problems = _pull(p)
    assert [i.external_id for i in items] == [f"K-{i}" for i in (1, 2, 4, 5, 6, 7, 8, 9, 10)]
    assert next(i for i in items if i.external_id == "K-7").title == "seven, with a comma"
    assert [x.locator for x in problems] == ["plan.csv row 4"]


def test_cells_with_line_breaks_and_commas_are_still_fine(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(4, K2='K-2,"two lines,\nsecond, with commas, and more",2,done\n'))
    items, problems = _pull(p)
    assert problems == [] and len(items) == 4
    assert items[1].title == "two lines,\nsecond, with commas, and more"


def test_a_five_megabyte_cell_quarantines_its_row_with_its_number_and_keeps_the_rest(
        tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(10, K4=f"K-4,{'x' * 5_000_000},4,done\n"))
    items, problems = _pull(p)
    assert len(items) == 9 and "K-4" not in {i.external_id for i in items}
    assert len(problems) == 1 and problems[0].locator == "plan.csv row 5"
    assert problems[0].reason.startswith("column 'Summary' (B): 5,000,000 characters")
    assert len(problems[0].raw["Summary"]) < 300  # the quarantine keeps a sample, not 5 MB
    big = tmp_path / "ok.csv"
    big.write_text(HEAD + _rows(2, K2=f"K-2,{'y' * MAX_CELL},2,done\n"))
    assert len(_pull(big)[0]) == 2, "a cell up to the cap reads"


def _workbook(path: Path, saved: dict[str, str] | None = None) -> None:
    """Estimate of K-2 and a Note of K-3 are formulas openpyxl saves without a value; `saved`
    gives some cells a saved value, as Excel writes it."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Key", "Summary", "Estimate", "Status", "Note"])
    ws.append(["K-1", "one", 1, "done", "x"])
    ws.append(["K-2", "two", "=C2*2", "done", "y"])
    ws.append(["K-3", "three", 3, "done", "=A4"])
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if saved:
        src = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                part = src.read(info)
                if info.filename == "xl/worksheets/sheet1.xml":
                    for ref, value in saved.items():
                        part = part.replace(f'<c r="{ref}"><f>'.encode(),
                                            f'<c r="{ref}" t="n"><f>'.encode())
                        head, tail = part.split(f'<c r="{ref}" t="n">'.encode(), 1)
                        tail = tail.replace(b"<v></v>", f"<v>{value}</v>".encode(), 1)
                        part = head + f'<c r="{ref}" t="n">'.encode() + tail
                dst.writestr(info, part)
        data = out.getvalue()
    path.write_bytes(data)


def test_xlsx_formulas_without_saved_values_quarantine_their_row_naming_the_cell(
        tmp_path: Path) -> None:
    p = tmp_path / "plan.xlsx"
    _workbook(p)
    items, problems = _pull(p)
    assert [i.external_id for i in items] == ["K-1", "K-3"], "a formula in an unmapped column " \
        "costs nothing"
    assert len(problems) == 1 and problems[0].locator == "plan.xlsx row 3"
    assert problems[0].reason.startswith("column 'Estimate': cell C3 holds a formula (=C2*2) "
                                         "with no saved value")
    assert "save it" in problems[0].reason
    saved = tmp_path / "saved.xlsx"
    _workbook(saved, {"C3": "2"})
    items, problems = _pull(saved)
    assert problems == [] and [i.planned_estimate for i in items] == [1, 2, 3]


def test_the_sync_stores_the_good_rows_and_the_quarantine_names_the_bad_ones(
        engine: Engine, tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(10, K5='K-5,"Broken title,5,done\n',
                              K8=f"K-8,{'z' * 200_000},8,done\n"))
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "plan", {"path": str(p)}, MAP)
    report = run_sync(engine, "plan", FileConnector(FileConfig(path=str(p)), MAP))
    assert (report.created, report.quarantined) == (8, 2)
    with unit_of_work(engine) as s:
        titles = s.scalars(select(Item.title).order_by(Item.external_id)).all()
        bad = s.scalars(select(QuarantinedRow.locator).order_by(QuarantinedRow.locator)).all()
    assert "task 6" in titles and not any("Broken" in (t or "") for t in titles)
    assert bad == ["plan.csv row 6", "plan.csv row 9"]


def test_the_cli_names_the_swallowing_row_and_exits_non_zero(
        use_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(HEAD + _rows(10, K5='K-5,"Broken title,5,done\n'))
    args = ["--map", f"id={MAP['id']}", "--map", f"title={MAP['title']}",
            "--map", f"planned_estimate={MAP['planned_estimate']}"]
    assert main(["connections", "add", "file", "plan", "--set", f"path={p}", *args]) == 0
    capsys.readouterr()
    assert main(["sync", "plan"]) == 1
    out = capsys.readouterr()
    assert "9 new" in out.out + out.err and "plan.csv row 6" in out.err
    assert "never closed" in out.err and "Traceback" not in out.err
