"""core.tabular: headers, dates, numbers, units, statuses and row problems on plain rows."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from core.contract import ItemRecord, Problem
from core.errors import ConfigError, InputError
from core.tabular import (
    COLUMNS,
    DateParser,
    NumberParser,
    TableMapping,
    TableOptions,
    cell_value,
    find_header,
    guess_type,
    map_table,
    our_titles,
    parse_number,
    read_written,
    with_columns,
)

UTC = dt.UTC


def _map(rows: list[list[Any]], mapping: dict[str, Any],
         **options: Any) -> tuple[list[ItemRecord], list[Problem]]:
    out = list(map_table(rows, TableMapping.from_config(mapping),
                         TableOptions(source="plan.csv", **options)))
    return ([r for r in out if isinstance(r, ItemRecord)],
            [r for r in out if isinstance(r, Problem)])


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-04", dt.datetime(2025, 3, 4)),
    ("2025-03-04T10:30:00", dt.datetime(2025, 3, 4, 10, 30)),
    ("2025-03-04T10:30:00Z", dt.datetime(2025, 3, 4, 10, 30)),
    ("2025-03-04T12:30:00+02:00", dt.datetime(2025, 3, 4, 10, 30)),
    ("2025-03-04 12:30-0130", dt.datetime(2025, 3, 4, 14, 0)),
    ("02-Nov-04", dt.datetime(2004, 11, 2)),
    ("02-Nov-2004", dt.datetime(2004, 11, 2)),
    ("Nov 2, 2004", dt.datetime(2004, 11, 2)),
    ("November 2, 2004", dt.datetime(2004, 11, 2)),
    ("2 November 2004", dt.datetime(2004, 11, 2)),
    ("2004/11/02", dt.datetime(2004, 11, 2)),
    ("04/Mar/25 2:30 PM", dt.datetime(2025, 3, 4, 14, 30)),
    ("Tue 3/4/25", dt.datetime(2025, 3, 4)),
    ("04.03.2025", dt.datetime(2025, 3, 4)),
    (45720, dt.datetime(2025, 3, 4)),
    (45720.5, dt.datetime(2025, 3, 4, 12)),
    ("45720", dt.datetime(2025, 3, 4)),
    (dt.date(2025, 3, 4), dt.datetime(2025, 3, 4)),
    (dt.datetime(2025, 3, 4, 9, 15), dt.datetime(2025, 3, 4, 9, 15)),
])
def test_date_formats_become_aware_utc(text: Any, expected: dt.datetime) -> None:
    got = DateParser().parse(text)
    assert got == expected.replace(tzinfo=UTC) and got.tzinfo is UTC


@pytest.mark.parametrize("text", ["31/02/2024", "someday", "13/13/2024", "2025-13-01", "3",
                                  "Foo 2, 2004", "Q3"])
def test_not_dates_are_rejected_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=r"unparseable date"):
        DateParser().parse(text)


def test_numeric_dates_are_a_column_decision_with_a_documented_default() -> None:
    us, eu, unknown = DateParser(), DateParser(), DateParser()
    assert us.learn(["03/04/2025", "04/25/2025"]) is False
    assert eu.learn(["03/04/2025", "25/04/2025"]) is True
    assert unknown.learn(["03/04/2025", "2025-01-01"]) is None
    assert us.parse("03/04/2025").month == 3
    assert eu.parse("03/04/2025").month == 4
    assert unknown.parse("03/04/2025").month == 3  # month-first when nothing shows the order
    assert DateParser(dayfirst=True).parse("03/04/2025").month == 4
    with pytest.raises(ValueError):
        eu.parse("04/25/2025")


def test_one_date_column_settles_the_order_of_an_ambiguous_one() -> None:
    rows = [["Key", "Due", "Done"], ["A", "03/04/2025", "25/04/2025"],
            ["B", "05/06/2025", "01/02/2025"]]
    items, _ = _map(rows, {"id": "Key", "planned_due": "Due", "actual_end": "Done"})
    assert items[0].planned_due == dt.datetime(2025, 4, 3, tzinfo=UTC)
    assert items[1].actual_end == dt.datetime(2025, 2, 1, tzinfo=UTC)


def test_naive_values_are_in_the_configured_zone() -> None:
    london = DateParser(timezone="Europe/London")
    assert london.parse("2025-07-01 10:00") == dt.datetime(2025, 7, 1, 9, tzinfo=UTC)
    assert london.parse("2025-07-01T10:00Z") == dt.datetime(2025, 7, 1, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        DateParser(timezone="Mars/Base")


@pytest.mark.parametrize(("text", "value"), [
    ("1,234.5", 1234.5), ("1.5", 1.5), ("1,5", 1.5), ("0,75", 0.75), ("1.234,5", 1234.5),
    ("1 234,5", 1234.5), ("1,234", 1234.0), ("12", 12.0), (7, 7.0), (2.25, 2.25),
])
def test_numbers(text: Any, value: float) -> None:
    assert parse_number(text) == value


def test_a_lone_thousands_looking_comma_follows_the_column() -> None:
    column = NumberParser()
    assert column.learn(["2", "1,5", "1,234"]) is True
    assert column.parse("1,234") == pytest.approx(1.234)
    assert NumberParser().parse("1,234") == 1234.0


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("3h", "hours", 3.0), ("2 h", "hours", 2.0), ("4d", "hours", 32.0), ("1w 2d", "hours", 56.0),
    ("90 min", "hours", 1.5), ("1d 4h", "hours", 12.0), ("4d", "days", 4.0),
    ("4h", "days", 0.5), ("3 points", "points", 3.0),
])
def test_unit_suffixes_are_converted_explicitly(text: str, unit: str, value: float) -> None:
    assert parse_number(text, unit) == pytest.approx(value)


@pytest.mark.parametrize(("text", "unit", "message"), [
    ("lots", "hours", "not a number: 'lots'"),
    ("3 pts", "hours", "unit 'pts' in '3 pts' is not a time unit"),
    ("3h", "points", "unit of '3h' cannot be converted to 'points'"),
    ("1,2,3", "hours", "not a number"), ("inf", "hours", "not a number"),
])
def test_bad_numbers_and_units_are_rejected(text: str, unit: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_number(text, unit)


def test_header_below_title_rows_blank_and_duplicate_headers() -> None:
    rows: list[list[Any]] = [["Project plan", None], [], ["Key", "Summary", None, "Due", "Due"],
                             ["A-1", "one", "x", "2025-01-01", "2025-01-02"]]
    header = find_header(rows, "key")
    assert header is not None and header.row_number == 3
    assert header.names == ["Key", "Summary", "Column 3", "Due", "Due (2)"]
    items, _ = _map(rows, {"id": " KEY ", "title": "summary", "actual_end": "Due (2)",
                           "segments": {"note": "Column 3"}})
    assert items[0].raw == {"Key": "A-1", "Summary": "one", "Column 3": "x", "Due": "2025-01-01",
                            "Due (2)": "2025-01-02"}
    assert items[0].segments == {"note": "x"} and items[0].title == "one"


def test_a_data_row_holding_the_id_name_is_not_the_header() -> None:
    rows = [["Key", "12", "3.5", "2025-01-01"], ["Key", "Summary", "Estimate", "Type"],
            ["A", "x", "3", "Bug"]]
    header = find_header(rows, "Key")
    assert header is not None and header.row_number == 2
    assert find_header(rows, "Key", header_row=1) is not None
    assert find_header(rows, "Nope") is None


def test_duplicate_mapped_header_names_both_positions() -> None:
    rows = [["Key", "Due", "Title", "Due"], ["A", "2025-01-01", "t", "2025-01-02"]]
    with pytest.raises(InputError) as err:
        _map(rows, {"id": "Key", "planned_due": "Due"})
    assert str(err.value) == ("plan.csv: column 'Due' (mapped to planned_due) appears twice, in "
                              "columns 2 (B) and 4 (D); rename one, or map 'Due (2)' for the "
                              "second")


def test_missing_column_is_one_line_naming_file_column_field_and_columns() -> None:
    rows = [["Key", "Summary"], ["A", "x"]]
    with pytest.raises(InputError) as err:
        _map(rows, {"id": "Key", "planned_estimate": "Estimate", "segments": ["Team"]})
    assert str(err.value) == ("plan.csv: missing column 'Estimate' (mapped to planned_estimate), "
                              "'Team' (mapped to segment Team); the columns are: 'Key', "
                              "'Summary'")


def test_no_header_and_bad_mappings() -> None:
    with pytest.raises(InputError, match=r"plan\.csv: no header row with the id column 'Key'"):
        _map([["a", "b"], ["1", "2"]], {"id": "Key"})
    with pytest.raises(ConfigError, match="needs an id column"):
        TableMapping.from_config({"title": "Summary"})
    with pytest.raises(ConfigError, match="unknown mapping field"):
        TableMapping.from_config({"id": "Key", "effort": "Spent"})
    assert TableMapping.from_config({"id": "K", "segments": "A, B"}).segments == {"A": "A", "B": "B"}


def test_bad_rows_become_problems_and_good_rows_are_kept() -> None:
    rows = [["Key", "Summary", "Estimate", "Spent", "Due"],
            ["A-1", "ok", "4", "5", "2025-01-02"],
            ["A-2", "bad date", "4", "", "31/02/2024"],
            ["A-3", "zero", "0", "", ""],
            ["A-4", "negative", "-2", "", ""],
            ["A-5", "text", "lots", "", ""],
            ["A-1", "dup", "4", "", ""],
            ["", "no id", "4", "", ""],
            ["A-7", "negative effort", "4", "-1", ""],
            [None, None, None, None, None],
            ["A-6", "ok", "2", "NA", "n/a"]]
    items, problems = _map(rows, {"id": "Key", "title": "Summary", "planned_estimate": "Estimate",
                                  "actual_effort": "Spent", "planned_due": "Due"})
    assert [i.external_id for i in items] == ["A-1", "A-6"]
    assert {p.locator: p.reason for p in problems} == {
        "plan.csv row 3": "column 'Due': unparseable date '31/02/2024'",
        "plan.csv row 4": "column 'Estimate': estimate must be above 0, got 0",
        "plan.csv row 5": "column 'Estimate': estimate must be above 0, got -2",
        "plan.csv row 6": "column 'Estimate': not a number: 'lots'",
        "plan.csv row 7": "duplicate id 'A-1' (first at row 2)",
        "plan.csv row 8": "column 'Key': blank id",
        "plan.csv row 9": "column 'Spent': effort cannot be negative, got -1",
    }
    assert problems[0].raw == {"Key": "A-2", "Summary": "bad date", "Estimate": "4", "Spent": "",
                               "Due": "31/02/2024"}
    assert items[1].actual_effort is None and items[1].planned_due is None


def test_status_from_a_column_and_inferred_without_one() -> None:
    rows = [["Key", "Status", "Spent", "Done"], ["A", "Closed", "", ""], ["B", "won\u2019t do", "", ""],
            ["C", "In Progress", "3", ""], ["D", "RESOLVED", "2", "2025-01-01"], ["E", "", "", ""],
            ["F", "Shipped-ish", "", ""]]
    items, _ = _map(rows, {"id": "Key", "status": "Status", "actual_effort": "Spent",
                           "actual_end": "Done"})
    assert [i.status for i in items] == ["done", "cancelled", "open", "done", "open", "open"]
    assert items[0].actual_end is None and items[0].actual_effort is None  # done, kept
    custom, _ = _map(rows, {"id": "Key", "status": "Status"}, done_statuses=frozenset({"Shipped-ish"}),
                     cancelled_statuses=frozenset({"closed"}))
    assert [i.status for i in custom] == ["cancelled", "open", "open", "open", "open", "done"]
    inferred, _ = _map(rows, {"id": "Key", "actual_effort": "Spent", "actual_end": "Done"})
    assert [i.status for i in inferred] == ["open", "open", "done", "done", "open", "open"]


def test_segments_skip_blanks_and_values_are_strings() -> None:
    rows: list[list[Any]] = [["Key", "Team", "Size"], ["A", "Pay", 3.0], ["B", "  ", "-"]]
    items, _ = _map(rows, {"id": "Key", "segments": ["Team", "Size"]})
    assert items[0].segments == {"Team": "Pay", "Size": "3"} and items[1].segments == {}


def test_decimal_comma_and_units_through_a_table() -> None:
    rows = [["Key", "Estimate", "Spent"], ["A", "1,5", "2d"], ["B", "1,250", "1w"]]
    items, problems = _map(rows, {"id": "Key", "planned_estimate": "Estimate",
                                  "actual_effort": "Spent"}, unit="hours", hours_per_day=7.5)
    assert problems == []
    assert [(i.planned_estimate, i.actual_effort) for i in items] == [(1.5, 15.0), (1.25, 37.5)]


def test_short_rows_still_carry_every_header_in_raw() -> None:
    rows: list[list[Any]] = [["Key", "Summary", "Done"], ["A", "x"]]
    items, _ = _map(rows, {"id": "Key", "actual_end": "Done"})
    assert items[0].raw == {"Key": "A", "Summary": "x", "Done": ""}


def test_our_columns_never_take_a_user_column_name() -> None:
    titles = our_titles(["Key", "learnloop p80", "learnloop P80 (learnloop)"])
    assert titles["forecast_p80"] == "learnloop P80 (learnloop) (learnloop)"
    assert titles["delta"] == COLUMNS["delta"] == "learnloop \u0394"


@pytest.mark.parametrize(("value", "plain", "cell"), [
    ("=1+1", True, "'=1+1"), ("+x", True, "'+x"), ("-x", True, "'-x"), ("@x", True, "'@x"),
    ("=1+1", False, "=1+1"), ("fine", True, "fine"), (-2.5, True, "-2.5"), (-2.5, False, -2.5),
    (3.0, True, "3"), (None, True, None),
])
def test_cell_values_are_safe_in_plain_text_tables(value: Any, plain: bool, cell: Any) -> None:
    assert cell_value(value, plain) == cell


def test_columns_are_appended_on_the_header_and_item_rows_and_read_back() -> None:
    rows: list[list[Any]] = [["Plan"], ["Key", "Summary"], ["A", "x", "extra"], ["A", "dup"],
                             ["", "no id"]]
    titles = our_titles(["Key", "Summary"])
    table = with_columns(rows, 2, 0, titles, {"A": {"forecast_p80": "7.5"}})
    assert table[1][3:] == list(titles.values()) and table[0] == ["Plan", None, None, *[None] * 7]
    assert table[2][:3] == ["A", "x", "extra"] and table[2][3 + 2] == "7.5"
    assert table[3][3:] == [None] * 7 and table[4][3:] == [None] * 7
    assert read_written(table, "Key", titles) == {"A": {"forecast_p80": "7.5"}}


def test_guess_type() -> None:
    assert guess_type(["2025-01-02", "03/04/2025", None]) == "date"
    assert guess_type(["3", "4,5", 2.0]) == "number"
    assert guess_type(["Bug", "3"]) == "string"
    assert guess_type([dt.datetime(2025, 1, 1)]) == "date"


def test_a_hundred_thousand_rows_map_in_a_few_seconds() -> None:
    rows: list[list[Any]] = [["Key", "Summary", "Type", "Estimate", "Spent", "Due", "Done",
                              "Status"]]
    for i in range(100_000):
        rows.append([f"T-{i}", f"Task {i}", "Bug" if i % 3 else "Story", str(i % 40 + 1),
                     f"{i % 60 + 1},5" if i % 3 else "", f"{i % 28 + 1:02d}/{i % 12 + 1:02d}/2024",
                     f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}" if i % 3 else "",
                     "Done" if i % 3 else "Open"])
    started = time.perf_counter()
    items, problems = _map(rows, {"id": "Key", "title": "Summary", "planned_estimate": "Estimate",
                                  "actual_effort": "Spent", "planned_due": "Due",
                                  "actual_end": "Done", "status": "Status", "segments": ["Type"]},
                           timezone="Europe/Berlin")
    elapsed = time.perf_counter() - started
    assert len(items) == 100_000 and problems == []
    assert items[13].planned_due == dt.datetime(2024, 2, 13, 23, tzinfo=UTC)
    assert elapsed < 8, elapsed
