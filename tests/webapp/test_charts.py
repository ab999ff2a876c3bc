from __future__ import annotations

import itertools
import math
import random
import re
import time
import xml.etree.ElementTree as ET

import pytest

from webapp import charts
from webapp.charts import (
    Estimate,
    Point,
    Series,
    Spread,
    bars,
    distribution,
    forest,
    lines,
    nice_ticks,
    scatter,
)

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>&"'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.find(f"{NS}title") is not None
    return root


def count(root: ET.Element, tag: str, cls: str | None = None) -> int:
    return sum(1 for e in root.iter(f"{NS}{tag}") if cls is None or e.get("class") == cls)


def all_charts(label: str) -> list[str]:
    return [
        scatter([(1, 2), (3, 4)], x_label=label, y_label=label, title=label, labels=[label, "b"]),
        distribution([Spread(label, 10, 0.5, 0.8, 1.0, 1.3, 2.0)], title=label, x_label=label),
        lines(
            [Series(label, [Point(label, 0.7, 0.6, 0.8, n=5), Point("m2", 0.75)])],
            title=label,
            y_label=label,
            targets={label: 0.8},
        ),
        forest([Estimate(label, 0.1, -0.05, 0.2, n=30, note=label)], title=label, x_label=label),
        bars([(label, 3.0), ("b", 5.0)], title=label, y_label=label),
    ]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        (0, 1),
        (0.3, 0.7),
        (-0.034, 0.12),
        (3, 3),
        (1, 1234567),
        (-50, -2),
        (0.001, 0.0042),
        (17, 983),
    ],
)
def test_nice_ticks_round_increasing_covering(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi)
    assert 4 <= len(ticks) <= 6
    assert all(a < b for a, b in itertools.pairwise(ticks))
    assert ticks[0] <= lo and ticks[-1] >= hi
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    for t in ticks:  # every tick is a whole multiple of the step, with no float noise
        assert math.isclose(t / step, round(t / step), abs_tol=1e-9)
        assert len(repr(t)) < 12


def test_nice_ticks_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        nice_ticks(0, math.nan)


def test_scatter_log_counts_only_finite_positive_points() -> None:
    pts = [(1, 2), (10, 8), (0, 5), (-1, 3), (5, math.nan), (math.inf, 2), (3, 0), (40, 100)]
    root = parse(scatter(pts, x_label="Planned", y_label="Actual", title="Plan vs actual"))
    assert count(root, "circle", "pt") == 3
    assert count(root, "line", "diagonal") == 1
    assert "as planned" in "".join(root.itertext())


def test_scatter_linear_keeps_non_positive_but_skips_nan() -> None:
    pts = [(0, 5), (-1, 3), (5, math.nan), (2, 2)]
    root = parse(scatter(pts, x_label="x", y_label="y", title="t", log=False, diagonal=False))
    assert count(root, "circle", "pt") == 3
    assert count(root, "line", "diagonal") == 0


def test_scatter_tooltips_and_caption() -> None:
    svg = scatter(
        [(8, 13), (2, 2)],
        x_label="planned",
        y_label="actual",
        title="t",
        labels=["PAY-12", "PAY-13"],
        n_total=100_000,
    )
    root = parse(svg)
    tips = [c.find(f"{NS}title").text for c in root.iter(f"{NS}circle")]  # type: ignore[union-attr]
    assert tips[0] == "PAY-12: planned 8, actual 13"
    assert "2 of 100,000 items shown" in "".join(root.itertext())
    no_caption = scatter([(8, 13)], x_label="p", y_label="a", title="t", n_total=1)
    assert "items shown" not in no_caption


def test_scatter_many_points_fast_and_compact() -> None:
    rng = random.Random(1)
    pts = [(rng.lognormvariate(2, 1), rng.lognormvariate(2.2, 1)) for _ in range(5000)]
    t0 = time.perf_counter()
    svg = scatter(pts, x_label="planned", y_label="actual", title="t")
    assert time.perf_counter() - t0 < 1.0
    root = parse(svg)
    assert count(root, "circle", "pt") == 5000
    coords = re.findall(r'c[xy]="([^"]+)"', svg)
    assert coords and all(len(c.partition(".")[2]) <= 1 for c in coords)


@pytest.mark.parametrize("svg", all_charts(EVIL))
def test_text_is_escaped(svg: str) -> None:
    assert "<script>" not in svg
    assert '&"' not in svg
    root = parse(svg)
    assert root.get("aria-label") == EVIL
    assert any(EVIL in (t or "") for t in root.itertext())


@pytest.mark.parametrize("svg", all_charts("x"))
def test_no_external_urls(svg: str) -> None:
    assert re.findall(r"https?://[^\"' ]*", svg) == ["http://www.w3.org/2000/svg"]
    assert "<script" not in svg and "href" not in svg


@pytest.mark.parametrize(
    "svg",
    [
        scatter([], x_label="x", y_label="y", title="t"),
        scatter([(math.nan, 1), (-1, 2)], x_label="x", y_label="y", title="t"),
        distribution([Spread("a", 1, math.nan, 1, 1, 1, 1)], title="t", x_label="x"),
        lines([Series("s", [Point("m", math.inf)])], title="t", y_label="y"),
        lines([], title="t", y_label="y"),
        forest([], title="t", x_label="x"),
        bars([("a", math.nan)], title="t", y_label="y"),
    ],
)
def test_empty_inputs_say_no_data(svg: str) -> None:
    root = parse(svg)
    assert "No data yet" in "".join(root.itertext())
    assert count(root, "circle") == count(root, "rect") == 0


def test_empty_message_is_customisable() -> None:
    assert "Run a sync first" in bars([], title="t", y_label="y", empty="Run a sync first")


def test_forest_zero_line_position() -> None:
    rows = [
        Estimate("a", 0.12, 0.02, 0.3, n=100),
        Estimate("b", -0.05, -0.2, 0.1),
        Estimate("c", math.nan, 0, 1),
    ]
    root = parse(forest(rows, title="Lift", x_label="lift"))
    ticks = nice_ticks(-0.2, 0.3)
    x0, x1 = charts.ROW_LABEL_WIDTH, charts.WIDTH - charts.ROW_VALUE_WIDTH
    expected = x0 + (0 - ticks[0]) / (ticks[-1] - ticks[0]) * (x1 - x0)
    (zero,) = [e for e in root.iter(f"{NS}line") if e.get("class") == "zero"]
    assert float(zero.get("x1", "nan")) == pytest.approx(expected, abs=0.06)
    assert zero.get("x1") == zero.get("x2")
    assert count(root, "circle", "est") == 2
    text = "".join(root.itertext())
    assert "+12.0%" in text and "-5.0%" in text and "a (n=100)" in text


def test_forest_zero_outside_data_is_included() -> None:
    root = parse(
        forest([Estimate("a", 2.0, 1.5, 2.5)], title="t", x_label="x", zero=1.0, percent=False)
    )
    (zero,) = [e for e in root.iter(f"{NS}line") if e.get("class") == "zero"]
    assert charts.ROW_LABEL_WIDTH <= float(zero.get("x1", "nan")) < charts.WIDTH
    assert "%" not in "".join(root.itertext())


def test_distribution_rows_reference_and_log_scale() -> None:
    groups = [
        Spread("Backend", 123, 0.5, 0.8, 1.1, 1.6, 3.0),
        Spread("Frontend", 40, 0.2, 0.9, 1.4, 4.0, 12.0),
        Spread("Broken", 3, math.nan, 1, 1, 1, 1),
    ]
    svg = distribution(groups, title="Ratio", x_label="actual / planned")
    root = parse(svg)
    assert count(root, "rect", "box") == 2
    assert count(root, "line", "median") == 2
    assert count(root, "line", "ref") == 1
    text = "".join(root.itertext())
    assert "Backend (n=123)" in text and "Broken" not in text
    ticks = [e.text for e in root.iter(f"{NS}text") if e.get("class") == "tick"]
    assert ticks == ["0.1", "1", "10", "100"]  # log scale: 0.2..12 spans > 10x
    no_ref = distribution(groups[:1], title="t", x_label="x", reference=None)
    assert count(parse(no_ref), "line", "ref") == 0


def test_lines_bands_targets_legend_and_nan_gap() -> None:
    s1 = Series(
        "P80",
        [
            Point("Jan", 0.7, 0.6, 0.8, n=12),
            Point("Feb", math.nan),
            Point("Mar", 0.82, 0.7, 0.9),
            Point("Apr", 0.85, 0.75, 0.95),
        ],
    )
    s2 = Series("P50", [Point("Jan", 0.5), Point("Mar", 0.45)])
    svg = lines(
        [s1, s2],
        title="Coverage",
        y_label="share",
        targets={"P80": 0.8, "bad": math.nan},
        y_range=(0, 1),
    )
    root = parse(svg)
    assert count(root, "circle") == 5
    assert count(root, "polygon") == 2  # band split at the NaN gap
    assert count(root, "line", "target") == 1
    paths = [e.get("d", "") for e in root.iter(f"{NS}path")]
    assert paths[0].count("M") == 2 and paths[1].count("M") == 1
    text = "".join(root.itertext())
    assert "Feb" not in text and "Jan" in text and "P50" in text
    tips = [t.text or "" for c in root.iter(f"{NS}circle") for t in c.iter(f"{NS}title")]
    assert "P80 · Jan: 0.7 (0.6 to 0.8), n=12" in tips


def test_bars_heights_and_negative() -> None:
    root = parse(
        bars(
            [("Jan", 10), ("Feb", 5), ("Mar", math.inf), ("Apr", -2)],
            title="Count",
            y_label="items",
        )
    )
    rects = [e for e in root.iter(f"{NS}rect") if e.get("class") == "bar"]
    assert len(rects) == 3
    h = [float(r.get("height", "nan")) for r in rects]
    assert h[0] == pytest.approx(2 * h[1], abs=0.2)
    assert count(root, "line", "zero") == 1
    assert rects[0].find(f"{NS}title").text == "Jan: 10"  # type: ignore[union-attr]
