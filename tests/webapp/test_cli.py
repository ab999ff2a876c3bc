"""The `learnloop` CLI as a person uses it: clear one-line errors, nothing good lost."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = "Key,Summary,Type,Team,Estimate,Spent,Due,Done,Status\n"


def _rows(n: int, start: int = 0) -> str:
    lines = []
    for i in range(start, start + n):
        kind = "Bug" if i % 3 == 0 else "Story"
        spent = 8 if kind == "Bug" else 4
        done = f"2025-02-{1 + i % 27:02d}" if i % 10 else ""
        lines.append(f"T-{i},Task {i},{kind},{'AB'[i % 2]},4,{spent if done else ''},"
                     f"2025-01-{1 + i % 27:02d},{done},{'Done' if done else 'Open'}\n")
    return "".join(lines)


def _add(cli, path: Path, name: str = "plan") -> None:
    code, _, err = cli("connections", "add", "file", name, "--set", f"path={path}",
                       "--map", "id=Key", "--map", "title=Summary", "--map",
                       "planned_estimate=Estimate", "--map", "actual_effort=Spent",
                       "--map", "planned_due=Due", "--map", "actual_end=Done",
                       "--map", "status=Status", "--map", "segments=Type,Team")
    assert code == 0, err


def test_init_creates_store_and_private_key(cli, learnloop_home: Path) -> None:
    code, out, _ = cli("init")
    assert code == 0 and "store ready" in out
    mode = stat.S_IMODE(os.stat(learnloop_home / "secret.key").st_mode)
    assert mode == 0o600


def test_connections_add_list_test_remove(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(20))
    _add(cli, plan)
    code, out, _ = cli("connections", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["name"] == "plan" and row["kind"] == "file"
    assert cli("connections", "test", "plan")[0] == 0
    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={plan}",
                       "--map", "id=Key")
    assert code == 2 and err.count("\n") == 1 and "already exists" in err
    assert cli("connections", "remove", "plan", "--yes")[0] == 0
    assert json.loads(cli("connections", "list", "--json")[1]) == []


def test_commit_rule_and_kind_map_are_stored_on_the_connection(cli, tmp_path: Path) -> None:
    from sqlalchemy import select

    from core.model import Connection
    from core.store import open_store, unit_of_work

    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(5))
    code, _, err = cli("connections", "add", "file", "p1", "--set", f"path={plan}",
                       "--map", "id=Key", "--commit-on", "milestone=first_seen",
                       "--commit-on", "*=creation", "--kind-map", "milestone=task")
    assert code == 0, err
    engine = open_store()
    with unit_of_work(engine) as s:
        scope = s.scalar(select(Connection.scope).where(Connection.name == "p1"))
    engine.dispose()
    assert scope == {"commit_on": {"milestone": "first_seen", "*": "creation"},
                     "kind_map": {"milestone": "task"}}
    code, _, err = cli("connections", "add", "file", "p2", "--set", f"path={plan}",
                       "--map", "id=Key", "--commit-on", "whenever")
    assert code == 2 and err.count("\n") == 1 and "commit_on rule 'whenever'" in err
    code, _, err = cli("connections", "add", "file", "p3", "--set", f"path={plan}",
                       "--map", "id=Key", "--commit-on", "start", "--commit-on", "deal=creation")
    assert code == 2 and err.count("\n") == 1 and "--commit-on" in err


def test_bad_connection_input_gets_one_line(cli, tmp_path: Path) -> None:
    code, _, err = cli("connections", "add", "nosuchtool", "x")
    assert code == 2 and "unknown connector 'nosuchtool'" in err and err.count("\n") == 1
    code, _, err = cli("connections", "add", "file", "x", "--map", "id=Key")
    assert code == 2 and "path" in err and err.count("\n") == 1
    code, _, err = cli("sync", "nope")
    assert code == 2 and "unknown connection 'nope'" in err


def test_sync_quarantines_bad_rows_and_keeps_good_ones(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    bad = ("T-900,Bad date,Bug,A,4,,31/31/2025,,Open\n"
           "T-901,Zero estimate,Bug,A,0,,2025-01-05,,Open\n")
    plan.write_text(HEADER + _rows(30) + bad)
    _add(cli, plan)
    code, _, err = cli("sync")
    assert code == 1
    assert err.count("\n") == 1 and "2 rows quarantined" in err and "row 32" in err
    code, out, _ = cli("connections", "list", "--json")
    (row,) = json.loads(out)
    assert row["items"] == 30 and row["quarantined"] == 2
    code, out, _ = cli("quarantine", "--json")
    reasons = {r["where"]: r["reason"] for r in json.loads(out)}
    assert any("Due" in r for r in reasons.values())
    assert any("Estimate" in r for r in reasons.values())
    code, out, _ = cli("sync", "--json")  # unchanged file: nothing new, nothing duplicated
    assert code == 0 and json.loads(out)[0]["created"] == 0


def test_missing_column_is_one_line_and_loses_nothing(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(25))
    _add(cli, plan)
    assert cli("sync")[0] == 0
    plan.write_text(HEADER.replace(",Due", ",When") + _rows(26))
    code, _, err = cli("sync")
    assert code == 2 and err.count("\n") == 1 and "Due" in err and "plan.csv" in err
    (row,) = json.loads(cli("connections", "list", "--json")[1])
    assert row["items"] == 25 and row["health"] == "error"


def test_wrong_encoding_is_named(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_bytes((HEADER + "T-1,Caf\xe9 \u2013 fix,Bug,A,4,5,2025-01-02,2025-01-03,Done\n")
                     .encode("cp1252"))
    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={plan}",
                       "--set", "encoding=utf-8", "--map", "id=Key")
    assert code == 2 and "utf-8" in err and err.count("\n") == 1  # checked when added
    plan.write_text(HEADER + _rows(3), encoding="utf-8")
    code, _, err = cli("connections", "add", "file", "plan", "--set", f"path={plan}",
                       "--set", "encoding=utf-8", "--map", "id=Key")
    assert code == 0, err
    plan.write_bytes((HEADER + "T-1,Caf\xe9 \u2013 fix,Bug,A,4,5,2025-01-02,2025-01-03,Done\n")
                     .encode("cp1252"))
    code, _, err = cli("sync")
    assert code == 2 and "utf-8" in err and err.count("\n") == 1


def test_learn_findings_and_proposals(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(300))
    _add(cli, plan)
    assert cli("sync")[0] == 0
    code, out, err = cli("learn", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["findings"], report
    assert report["delivery"]["delivered"] > 0
    code, out, _ = cli("findings", "--json")
    found = json.loads(out)
    assert found["findings"][0]["n"] >= 8
    assert {"overall", "cycles", "segments"} <= set(found["calibration"])
    assert "trend" in found["gap"]
    code, out, _ = cli("forecast", "--group", "Type=Bug", "--json")
    result = json.loads(out)
    assert code == 0 and result["group"] == {"Type": "Bug"} and result["open_items"] == 10
    assert result["bottom_up"]["p50"] <= result["bottom_up"]["p90"]
    code, text, _ = cli("forecast")
    assert code == 0 and "bottom-up" in text and "throughput" in text
    proposals = json.loads(cli("proposals", "list", "--json")[1])
    assert proposals
    pid = str(proposals[0]["id"])
    code, out, _ = cli("proposals", "show", pid, "--json")
    assert "rule effort:" in json.loads(out)["diff"]
    for bad, says in (("p99=1.2", "only p50, p80, p90 can be edited"),
                      ("p80=abc", "p80=abc: not a number"), ("p80=nan", "p80")):
        code, _, err = cli("proposals", "accept", pid, "--set", bad)
        assert code == 2 and err.count("\n") == 1 and says in err, err
    code, out, err = cli("proposals", "accept", pid, "--by", "owner", "--note", "ok")
    assert code == 0 and "policy is now version 2" in out, err
    code, _, err = cli("proposals", "accept", pid)
    assert code == 2 and "not pending" in err
    code, _, err = cli("proposals", "show", "9999")
    assert code == 2 and "no proposal #9999" in err
    copy = tmp_path / "plan.learnloop.csv"
    assert "learnloop P80" in copy.read_text(encoding="utf-8-sig").splitlines()[0]


@pytest.mark.slow
def test_demo_runs_twice_from_the_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "learnloop"
    env = {**os.environ, "LEARNLOOP_HOME": str(tmp_path / "home")}
    env.pop("LEARNLOOP_DATABASE_URL", None)
    for _ in range(2):
        result = subprocess.run([str(exe), "demo", "--no-serve", "--items", "600"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "GENERATED" in result.stdout
        assert "finding:" in result.stdout and "policy is now version 2" in result.stdout
        assert "Traceback" not in result.stderr


def test_backtest_reports_learnloop_and_baselines(cli, tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    lines = ["when,plan,actual,kind"]
    for i in range(400):
        kind = rng.choice(["a", "b"])
        plan = rng.choice([1, 2, 4, 8])
        actual = round(plan * (2.0 if kind == "a" else 1.0) * rng.lognormvariate(0, 0.3), 2)
        lines.append(f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00,{plan},{actual},{kind}")
    lines += ["2024-02-01,0,3,a", "2024-02-01,,3,a", "someday,2,3,a"]
    f = tmp_path / "history.csv"
    f.write_text("\n".join(lines) + "\n")
    code, out, err = cli("backtest", str(f), "--planned", "plan", "--actual", "actual",
                         "--time", "when", "--segment", "kind", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["n_train"], result["n_test"]) == (280, 120)
    assert result["left_out"] == {"planned 0": 1, "planned missing": 1,
                                  "time missing or unparseable": 1}
    p80 = result["quantiles"]["0.8"]
    assert set(p80) == {"learnloop", "raw_plan", "global_multiplier", "best_single_column"}
    assert p80["best_single_column"]["column"] == "kind"
    assert p80["learnloop"]["pinball"] < p80["global_multiplier"]["pinball"]
    code, _, err = cli("backtest", str(f), "--planned", "plan", "--actual", "nope",
                       "--time", "when")
    assert code == 2 and "missing column 'nope'" in err and err.count("\n") == 1
    code, text, _ = cli("backtest", str(f), "--planned", "plan", "--actual", "actual",
                        "--time", "when")
    assert code == 0 and "global multiplier x" in text and "P80" in text
    assert "best single column: plan size" in text  # no --segment: the plan size is the one column


def test_backtest_counts_zero_actuals_and_refuses_a_file_with_nothing_usable(
        cli, tmp_path: Path) -> None:
    import random

    rng = random.Random(4)
    lines = ["when,plan,actual,done"]
    for i in range(300):
        plan = rng.randint(1, 8)
        actual = 0 if i % 12 == 0 else max(1, round(plan * rng.lognormvariate(0, 0.4)))
        day = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}"
        lines.append(f"{day}T{i % 24:02d}:00,{plan},{actual},{day}T23:59")
    f = tmp_path / "pomodoros.csv"
    f.write_text("\n".join(lines) + "\n")
    code, out, err = cli("backtest", str(f), "--planned", "plan", "--actual", "actual",
                         "--time", "when", "--done", "done", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["left_out"]["actual 0"] == 25
    assert result["finish_time_missing_kept"] == 0
    assert "25 finished with actual 0 left out" in result["zero_actuals"]["note"]
    code, text, _ = cli("backtest", str(f), "--planned", "plan", "--actual", "actual",
                        "--time", "when")
    assert code == 0 and "25 finished with actual 0 left out" in text
    empty = tmp_path / "empty.csv"
    empty.write_text("when,plan,actual\n2024-01-01,0,1\n2024-01-02,3,0\n")
    code, _, err = cli("backtest", str(empty), "--planned", "plan", "--actual", "actual",
                       "--time", "when")
    assert code == 2 and err.count("\n") == 1
    assert "0 usable rows of 2 (left out: actual 0: 1; planned 0: 1)" in err


def test_bench_learn_breaks_the_run_down_into_wall_and_cpu_per_step(cli) -> None:
    code, out, err = cli("bench", "learn", "--items", "300", "--json")
    assert code == 0, err
    detail = json.loads(out)["detail"]
    steps = detail["steps"]
    assert list(steps)[:2] == ["score ledger", "load"] and list(steps)[-2:] == ["write-back",
                                                                              "commit"]
    assert all(t["wall"] >= 0 and t["cpu"] >= 0 for t in steps.values())
    assert detail["writes_queued"] > 0 and detail["cpu_seconds"] > 0
    assert len(detail["load_before"].split()) == 3
    assert len(detail["reference_seconds"]) == 2 and min(detail["reference_seconds"]) > 0
