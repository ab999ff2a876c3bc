"""`learnloop lessons add|list|show`, as text and --json; bad input is one line and exit 2."""

from __future__ import annotations

import json

import pytest

from core.learning.run import run_learning
from core.store import open_store
from tests.core.learning_data import load
from tests.core.lessons_data import work


def test_add_list_show_and_the_evidence_after_a_learning_run(cli, use_store: str) -> None:
    code, out, err = cli("lessons", "add", "We always underestimate integration work",
                         "--predicts", "component=integration takes 1.5x", "--behaviour",
                         "plan 1.5x for integration tasks", "--date", "2026-03-02", "--by", "pm",
                         "--json")
    assert code == 0, err
    added = json.loads(out)
    assert (added["status"], added["multiplier"], added["segment"], added["created_by"]) == (
        "untested", 1.5, {"component": "integration"}, "pm")
    engine = open_store(use_store)
    load(engine, work())
    run_learning(engine)
    engine.dispose()
    code, out, _ = cli("lessons", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["status"] == "holds" and row["evidence"]["recurrence"]["failed"] == 4
    assert row["verdict"].startswith("holds: since 2026-03-02, component integration tasks "
                                     "took a median 1.")
    code, text, _ = cli("lessons", "show", str(added["id"]))
    assert code == 0
    assert "failed again in 4 of 5 projects since: P1, P2, P3, P4" in text
    assert "asks for: plan 1.5x for integration tasks" in text
    assert "90% interval" in text and "{" not in text
    code, text, _ = cli("lessons", "list", "--status", "holds")
    assert code == 0 and text.startswith(f"#{added['id']} [holds] We always underestimate")
    code, out, _ = cli("lessons", "show", str(added["id"]), "--json")
    assert json.loads(out)["evidence"]["n_after"] == row["evidence"]["n_after"]


@pytest.mark.parametrize(("args", "message"), [
    (("add", "x", "--predicts", "meh"), "names no multiplier"),
    (("add", "", "--predicts", "takes 2x"), "a lesson needs its words"),
    (("add", "x", "--predicts", "takes 2x", "--date", "03/2026"), "YYYY-MM-DD"),
    (("add", "x", "--segment", "integration", "--predicts", "takes 2x"),
     "not a list of name=value pairs"),
    (("show", "41"), "no lesson #41"),
    (("list", "--status", "bogus"), "unknown lesson status"),
])
def test_bad_input_is_one_clear_line_and_exit_2(cli, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli("lessons", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err
