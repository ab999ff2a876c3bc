"""The CLI traps a new user fell into (issue 16, point 7), each walked through the real CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import random
from pathlib import Path

import pytest

from webapp.cli.forecasts import disagreement

HEADER = ["Key", "Summary", "Team", "Type", "Estimate", "Spent", "Due", "Done", "Status"]
TODAY = dt.datetime.now(dt.UTC).date()


def _plan(path: Path, seed: int = 1, slow_team: float = 1.8, open_due: int = 20) -> Path:
    """160 finished tasks of PAY (bugs run long), WEB and OPS over the last 150 days; 12 open
    ones of PAY and WEB (OPS has none open), two of them long overdue."""
    rng = random.Random(seed)
    rows = []
    for i in range(160):
        team = ("PAY", "WEB", "OPS")[i % 3]
        kind = "Bug" if i % 2 else "Story"
        est = rng.choice([2, 4, 8])
        factor = slow_team if (team, kind) == ("PAY", "Bug") else 1.0
        spent = round(est * factor * rng.lognormvariate(0, 0.2), 1)
        due = TODAY - dt.timedelta(days=150 - i * 0.9)
        done = due + dt.timedelta(days=round(rng.lognormvariate(1, 0.5)) if factor > 1 else 0)
        rows.append([f"T-{i}", f"Task {i}", team, kind, est, spent, due.isoformat(),
                     min(done, TODAY - dt.timedelta(days=1)).isoformat(), "Done"])
    for j in range(12):
        due = TODAY + dt.timedelta(days=open_due + j) if j >= 2 else \
            TODAY - dt.timedelta(days=120 + j)
        rows.append([f"O-{j}", f"Open {j}", ("PAY", "WEB")[j % 2], "Bug", 4, "",
                     due.isoformat(), "", "Open"])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _add(cli, path: Path, name: str = "plan") -> None:
    code, _, err = cli("connections", "add", "file", name, "--set", f"path={path}",
                       "--map", "id=Key", "--map", "title=Summary", "--map",
                       "planned_estimate=Estimate", "--map", "actual_effort=Spent",
                       "--map", "planned_due=Due", "--map", "actual_end=Done",
                       "--map", "status=Status", "--map", "segments=Team,Type")
    assert code == 0, err


@pytest.fixture
def learned(cli, tmp_path: Path) -> Path:
    path = _plan(tmp_path / "plan.csv")
    _add(cli, path)
    assert cli("sync")[0] == 0
    code, _, err = cli("learn")
    assert code == 0, err
    return path


def test_group_keys_and_values_match_whatever_their_case(cli, learned: Path) -> None:
    for asked in ("team=PAY", "Team=PAY", "TEAM=pay"):
        code, out, err = cli("forecast", "--group", asked, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["group"] == {"Team": "PAY"} and result["open_items"] == 6, asked
        assert "p50" in result["bottom_up"], result
    code, out, _ = cli("forecast", "--group", "team=PAY")
    assert code == 0 and out.startswith("Team=PAY: 6 open items")
    code, out, err = cli("forecast", "--group", "taem=PAY")
    assert (code, out) == (2, "")
    assert err == ("error: --group taem: no item has a segment 'taem' (did you mean Team?); "
                   "segments: Team, Type\n")
    code, _, err = cli("forecast", "--group", "team=PYA")
    assert code == 2 and err.count("\n") == 1
    assert "no item has Team=PYA (did you mean PAY?); values of Team: OPS, PAY, WEB" in err


def test_a_group_with_nothing_open_says_so_not_no_due_dates(cli, learned: Path) -> None:
    code, out, err = cli("forecast", "--group", "team=OPS")
    assert code == 0, err
    assert "bottom-up: nothing open in this group" in out
    assert "throughput: nothing open in this group" in out
    assert "due dates" not in out


def test_proposal_edits_are_checked_and_nothing_is_stored_when_wrong(
        cli, learned: Path) -> None:
    (first, *_) = json.loads(cli("proposals", "list", "--json")[1])
    pid = str(first["id"])
    for bad, says in (("p99=1.2", "--set p99: only p50, p80, p90 can be edited"),
                      ("p80=abc", "--set p80=abc: not a number"),
                      ("P80=1.5x", "--set P80")):
        code, out, err = cli("proposals", "accept", pid, "--set", bad)
        assert (code, out) == (2, ""), bad
        assert err.count("\n") == 1 and err.startswith("error: ") and says in err, err
        assert "unexpected" not in err
    shown = json.loads(cli("proposals", "show", pid, "--json")[1])
    assert shown["status"] == "pending" and "p99" not in shown["new"]


def test_connections_add_checks_the_file_and_its_columns(cli, tmp_path: Path) -> None:
    path = _plan(tmp_path / "plan.csv")
    code, _, err = cli("connections", "add", "file", "plan", "--set",
                       f"path={tmp_path / 'nope.csv'}", "--map", "id=Key")
    assert code == 2 and err.count("\n") == 1
    assert "not added" in err and "nope.csv: no such file" in err
    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={path}",
                       "--map", "id=Key", "--map", "planned_estimate=Estimate (h)",
                       "--map", "segments=Team,Squad")
    assert code == 2 and err.count("\n") == 1
    assert "missing column 'Estimate (h)'" in err and "'Estimate'" in err  # names the real ones
    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={path}",
                       "--map", "id=Key", "--map", "segments=Team,Squad")
    assert code == 2 and "missing column 'Squad'" in err
    assert json.loads(cli("connections", "list", "--json")[1]) == []  # nothing stored
    _add(cli, path)


def test_sync_reports_every_connection_by_name_and_fails_when_one_did(
        cli, tmp_path: Path) -> None:
    good = _plan(tmp_path / "good.csv")
    broken = _plan(tmp_path / "broken.csv", seed=2)
    _add(cli, broken, "alpha")
    _add(cli, good, "beta")
    broken.write_text("Key,Summary\nX-1,no other columns\n", encoding="utf-8")
    code, out, err = cli("sync")
    assert code == 2
    assert out.startswith("beta: 172 new, 0 updated"), out
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: alpha: broken.csv: missing column")
    assert lines[1] == "error: 1 of 2 connections failed (alpha); the other 1 synced"
    listed = {r["name"]: r for r in json.loads(cli("connections", "list", "--json")[1])}
    assert listed["beta"]["items"] == 172 and listed["alpha"]["items"] == 0
    code, _, err = cli("sync", "alpha")  # one connection, named: one line
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: alpha: ")


def test_findings_empty_states_say_what_happened(cli, tmp_path: Path) -> None:
    code, out, _ = cli("findings")
    assert code == 0 and out.startswith("no findings yet: add a connection")
    path = _plan(tmp_path / "plan.csv", slow_team=1.0)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    for row in rows[1:]:  # every finished task took exactly its estimate, on its due date
        if row[-1] == "Done":
            row[5], row[7] = row[4], row[6]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    _add(cli, path)
    assert cli("findings")[1].startswith("no findings yet: nothing synced so far")
    assert cli("sync")[0] == 0
    assert cli("findings")[1].startswith("no findings yet: no learning run so far")
    assert cli("learn")[0] == 0
    code, out, _ = cli("findings")
    assert code == 0
    assert out.startswith("no findings: learning run #1 (")
    assert "looked at 160 finished items" in out and "no segment of at least 8 items" in out
    assert "sync some connections" not in out


def test_overdue_items_are_forecast_from_today(cli, learned: Path) -> None:
    for key in ("O-0", "O-1"):  # 120 and 121 days overdue
        code, out, err = cli("items", "show", key, "--json")
        assert code == 0, err
        (finish,) = [f for f in json.loads(out)["forecasts"] if f["measure"] == "finish"]
        p50, p80, p90 = (dt.datetime.fromisoformat(finish[k]) for k in ("p50", "p80", "p90"))
        assert p50.date() > TODAY and p50 < p80 < p90, finish
    copy = learned.with_name("plan.learnloop.csv")
    with copy.open(encoding="utf-8-sig", newline="") as fh:
        rows = {r["Key"]: r for r in csv.DictReader(fh)}
    for key in ("O-0", "O-1"):
        assert rows[key]["learnloop finish P80"] > TODAY.isoformat()
        assert f"finish by {TODAY.isoformat()}" not in rows[key]["learnloop insight"]


def test_far_overdue_quantiles_grow_from_the_floor() -> None:
    from core.learning.run import conditional

    levels, slips = [0.5, 0.8, 0.9, 0.95], [1.0, 4.0, 6.0, 9.0]
    late = conditional(levels, slips, 100.0)  # 100 days late: past the whole curve
    assert 100.0 < late[0] < late[1] < late[2] < late[3]
    assert late[1] - 100.0 == pytest.approx(-3.0 / math.log(2) * math.log(0.2), rel=1e-6)
    assert conditional(levels, slips, 100.0) != conditional(levels, slips, 200.0)


def test_group_forecasts_that_disagree_say_why(cli, learned: Path) -> None:
    base = {"as_of": TODAY.isoformat(), "open_items": 40}
    slow = {"p50": (TODAY + dt.timedelta(days=200)).isoformat(), "window_days": 60,
            "finished_in_window": 12, "mean_per_day": 0.2}
    quick = {"p50": (TODAY + dt.timedelta(days=20)).isoformat()}
    why = disagreement({**base, "bottom_up": quick, "throughput": slow})
    assert why is not None and why.startswith("the two differ by 180 days: throughput")
    assert "40 open items one after another" in why and "0.2 a day" in why
    why = disagreement({**base, "bottom_up": slow, "throughput": {**slow, **quick}})
    assert why is not None and "each open item's own forecast" in why
    near = {"p50": (TODAY + dt.timedelta(days=30)).isoformat()}
    assert disagreement({**base, "bottom_up": quick, "throughput": {**slow, **near}}) is None
    code, out, _ = cli("forecast", "--group", "team=PAY", "--json")
    result = json.loads(out)
    code, text, _ = cli("forecast", "--group", "team=PAY")
    assert code == 0 and ("note: the two differ by" in text) == (disagreement(result) is not None)


def test_written_back_csv_agrees_with_itself_and_quotes_the_edited_proposal(
        cli, learned: Path) -> None:
    proposals = json.loads(cli("proposals", "list", "--json")[1])
    (pay,) = [p for p in proposals if p["rule"] == "effort:Team=PAY,Type=Bug"]
    edited = round((pay["new"]["p50"] + pay["new"]["p80"]) / 2, 2)
    assert abs(edited - pay["new"]["p80"]) >= 0.1
    code, out, err = cli("proposals", "accept", str(pay["id"]), "--set", f"p80={edited}")
    assert code == 0 and "policy is now version 2" in out, err
    code, _, err = cli("learn")
    assert code == 0, err
    copy = learned.with_name("plan.learnloop.csv")
    with copy.open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["learnloop P80"]]
    assert rows
    for r in rows:  # the factor is the P80's own: P80 = factor x estimate
        assert float(r["learnloop factor"]) * float(r["Estimate"]) == pytest.approx(
            float(r["learnloop P80"]), abs=0.06 * float(r["Estimate"]))
    pay_bugs = [r for r in rows if (r["Team"], r["Type"]) == ("PAY", "Bug")]
    assert pay_bugs
    for r in pay_bugs:
        assert f"policy for Team PAY and Type Bug: plan for {edited:.2f}x the estimate" in \
            r["learnloop insight"], r["learnloop insight"]
        assert f"{pay['new']['p80']:.2f}x" not in r["learnloop insight"]
