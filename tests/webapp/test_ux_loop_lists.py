"""Lists people can work with, numbers that tell one story, and decisions from anywhere in the
trail (issue 16 points 1-3), on a small store built here (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core import audit, policy
from core.model import Connection, Finding, Forecast, Item, LearningRun, utcnow
from core.store import unit_of_work
from tests.webapp.accounts_helpers import people, signed_in
from tests.webapp.conftest import CliRun

NOW = utcnow()
DAY = dt.timedelta(days=1)


def _store(engine: Engine) -> dict[str, Any]:
    """Two connections: 30 tasks (teams PAY and WEB, one overdue), two deals, 40 enrollments;
    forecasts scored so P80 covers 18 of 30 (off target); a real and a no-difference finding
    and a proposal for the real one."""
    with unit_of_work(engine) as s:
        plan = Connection(kind="file", name="plan", last_sync_at=NOW)
        crm = Connection(kind="file", name="crm", last_sync_at=NOW)
        s.add_all([plan, crm])
        s.flush()
        tasks = [Item(connection_id=plan.id, external_id=f"PAY-{i}" if i % 2 else f"WEB-{i}",
                      title=f"task {i}", kind="task", status="done",
                      segments={"team": "PAY" if i % 2 else "WEB"}, planned_estimate=4.0,
                      actual_effort=6.0 if i % 2 else 4.0, planned_due=NOW - 30 * DAY,
                      actual_end=NOW - 20 * DAY, estimated_at=NOW - 60 * DAY)
                 for i in range(30)]
        late = Item(connection_id=plan.id, external_id="PAY-1267", title="late one",
                    kind="task", status="open", segments={"team": "PAY"},
                    planned_estimate=2.0, planned_due=NOW - 8 * DAY,
                    committed_plan={"planned_estimate": 1.0,
                                    "planned_due": (NOW - 10 * DAY).isoformat()},
                    committed_at=NOW - 40 * DAY, url="https://jira.example.com/browse/PAY-1267")
        deals = [Item(connection_id=crm.id, external_id=f"D-{i}", title=f"deal {i}", kind="deal",
                      status="open", planned_amount=12000.0 + i, planned_due=NOW + 9 * DAY,
                      planned_probability=0.4) for i in range(2)]
        enrolled = [Item(connection_id=crm.id, external_id=f"ENR-{i}", title="", kind="enrollment",
                         status="done", outcome="replied" if i % 4 == 0 else "no reply",
                         planned_start=NOW - 5 * DAY) for i in range(40)]
        s.add_all([*tasks, late, *deals, *enrolled])
        run = LearningRun(model_version="m1", status="ok", started_at=NOW - DAY)
        s.add(run)
        s.flush()
        for n, item in enumerate(tasks):
            s.add(Forecast(item_id=item.id, run_id=run.id, measure="effort", model_version="m1",
                           p50=4.0, p80=5.0, p90=7.0, actual=item.actual_effort,
                           issued_at=NOW - 50 * DAY, scored_at=NOW - 10 * DAY,
                           score={"covered": {"p50": n < 15, "p80": n < 18, "p90": n < 27},
                                  "pinball": {"p50": 0.1, "p80": 0.1, "p90": 0.1}}))
        s.add(Forecast(item_id=late.id, run_id=run.id, measure="effort", model_version="m1",
                       p50=2.5, p80=3.25, p90=4.0, issued_at=NOW - DAY))
        real = Finding(run_id=run.id, measure="effort", segment={"team": "PAY"},
                       statement="team PAY items took 1.5x their estimate", n=15, effect=1.5,
                       interval_low=1.4, interval_high=1.6, p_value=0.001, q_value=0.0031,
                       impact=5.0, evidence={"rest": 1.0, "median_ci_90": [1.4, 1.6]})
        same = Finding(run_id=run.id, measure="effort", segment={"team": "WEB"},
                       statement="team WEB items took 1.0x their estimate (other items 1.0x)",
                       n=15, effect=1.0, interval_low=1.0, interval_high=1.0, p_value=0.01,
                       q_value=0.04, impact=1.0, evidence={"rest": 1.02})
        s.add_all([real, same])
        s.flush()
        prop = policy.propose(
            s, key="effort:team=PAY", selector={"team": "PAY"},
            params={"p50": 1.5, "p80": 1.701, "p90": 2.679843950447392, "n": 15},
            hypothesis="team PAY items take 1.5x", title="team PAY items: plan for 1.7x",
            evidence={"n": 15, "interval_80": [1.0, 2.679843950447392],
                      "p": 0.003050172473839091, "tie_share": 0.3},
            run_id=run.id, finding_id=real.id)
        assert prop is not None
        return {"plan": plan.id, "crm": crm.id, "late": late.id, "proposal": prop.id,
                "same": same.id}


@pytest.fixture
def site(engine: Engine) -> tuple[dict[str, Any], TestClient]:
    ids = _store(engine)
    people(engine, "admin", "template_owner")
    return ids, signed_in(engine, "admin@example.com")


def _rows(page: str, table: str) -> list[str]:
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in body.split("<tr>")[2:]]


def test_items_filter_sort_count_and_show_each_kind_its_own_columns(site: Any) -> None:
    ids, client = site
    page = client.get("/items").text
    assert "<strong>73</strong> items · page 1 of 2" in page  # 31 tasks, 2 deals, 40 enrolled
    assert all(k in page for k in ("task (31)", "deal (2)", "enrollment (40)"))
    first = client.get("/items?kind=task&sort=key").text
    assert "<strong>31</strong> items · page 1 of 1" in first
    rows = _rows(first, "item-list")
    assert rows[0].startswith("PAY-1 ") and "4.0 h" in rows[0] and "6.0 h" in rows[0]
    assert all("Estimate" not in r for r in rows)  # column heads, not repeated per row
    assert "<th>Estimate</th><th>Spent</th><th>Forecast P80</th><th>Due</th>" in first
    overdue = client.get("/items?overdue=1").text
    assert "<strong>1</strong> item · page 1 of 1" in overdue
    assert "overdue 8 days" in overdue and "PAY-1267" in overdue
    team = client.get("/items?kind=task&seg_team=WEB").text
    assert "<strong>15</strong> items" in team and "PAY-" not in team.split('id="item-list"')[1]
    deals = client.get(f"/items?kind=deal&connection={ids['crm']}").text
    assert "<th>Amount</th><th>Close date</th><th>Win chance</th>" in deals
    assert "12,001" in deals and "40%" in deals
    enrollments = client.get("/items?kind=enrollment&status=done&sort=oldest").text
    assert "<strong>40</strong> items · page 1 of 1" in enrollments and "replied" in enrollments
    mixed = client.get("/items?page=2").text  # the oldest: tasks, with their own words
    assert "Estimate 4.0 h · Spent 6.0 h" in mixed


def test_item_page_links_to_its_tool_and_shows_both_plans_and_the_forecast(site: Any) -> None:
    ids, client = site
    page = client.get(f"/items/{ids['late']}").text
    assert 'href="https://jira.example.com/browse/PAY-1267"' in page
    plan = _rows(page, "plan")
    assert any(r.startswith("estimate 1.0 h 2.0 h") for r in plan), plan
    assert "plan for 3.2 h of effort (P80" in page or "plan for 3.3 h of effort (P80" in page
    assert "overdue 8 days" in page


def test_findings_leave_out_no_difference_and_link_items_and_proposal(site: Any) -> None:
    ids, client = site
    page = client.get("/findings").text
    assert "team PAY items took 1.5x" in page and "team WEB items took 1.0x" not in page
    assert 'href="/items?seg_team=PAY"' in page
    assert "plan for 1.7x the estimate to finish 80% of them within it (P80)" in page
    assert f'href="/proposals/{ids["proposal"]}"' in page
    overview = client.get("/").text
    assert re.search(r'<a href="/findings">1</a>', overview)


def test_proposal_tells_one_story_with_formatted_evidence(site: Any) -> None:
    ids, client = site
    listing = client.get("/proposals").text
    assert "P80 1.7x, median 1.5x, n=15" in listing
    page = client.get(f"/proposals/{ids['proposal']}").text
    story = re.search(r'<p id="story"><strong>(.*?)</strong>', page, re.S)
    assert story is not None
    assert html.unescape(story.group(1)) == (
        "The typical one of the team PAY items took 1.5x its estimate (90% confidence "
        "interval 1.4\u20131.6x); plan for 1.7x the estimate to finish 80% of them within it "
        "(P80); the rule's own median is 1.5x. How sure: n=15 finished items, q=0.0031.")
    evidence = " | ".join(_rows(page, "evidence"))
    assert "interval 80 1\u20132.68" in evidence.replace("1.0", "1")
    assert "p-value 0.0031" in evidence and "logged exactly the estimate 30%" in evidence
    assert "{" not in evidence and "2.6798" not in evidence


def test_overview_flags_an_off_target_forecast_and_agrees_with_the_audit(
        site: Any, engine: Engine) -> None:
    _, client = site
    page = client.get("/").text
    assert 'id="p80-flag"' in page and "P80 covered 60%" in page
    assert "40 enrollments" in page  # counted apart, not among the planned items
    with unit_of_work(engine) as s:
        pva = audit.measure(s, NOW)["planned_vs_actual"]
        signal = audit.measure(s, NOW)["signal_capture"]
    assert pva.figures["p80_coverage"] == pytest.approx(0.6) and pva.figures["scored"] == 30
    assert "18 of 30 cases (60%)" in pva.evidence
    assert signal.figures["finished"] == 30  # the 40 done enrollments do not drag it down


def test_decisions_from_the_cli_reach_the_trail_and_activity(site: Any, cli: CliRun) -> None:
    ids, client = site
    code, _, err = cli("proposals", "accept", str(ids["proposal"]), "--by", "cli@example.com",
                       "--note", "from the terminal", "--set", "p80=1.6", "--no-deliver")
    assert code == 0, err
    page = client.get(f"/proposals/{ids['proposal']}").text
    trail = " | ".join(_rows(page, "trail")) if 'id="trail"' in page else ""
    assert "cli@example.com" in page and "accepted the proposal" in page, trail
    assert "no decisions yet" not in page
    assert "p80 1.6" in page and "1.7 → 1.6" in page
    activity = client.get("/activity").text
    assert "cli@example.com" in activity and f"proposal {ids['proposal']}" in activity


def test_the_cli_flags_the_off_target_forecast_too(site: Any, cli: CliRun) -> None:
    code, out, err = cli("findings")
    assert code == 0, err
    assert "OFF TARGET: P80 covered 60% of actuals" in out and "excludes the target 80%" in out
