"""`learnloop demo` as a first hour (issue 16, point 8): its output reads in order, its
commands run as printed, and it never deletes a store that is in use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.store import open_store
from webapp.cli.common import in_use_marker, store_in_use, using_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], learnloop_home: Path):
    """`learnloop *args` in-process; the demo keeps its own SQLite store under the home, so
    these tests need no test store (and run once, not per backend)."""
    from webapp.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err
    return run


@pytest.mark.slow
def test_demo_output_numbers_its_steps_once_and_its_commands_run(
        cli, learnloop_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = cli("demo", "--no-serve", "--items", "400")
    assert code == 0, err
    lines = out.splitlines()
    home = learnloop_home / "demo"
    assert lines[0].startswith(f"learnloop demo: building a sample workspace in {home} "
                               "(deleted and rebuilt on every run")
    steps = [int(m.group(1)) for m in re.finditer(r"^(\d+)\. ", out, re.MULTILINE)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 6, steps
    for line in lines:  # diffs and JSON sit indented under their step
        assert not re.match(r"[-+@{]|rule |--- |\+\+\+ ", line), line
    assert any(line.startswith("     + {") for line in lines)
    pending = re.search(r"^\d+\. Proposals: (\d+) pending(, the first (\d+) .*)?:$", out,
                        re.MULTILINE)
    assert pending is not None, out
    listed = len(re.findall(r"^   #\d+ ", out[pending.end():].split("\n\n")[0], re.MULTILINE))
    assert listed == int(pending.group(3) or pending.group(1)) and listed <= 5
    # A declared process experiment and a lesson, judged with their evidence (planted: team
    # WEB overruns a quarter less since its change, PAY's bugs run over).
    experiment = re.search(r"^   experiment: 2-week sprints cut team WEB's effort ratio .* by "
                           r"(\d+)% \(90% interval (\d+) to (\d+), n=\d+ vs \d+", out,
                           re.MULTILINE)
    assert experiment is not None, out
    assert int(experiment.group(2)) > 0  # the interval excludes no change
    assert re.search(r"^   lesson: holds: since \d{4}-\d\d-\d\d, team PAY and type Bug tasks "
                     r"took a median [\d.]+x their estimate \(n=\d+", out, re.MULTILINE), out
    assert "sign in as" not in out and "learnloop-demo" not in out  # --no-serve: no sign-in
    assert "not started (--no-serve)" in out

    explore = out[out.index("Explore it"):].splitlines()[1:]
    commands = [line.strip() for line in explore if line.startswith("   ") and "(" not in line]
    assert commands[0] == f"export LEARNLOOP_DATABASE_URL=sqlite:///{home / 'learnloop.db'}"
    exe = Path(sys.executable).parent / "learnloop"
    shown = os.path.relpath(exe, ROOT) if exe.is_relative_to(ROOT) else str(exe)
    assert all(c.startswith(f"{shown} ") for c in commands[1:]) and len(commands) == 4
    env = {k: v for k, v in os.environ.items() if k != "LEARNLOOP_DATABASE_URL"}
    for command in commands[1:]:  # as printed, in a shell started here
        result = subprocess.run(["bash", "-c", f"{commands[0]} && {command}"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout.strip(), command
        if command.endswith("forecast --group team=PAY"):
            assert result.stdout.startswith("team=PAY: "), result.stdout


def _sentinel(learnloop_home: Path) -> tuple[Path, Path]:
    home = learnloop_home / "demo"
    home.mkdir(parents=True)
    db = home / "learnloop.db"
    open_store(f"sqlite:///{db}").dispose()
    keep = home / "notes.txt"
    keep.write_text("mine", encoding="utf-8")
    return db, keep


def test_demo_refuses_to_delete_a_store_a_server_uses(cli, learnloop_home: Path) -> None:
    db, keep = _sentinel(learnloop_home)
    engine = open_store(f"sqlite:///{db}")
    try:
        with using_store(engine):
            code, out, err = cli("demo", "--no-serve", "--items", "300")
            assert (code, out) == (2, "")
            assert err == (f"error: a learnloop server or worker is using the demo store {db}: "
                           "stop it (Ctrl+C in its terminal), then run the demo again; nothing "
                           "was deleted\n")
            assert keep.read_text(encoding="utf-8") == "mine" and db.exists()
        marker = in_use_marker(engine)
        assert marker is not None and not store_in_use(marker)  # released with the block
    finally:
        engine.dispose()


def test_a_running_worker_marks_its_store_in_use(cli, learnloop_home: Path) -> None:
    db, keep = _sentinel(learnloop_home)
    env = {**os.environ, "LEARNLOOP_DATABASE_URL": f"sqlite:///{db}"}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "learnloop"), "worker",
                               "--run-for", "60"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = db.with_name(db.name + ".in-use")
    try:
        deadline = time.monotonic() + 60
        while not store_in_use(marker):
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        code, _, err = cli("demo", "--no-serve", "--items", "300")
        assert code == 2 and err.count("\n") == 1 and "nothing was deleted" in err
        assert keep.exists()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert not store_in_use(marker)
