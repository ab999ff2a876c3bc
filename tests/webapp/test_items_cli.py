"""`learnloop items list|show`: the committed and the current plan of a file synced three times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.plans_data import MAP_ARGS, write_plan


def _three_syncs(cli, path: Path, name: str = "plan") -> None:
    write_plan(path, 1)
    code, _, err = cli("connections", "add", "file", name, "--set", f"path={path}", *MAP_ARGS)
    assert code == 0, err
    for version in (1, 2, 3):
        write_plan(path, version)
        code, _, err = cli("sync", name)
        assert code == 0, err


def test_show_gives_the_committed_and_current_plan_and_both_deviations(
        cli, tmp_path: Path) -> None:
    _three_syncs(cli, tmp_path / "plan.csv")
    code, out, _ = cli("items", "show", "P-1", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["plan"]["committed"]["planned_due"] == "2025-03-20T00:00:00+00:00"
    assert shown["plan"]["current"]["planned_due"] == "2025-03-30T00:00:00+00:00"
    assert shown["plan"]["current"]["planned_estimate"] == 8.0
    (change,) = shown["plan_changes"]
    assert (change["field"], change["from"], change["to"]) == (
        "planned_due", "2025-03-20T00:00:00+00:00", "2025-03-30T00:00:00+00:00")
    assert change["at"]
    slips = {d["against"]: d["value"] for d in shown["deviations"]
             if d["measure"] == "slip_days"}
    assert slips == {"committed": pytest.approx(10.0), "current": pytest.approx(0.0)}
    assert shown["actuals"]["actual_end"] == "2025-03-30T00:00:00+00:00"
    assert shown["status"] == "done" and shown["connection"] == "plan"

    code, text, _ = cli("items", "show", "P-1")
    assert code == 0
    assert "due: 2025-03-30 (committed: 2025-03-20)" in text
    assert "due 2025-03-20 -> 2025-03-30" in text
    assert "against the committed plan: finish 10 days late" in text
    assert "against the current plan: finish on time" in text
    assert "{" not in text and "datetime" not in text

    code, out, _ = cli("items", "list", "--json")
    assert code == 0
    listed = {r["key"]: r for r in json.loads(out)}
    assert set(listed) == {f"P-{i}" for i in range(1, 7)}
    assert listed["P-1"]["plan_changes"] == 1 and listed["P-2"]["plan_changes"] == 0
    code, text, _ = cli("items", "list")
    assert "P-1 [plan, done] Open item: due 2025-03-30 (committed 2025-03-20); plan changed 1 " \
           "time" in text


def test_unknown_and_ambiguous_keys_are_one_clear_line(cli, tmp_path: Path) -> None:
    _three_syncs(cli, tmp_path / "a.csv", "first")
    _three_syncs(cli, tmp_path / "b.csv", "second")
    code, _, err = cli("items", "show", "P-1")
    assert code == 2 and err.count("\n") == 1
    assert "in several connections (first, second)" in err and "--connection" in err
    code, out, _ = cli("items", "show", "P-1", "--connection", "second", "--json")
    assert code == 0 and json.loads(out)["connection"] == "second"
    code, _, err = cli("items", "show", "NOPE-9")
    assert code == 2 and err.strip() == ("error: no item 'NOPE-9'; `learnloop items list` "
                                         "shows the ids")
    code, _, err = cli("items", "show", "P-1", "--connection", "nosuch")
    assert code == 2 and err.strip() == "error: unknown connection 'nosuch'"
    code, _, err = cli("items", "list", "--connection", "nosuch")
    assert code == 2 and err.strip() == "error: unknown connection 'nosuch'"
