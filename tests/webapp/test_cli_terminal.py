"""What the CLI prints is data, never terminal control: no rich markup read from names or
values, and control characters (ESC sequences, BEL, CR) shown as visible escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp.cli import main

HEADER = "Key,Summary,Type,Team,Estimate,Spent,Due,Done,Status\n"
BUG = "Bug\x1b[2J\x1b]0;owned\x07[red]"  # clears the screen and retitles the terminal, raw
TEAM = "team[red]"


def _rows(n: int) -> str:
    lines = []
    for i in range(n):
        kind = BUG if i % 3 == 0 else "Story"
        done = f"2025-02-{1 + i % 27:02d}" if i % 10 else ""
        spent = (8 if kind == BUG else 4) if done else ""
        title = f"Task {i} \x1b[31mred\x1b[0m\r\x9b2J"
        lines.append(f'T-{i},"{title}",{kind},{TEAM if i % 2 else "B"},4,{spent},'
                     f"2025-01-{1 + i % 27:02d},{done},{'Done' if done else 'Open'}\n")
    return "".join(lines)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], use_store: str):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        got = capsys.readouterr()
        for stream in (got.out, got.err):
            assert "Traceback" not in stream
            for raw in ("\x1b", "\x07", "\r", "\x9b"):
                assert raw not in stream, (args, raw, stream[:500])
        return code, got.out, got.err
    return run


def _add(cli, path: Path, name: str) -> tuple[int, str, str]:
    return cli("connections", "add", "file", name, "--set", f"path={path}",
               "--map", "id=Key", "--map", "title=Summary", "--map", "planned_estimate=Estimate",
               "--map", "actual_effort=Spent", "--map", "planned_due=Due",
               "--map", "actual_end=Done", "--map", "status=Status", "--map",
               "segments=Type,Team")


def test_safe_text_escapes_controls_and_keeps_markup_as_typed() -> None:
    from webapp.cli.common import safe_text

    assert safe_text("a\x1b[31mb\tc\nd\x00\x7f\x9b\u202e") == \
        "a\\x1b[31mb\tc\nd\\x00\\x7f\\x9b\\u202e"
    assert safe_text("x[/] [bold]y[/bold] :smile:") == "x[/] [bold]y[/bold] :smile:"


def test_names_with_markup_are_printed_as_typed(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(5))
    code, out, err = _add(cli, plan, "x[/]")
    assert code == 0, err
    assert "added file connection x[/];" in out
    code, out, err = _add(cli, plan, TEAM)
    assert code == 0 and f"connection {TEAM};" in out, err
    code, out, err = cli("connections", "list")
    assert code == 0, err
    assert "x[/] (file)" in out and f"{TEAM} (file)" in out
    assert cli("connections", "test", "x[/]")[0] == 0
    code, out, _ = cli("connections", "list", "--json")
    assert {r["name"] for r in json.loads(out)} == {"x[/]", TEAM}


def test_escape_sequences_from_data_never_reach_the_terminal(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + _rows(300), encoding="utf-8")
    assert _add(cli, plan, "plan")[0] == 0
    assert cli("sync")[0] == 0
    code, out, err = cli("learn")
    assert code == 0, err
    shown = "Bug\\x1b[2J\\x1b]0;owned\\x07[red]"
    assert shown in out  # the finding about that segment, its escapes visible
    code, out, err = cli("findings")
    assert code == 0 and shown in out, err
    code, out, err = cli("proposals", "list")
    assert code == 0 and shown in out, err
    code, out, err = cli("items", "list")
    assert code == 0 and "\\x1b[31mred\\x1b[0m\\x0d\\x9b2J" in out, err
    code, out, _ = cli("findings", "--json")
    assert code == 0 and any(BUG in f["statement"] for f in json.loads(out)["findings"])
