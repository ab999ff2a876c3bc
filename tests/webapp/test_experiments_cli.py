"""`learnloop experiments analyze`: both input shapes, Hillstrom, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp.cli import main


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def call(*args: str) -> tuple[int, str, str]:
        code = main(["experiments", "analyze", *args])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err
    return call


def test_hillstrom_reference_table_and_segment_policy(run, shared_data: Path) -> None:
    path = shared_data / "hillstrom" / "hillstrom.csv"
    code, out, err = run(str(path), "--arm", "segment", "--control", "No E-Mail",
                         "--metric", "visit", "--metric", "conversion", "--metric", "spend",
                         "--segment", "history_segment", "--segment", "zip_code",
                         "--segment", "channel", "--segment", "newbie", "--segment", "mens",
                         "--segment", "womens", "--json")
    assert code == 0, err
    result = json.loads(out)
    (test,) = result["tests"]
    assert test["srm_p"] == pytest.approx(0.904, abs=0.001)
    assert test["decision"] == "winner" and test["winner"] == "Mens E-Mail"
    visit = test["metrics"]["visit"]
    assert visit["Mens E-Mail"]["n"] == 21307
    assert visit["Mens E-Mail"]["mean"] == pytest.approx(3894 / 21307, abs=1e-12)
    assert visit["No E-Mail"]["lift"] is None
    expected = {("visit", "Mens E-Mail"): (0.721, 0.638, 0.804),
                ("conversion", "Mens E-Mail"): (1.188, 0.722, 1.655),
                ("spend", "Mens E-Mail"): (1.179, 0.544, 1.814),
                ("visit", "Womens E-Mail"): (0.426, 0.354, 0.498),
                ("conversion", "Womens E-Mail"): (0.543, 0.193, 0.893),
                ("spend", "Womens E-Mail"): (0.650, 0.149, 1.151)}
    for (metric, arm), (lift, lo, hi) in expected.items():
        row = test["metrics"][metric][arm]
        assert row["lift"] == pytest.approx(lift, abs=0.005)
        assert row["ci"] == pytest.approx([lo, hi], abs=0.005)
    findings = result["segment_findings"]
    assert any(f["segment"] == "mens=1,womens=0" and f["best_arm"] == "Mens E-Mail"
               and f["compared_to"] == "Womens E-Mail" and f["metric"] == "visit"
               for f in findings), findings
    assert not any(f["best_arm"] == "Womens E-Mail" for f in findings)
    assert not any("mens=0" in f["segment"].split(",") for f in findings)


def test_pre_aggregated_many_tests(run, tmp_path: Path) -> None:
    lines = ["test,arm,units,conversions"]
    lines += ["a,control,10000,500", "a,new,10000,700", "b,control,5000,250", "b,new,5000,251"]
    f = tmp_path / "agg.csv"
    f.write_text("\n".join(lines) + "\n")
    code, out, _ = run(str(f), "--test", "test", "--arm", "arm", "--units", "units",
                       "--conversions", "conversions", "--json")
    assert code == 0
    tests = {t["test"]: t for t in json.loads(out)["tests"]}
    assert tests["a"]["decision"] == "winner" and tests["a"]["winner"] == "new"
    assert tests["b"]["decision"] == "no_decision" and tests["b"]["winner"] is None
    assert set(tests["a"]["metrics"]) == {"conversions"}
    assert tests["a"]["metrics"]["conversions"]["new"]["mean"] == 0.07


@pytest.mark.parametrize(("rows", "extra", "message"), [
    ("a,control,100,5\na,new,100,-1\n", [], "negative count"),
    ("a,control,100,5\na,new,100,101\n", [], "conversions (101) > units (100)"),
    ("a,control,100,5\na,new,100,6\n", ["--control", "ctl"], "unknown control arm 'ctl'"),
    ("", [], "the file is empty"),
])
def test_bad_aggregated_input(run, tmp_path: Path, rows: str, extra: list[str],
                              message: str) -> None:
    f = tmp_path / "agg.csv"
    f.write_text("test,arm,units,conversions\n" + rows)
    code, _, err = run(str(f), "--test", "test", "--arm", "arm", "--units", "units",
                       "--conversions", "conversions", *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_bad_unit_level_input(run, tmp_path: Path) -> None:
    f = tmp_path / "units.csv"
    f.write_text("arm,reply\nA,1\nB,maybe\n")
    code, _, err = run(str(f), "--arm", "arm", "--metric", "reply")
    assert code == 2 and "row 3: column 'reply': not a number" in err
    code, _, err = run(str(f), "--arm", "variant", "--metric", "reply")
    assert code == 2 and "missing column 'variant'" in err


def test_observational_data_only_yields_hypotheses(run, tmp_path: Path) -> None:
    import random

    rng = random.Random(2)
    lines = ["arm,reply,industry"]
    for _ in range(6000):
        ind = rng.choice(["fin", "retail"])
        arm = rng.choice(["A", "B"])
        p = 0.3 if (arm == "B" and ind == "fin") else 0.1
        lines.append(f"{arm},{int(rng.random() < p)},{ind}")
    f = tmp_path / "obs.csv"
    f.write_text("\n".join(lines) + "\n")
    code, out, _ = run(str(f), "--arm", "arm", "--control", "A", "--metric", "reply",
                       "--segment", "industry", "--observational", "--json")
    findings = json.loads(out)["segment_findings"]
    assert code == 0 and findings
    assert all(f["kind"] == "hypothesis" for f in findings)
    assert findings[0]["segment"] == "industry=fin" and findings[0]["best_arm"] == "B"


def test_bank_marketing_is_observational_and_never_becomes_policy(run, shared_data: Path) -> None:
    path = shared_data / "bank_marketing" / "bank-full.csv"
    code, out, err = run(str(path), "--arm", "contact", "--control", "unknown", "--metric", "y",
                         "--segment", "job", "--segment", "marital", "--observational", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["tests"][0]["metrics"]["y"]["cellular"]["n"] > 25_000
    assert result["segment_findings"]
    assert {f["kind"] for f in result["segment_findings"]} == {"hypothesis"}
    assert all("not a policy" in f["statement"] for f in result["segment_findings"])


def test_ratio_metric_by_account_uses_the_delta_method(run, tmp_path: Path) -> None:
    import random

    import numpy as np

    rng = random.Random(8)
    lines = ["account,arm,replies,contacts"]
    for i in range(2000):
        arm = "A" if i % 2 else "B"
        contacts = rng.randint(1, 8)
        rate = 0.15 if arm == "B" else 0.10
        lines.append(f"acct{i},{arm},{sum(rng.random() < rate for _ in range(contacts))},{contacts}")
    f = tmp_path / "accounts.csv"
    f.write_text("\n".join(lines) + "\n")
    code, out, err = run(str(f), "--arm", "arm", "--control", "A", "--ratio", "replies/contacts",
                         "--json")
    assert code == 0, err
    rows = json.loads(out)["tests"][0]["metrics"]["replies/contacts"]
    reps = np.array([[int(x) for x in line.split(",")[2:]] for line in lines[1:]])
    b = reps[1::2] if lines[1].split(",")[1] == "A" else reps[0::2]
    assert rows["B"]["mean"] == pytest.approx(b[:, 0].sum() / b[:, 1].sum())
    assert 0.2 < rows["B"]["lift"] < 0.8 and rows["B"]["ci"][0] > 0
    code, _, err = run(str(f), "--arm", "arm", "--ratio", "replies")
    assert code == 2 and "NUMERATOR/DENOMINATOR" in err
