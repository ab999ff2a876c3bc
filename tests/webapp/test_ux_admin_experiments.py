"""The experiments page as a results page: chance to win and expected loss coloured, the
sequential interval, results over time, start date and hypothesis, an SRM banner when the
split is off, and the control never called the winner of itself."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connectors import registry, runtime
from core.connections import add_connection
from core.store import unit_of_work
from tests.webapp.accounts_helpers import people, signed_in
from webapp import insight_data
from webapp.demo import OUTREACH_MAPPING
from webapp.demo_data import write_outreach

END = dt.date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _fresh_page_cache() -> None:
    """The pages' aggregate cache is keyed by store URL and the latest run ids, which repeat
    when a test's PostgreSQL store is emptied for the next test: start each test without it."""
    insight_data._cache.clear()


def seed_outreach(engine: Engine, folder: Path, drop_accounts_of: str | None = None) -> None:
    """The demo's generated outreach test (3,000 enrollments of 150 accounts), synced; with
    `drop_accounts_of`, that variant loses 60 of its accounts (a broken split)."""
    path = folder / "outreach.csv"
    write_outreach(path, END)
    if drop_accounts_of:
        with path.open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        keep = [rows[0]] + [r for r in rows[1:] if not (
            r[2] == drop_accounts_of and int(r[5].split("-")[1]) <= 60)]
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(keep)
    with unit_of_work(engine) as s:
        add_connection(s, registry.get("file"), "outreach", {"path": str(path)},
                       OUTREACH_MAPPING)
    runtime.sync(engine, "outreach")


def _page(engine: Engine) -> str:
    people(engine, "viewer")
    return signed_in(engine, "viewer@example.com").get("/experiments").text


def test_results_page_shows_chance_loss_sequential_interval_and_time(
        engine: Engine, tmp_path: Path) -> None:
    seed_outreach(engine, tmp_path)
    page = _page(engine)
    assert "1 experiment." in page  # not "1 experiments"
    # The control wins here (the other angle is worse): said so, never "winner: efficiency".
    verdict = re.search(r'id="verdict-1">([^<]+)<', page)
    assert verdict and verdict.group(1).startswith("Keep the control (efficiency)")
    assert "winner: efficiency" not in page.lower()
    control_row = re.search(r'<tr class="control"><td>efficiency <span class="pill">control'
                            r'</span></td>.*?</tr>', page, re.S)
    assert control_row and "chance" not in control_row.group(0)
    row = re.search(r'<tr class="bad"><td>sustainability</td>(.*?)</tr>', page, re.S)
    assert row, page
    cells = row.group(1)
    assert '<span class="chance bad">0%</span>' in cells
    assert re.search(r'<span class="loss bad">\d+\.\d%</span>', cells)  # expected loss shown
    seq = re.findall(r'<td class="small">(-?\d+\.\d%) to (-?\d+\.\d%)</td>', cells)
    assert seq, cells  # the sequential interval
    assert "Started</dt><dd>2026-07-23" in page
    assert "Hypothesis</dt><dd>sustainability gets a different reply rate than the control" in page
    assert "Cumulative reply rate per variant" in page  # results over time
    assert "Sample ratio mismatch" not in page
    assert "0.2165" not in page and "e-12" not in page  # segment rates as percentages
    assert "21.7% vs 6.6%" in page


def test_a_broken_split_raises_the_srm_banner(engine: Engine, tmp_path: Path) -> None:
    seed_outreach(engine, tmp_path, drop_accounts_of="sustainability")
    page = _page(engine)
    assert 'class="banner bad srm"' in page and "Sample ratio mismatch." in page
    verdict = re.search(r'id="verdict-1">([^<]+)<', page)
    assert verdict and verdict.group(1) == "Sample ratio mismatch: results not trustworthy"


def test_forest_plot_keeps_its_labels_and_a_fixed_scale(engine: Engine, tmp_path: Path) -> None:
    seed_outreach(engine, tmp_path)
    page = _page(engine)
    forest = re.search(r'<svg[^>]*aria-label="Outbound Q1: lift per segment[^"]*"[^>]*>', page)
    assert forest, page
    width = re.search(r'style="max-width:(\d+)px"', forest.group(0))
    assert width and 600 <= int(width.group(1)) <= 900  # drawn at its own size, not stretched
    svg = page[forest.start():page.index("</svg>", forest.start())]
    assert "industry: financial services (n=289)</text>" in svg  # not clipped with "…"
    assert "efficiency vs sustainability</text>" in svg
