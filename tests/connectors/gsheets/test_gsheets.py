"""The Sheets connector end to end, through gspread, against the local Sheets emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.gsheets import GSheetsConfig, GSheetsConnector
from core.connections import add_connection
from core.contract import FIELDS, Intent
from core.errors import ConnectorError
from core.model import Item, QuarantinedRow
from core.store import unit_of_work
from tests.connectors.gsheets.harness import GSheetsHarness


def _connector(h: GSheetsHarness, **over: object) -> GSheetsConnector:
    return GSheetsConnector(GSheetsConfig(**{**h.config(), **over}), h.mapping())


def test_pull_reads_serial_dates_and_skips_an_unchanged_sheet() -> None:
    h = GSheetsHarness()
    conn = _connector(h)
    (batch,) = list(conn.pull(None))
    assert len(batch.items) == 20 and batch.problems == []
    first = batch.items[0]
    assert first.external_id == "T-1" and first.planned_estimate == 2.0
    assert first.planned_due is not None and first.planned_due.date().isoformat() == "2025-01-02"
    assert list(conn.pull(batch.cursor)) == []
    h.book.sheets[0].values[3][1] = "renamed"
    h.book.touch()
    assert len(next(iter(conn.pull(batch.cursor))).items) == 20


def test_bad_rows_are_problems_and_a_missing_tab_is_one_clear_error() -> None:
    h = GSheetsHarness()
    sheet = h.book.sheets[0]
    sheet.values.append(["T-99", "bad", "Bug", 3, "", "next week", ""])
    sheet.values.append(["T-98", "zero", "Bug", 0, "", 45700, ""])
    (batch,) = list(_connector(h).pull(None))
    reasons = {p.locator: p.reason for p in batch.problems}
    assert len(batch.items) == 20 and len(reasons) == 2
    assert any("next week" in r for r in reasons.values())
    assert all(loc.startswith("tab 'Plan' row ") for loc in reasons)
    with pytest.raises(ConnectorError, match="no tab named 'Nope'"):
        list(_connector(h, worksheet="Nope").pull(None))
    health = _connector(h, spreadsheet_id="unshared").check()
    assert not health.ok and "share it with learnloop@emu.iam.gserviceaccount.com" in health.message


def test_write_back_finds_its_columns_by_metadata_and_never_runs_formulas() -> None:
    h = GSheetsHarness()
    conn = _connector(h)
    report = conn.install()
    assert "learnloop P80" in report.created
    assert conn.install().created == []
    sheet = h.book.sheets[0]
    sheet.values[1][4] = "Spent (h)"  # a user renames a column: ours are found by metadata
    res = conn.deliver([Intent(1, "T-4", FIELDS, {"forecast_p80": 7.5, "effort_factor": 1.7,
                                                   "insight": "=IMPORTXML(evil)"})])
    assert res[0].ok and res[0].tool_ref == "Plan!6"
    header = sheet.values[1]
    p80, insight = header.index("learnloop P80"), header.index("learnloop insight")
    assert sheet.values[5][p80] == 7.5 and sheet.values[5][insight] == "=IMPORTXML(evil)"
    assert sheet.notes[(5, p80)] == "=IMPORTXML(evil)"
    assert len(sheet.rules) == 2 and sheet.rules[0]["ranges"][0]["startColumnIndex"] == \
        header.index("learnloop factor")
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:5]


def test_quota_exhaustion_asks_for_a_retry_and_loses_nothing() -> None:
    h = GSheetsHarness()
    conn = _connector(h)
    conn.install()
    h.emu.quota_left = 0
    try:
        res = conn.deliver([Intent(1, "T-1", FIELDS, {"forecast_p80": 3.0})])
    finally:
        h.emu.quota_left = None
    assert not res[0].ok and res[0].retry_after == 60.0 and "quota" in (res[0].error or "")


def test_sync_learn_and_write_back_end_to_end(engine: Engine, tmp_path: Path) -> None:
    h = GSheetsHarness()
    sheet = h.book.sheets[0]
    for i in range(21, 400):
        kind = "Bug" if i % 3 == 0 else "Story"
        est = i % 5 + 1
        spent = est * (2.2 if kind == "Bug" else 1.0) * (0.8 + (i % 7) / 10)
        done = i % 10 != 0
        sheet.values.append([f"T-{i}", f"Task {i}", kind, est, round(spent, 2) if done else "",
                             45658 + i, (45661 + i) if done else ""])
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "plan-sheet", h.config(), h.mapping())
    report = runtime.sync(engine, "plan-sheet")
    assert report.created == 399 and report.quarantined == 0
    learned = runtime.learn(engine)
    assert any("Type Bug" in f["statement"] for f in learned.findings)
    delivered = runtime.deliver(engine)
    assert delivered.delivered > 0 and delivered.dead == 0
    header = sheet.values[1]
    p80 = header.index("learnloop P80")
    open_rows = [r for r in sheet.values[2:] if r[6] == ""]
    assert open_rows and all(isinstance(r[p80], float) and r[p80] > 0 for r in open_rows)
    bug_open = next(r for r in open_rows if r[2] == "Bug")
    row_index = sheet.values.index(bug_open)
    assert "Type Bug items took" in sheet.notes[(row_index, p80)]
    again = runtime.sync(engine, "plan-sheet")  # our own columns changed the sheet: no new items
    assert again.created == 0
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 399
        assert s.scalar(select(func.count()).select_from(QuarantinedRow)) == 0
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:5]


def test_insights_tab_and_versioned_template_tabs(engine: Engine) -> None:
    from core import policy
    from core.contract import TEMPLATE
    from core.model import Connection, Proposal, Template

    h = GSheetsHarness()
    sheet = h.book.sheets[0]
    for i in range(21, 300):
        kind = "Bug" if i % 3 == 0 else "Story"
        est = i % 5 + 1
        spent = est * (2.2 if kind == "Bug" else 1.0) * (0.8 + (i % 7) / 10)
        sheet.values.append([f"T-{i}", f"Task {i}", kind, est, round(spent, 2), 45658 + i,
                             45661 + i])
    h.book.add("Sprint template", [["Task", "Estimate"], ["Fix login bug", 8], ["Write docs", 2]])
    with unit_of_work(engine) as s:
        conn = add_connection(s, GSheetsConnector, "plan-sheet", h.config(), h.mapping())
        s.add(Template(name="sprint", kind="project", connection_id=conn.id,
                       external_id="Sprint template",
                       body={"tasks": [{"name": "Fix login bug", "segments": {"Type": "Bug"},
                                        "estimate": 8},
                                       {"name": "Write docs", "segments": {"Type": "Story"},
                                        "estimate": 2}]}))
    runtime.sync(engine, "plan-sheet")
    runtime.learn(engine)
    runtime.deliver(engine)
    insights = h.book.sheet("learnloop insights")
    assert insights is not None and insights.values[1][0] == "finding"
    assert any("Type Bug items took" in str(r[0]) for r in insights.values[2:])
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(Proposal.dedupe_key == "effort:Type=Bug")).one()
        policy.accept(s, prop.id, "owner@example.com", "bugs run long")
    assert runtime.deliver(engine).delivered == 1
    copy = h.book.sheet("Sprint template v2")
    assert copy is not None
    assert copy.values[0][2:5] == ["learnloop plan P50", "learnloop plan P80", "learnloop rule"]
    assert copy.values[1][0] == "Fix login bug" and float(copy.values[1][3]) > 8 * 1.8
    assert copy.values[1][4] == "effort:Type=Bug" and copy.values[2][4] == ""
    assert "owner@example.com" in copy.notes[(0, 2)]
    assert h.book.sheet("Sprint template").values[1] == ["Fix login bug", 8]  # original kept
    with unit_of_work(engine) as s:
        conn_id = s.scalars(select(Connection.id)).one()
    again = GSheetsConnector(GSheetsConfig(**h.config()), h.mapping()).deliver(
        [Intent(99, "Sprint template", TEMPLATE, {"version": 2, "rendered": [], "why": "x"})])
    assert again[0].ok and [s.title for s in h.book.sheets].count("Sprint template v2") == 1
    assert conn_id and h.emu.unexpected == [] and h.emu.spec_errors == []


def test_bad_sheets_ten_thousand_rows_renamed_tab_and_no_header(engine: Engine) -> None:
    from core.errors import InputError

    h = GSheetsHarness()
    sheet = h.book.sheets[0]
    for i in range(21, 10_001):
        sheet.values.append([f"T-{i}", f"Task {i}", "Story", 2, "", 45658 + i % 300, ""])
    sheet.values.append(["T-X", "text in a date column", "Bug", 2, "", "soon-ish", ""])
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "big", h.config(), h.mapping())
    report = runtime.sync(engine, "big")
    assert report.created == 10_000 and report.quarantined == 1
    assert "soon-ish" in report.problems[0].reason
    sheet.title = "Plan (old)"  # renamed under us
    h.book.touch()
    with pytest.raises(ConnectorError, match="no tab named 'Plan'"):
        runtime.sync(engine, "big")
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item).where(
            Item.deleted.is_(False))) == 10_000  # nothing lost
    blank = GSheetsHarness()
    blank.book.sheets[0].values = [["just", "some", "notes"], ["no", "header", "here"]]
    with pytest.raises(InputError, match="Key"):
        list(_connector(blank).pull(None))


def test_text_dates_are_read_in_the_spreadsheets_time_zone() -> None:
    h = GSheetsHarness()  # the emulated spreadsheet is in Europe/London
    h.book.sheets[0].values[2][5] = "2025-07-01 09:00"
    (batch,) = list(_connector(h).pull(None))
    due = batch.items[0].planned_due
    assert due is not None and due.isoformat() == "2025-07-01T08:00:00+00:00"  # BST
    (other,) = list(_connector(h, timezone="UTC").pull(None))
    assert other.items[0].planned_due is not None
    assert other.items[0].planned_due.isoformat() == "2025-07-01T09:00:00+00:00"


def test_rows_keep_their_identity_when_inserted_deleted_or_their_id_edited(
        engine: Engine) -> None:
    from connectors.gsheets.sync import open_tab

    h = GSheetsHarness()
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "ids", h.config(), h.mapping())
    assert runtime.sync(engine, "ids").created == 20
    pinned = [m for m in h.book.metadata if m["metadataKey"] == "learnloop.row"]
    assert len(pinned) == 20
    # A person edits the sheet through the real API: two rows inserted, one deleted.
    conn = _connector(h)
    _, ws = open_tab(conn.config)
    ws.insert_rows([["N-1", "new", "Story", 2, "", 45700, ""],
                    ["N-2", "new", "Bug", 3, "", 45701, ""]], row=4,
                   value_input_option="RAW")  # type: ignore[arg-type]
    ws.delete_rows(10)  # what was T-6 before the insert moved it down two rows
    sheet = h.book.sheets[0]
    t7 = next(i for i, r in enumerate(sheet.values) if r and r[0] == "T-7")
    sheet.values[t7][0] = "T-7 (renamed)"  # an id cell edited by hand
    h.book.touch()
    report = runtime.sync(engine, "ids")
    assert (report.created, report.deleted) == (2, 1), report.as_dict()
    with unit_of_work(engine) as s:
        ids = set(s.scalars(select(Item.external_id).where(Item.deleted.is_(False))))
    assert "T-7" in ids and "T-7 (renamed)" not in ids and "T-6" not in ids
    assert {"N-1", "N-2"} <= ids and len(ids) == 21
    res = conn.deliver([Intent(1, "T-7", FIELDS, {"forecast_p80": 4.5})])
    assert res[0].ok and res[0].tool_ref == f"Plan!{t7 + 1}"
    header = sheet.values[1]
    assert sheet.values[t7][header.index("learnloop P80")] == 4.5
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:3]


def test_cli_adds_tests_and_syncs_a_sheet_with_the_key_from_a_file(
        use_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.connectors.gsheets.harness import key_json
    from webapp.cli import main

    h = GSheetsHarness()
    key = tmp_path / "key.json"
    key.write_text(key_json(h.base))
    args = ["connections", "add", "gsheets", "sheet", "--set", f"spreadsheet_id={h.book_id}",
            "--set", "worksheet=Plan", "--set", f"endpoint={h.base}",
            "--secret-file", f"service_account_key={key}"]
    for field, column in h.mapping().items():
        args += ["--map", f"{field}={','.join(column) if isinstance(column, list) else column}"]
    assert main(args) == 0
    assert main(["connections", "test", "sheet"]) == 0
    assert main(["sync", "sheet", "--json"]) == 0
    out = capsys.readouterr()
    assert "PRIVATE KEY" not in out.out + out.err
    assert '"created": 20' in out.out
    assert main(["connections", "add", "gsheets", "x", "--secret-file",
                 f"service_account_key={tmp_path / 'missing.json'}"]) == 2
    assert "cannot read" in capsys.readouterr().err
