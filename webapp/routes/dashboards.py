"""What teams look at: the overview charts, items with their timelines, experiments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from webapp import charts, experiment_data, insight_data, item_data
from webapp.deps import CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import render

router = APIRouter()


def overview_charts(data: dict[str, Any]) -> dict[str, str]:
    """The four overview charts as inline SVG."""
    sc, spread, cal, gap = data["scatter"], data["spread"], data["calibration"], data["gap"]
    series = []
    for level in ("p50", "p80", "p90"):
        points = [charts.Point(label=c["label"], value=c[level]["coverage"],
                               lo=c[level]["interval_90"][0], hi=c[level]["interval_90"][1],
                               n=c[level]["n"])
                  for c in cal["cycles"] if c[level]["coverage"] is not None]
        series.append(charts.Series(name=level.upper(), points=points))
    groups = [charts.Spread(g["label"], g["n"], *g["q"]) for g in spread["groups"]]
    return {
        "scatter": charts.scatter(
            sc["points"], labels=sc["labels"], n_total=sc["n_total"],
            x_label=f"planned ({sc['unit']})", y_label=f"actual ({sc['unit']})",
            title="Planned vs actual effort, finished items",
            empty="No finished items with an estimate and an actual yet"),
        "spread": charts.distribution(
            groups, title=f"Actual / planned by {spread['dimension'] or 'segment'}",
            x_label="actual ÷ planned (1 = as planned)",
            empty="Not enough finished items per segment yet (10 each)"),
        "calibration": charts.lines(
            [s for s in series if s.points], title="Forecast calibration per cycle",
            y_label="share of actuals at or under the forecast",
            targets={"P50": 0.5, "P80": 0.8, "P90": 0.9}, y_range=(0.0, 1.0),
            empty="No forecasts scored yet: they are scored when items finish"),
        "gap": charts.lines(
            [charts.Series("median gap factor", [
                charts.Point(label=c["cycle"], value=c["median_gap_factor"], n=c["n"])
                for c in gap["cycles"]])],
            title="Gap between plan and actual, month by month", y_label="median gap (x)",
            targets={"on plan": 1.0},
            empty="Needs a month with 10+ finished items"),
    }


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    data = {name: insight_data.cached(session, name, fn) for name, fn in (
        ("scatter", insight_data.scatter_points), ("spread", insight_data.segment_spread),
        ("calibration", insight_data.calibration_cycles), ("gap", insight_data.gap),
        ("counts", insight_data.counts))}
    return render(request, "overview.html", data=data, svg=overview_charts(data),
                  off_target=insight_data.off_target(data["calibration"]["overall"]))


@router.get("/items", response_class=HTMLResponse)
def items(request: Request, session: SessionDep, user: CurrentUser,
          status: Annotated[str | None, Query(max_length=20)] = None,
          q: Annotated[str | None, Query(max_length=200)] = None,
          connection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
          kind: Annotated[str | None, Query(max_length=50)] = None,
          overdue: Annotated[bool, Query()] = False,
          sort: Annotated[str, Query(max_length=20)] = "newest",
          page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    segments = {k[4:]: v[:200] for k, v in request.query_params.items()
                if k.startswith("seg_") and 4 < len(k) <= 64 and v}
    filters = item_data.Filters(status=status or None, q=q or None, connection=connection,
                                kind=kind or None, overdue=overdue, segments=segments,
                                sort=sort if sort in item_data.SORTS else "newest")
    return render(request, "items.html", **item_data.listing(session, filters, page),
                  facets=insight_data.cached(session, "item_facets", item_data.facets))


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item(request: Request, session: SessionDep, user: CurrentUser, item_id: RowId) -> Response:
    detail = item_data.detail(session, item_id)
    return render(request, "item.html", **detail)


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    tests = insight_data.cached(session, "experiment_page", experiment_data.experiments)
    svgs = {}
    for t in tests:
        rows = [charts.Estimate(label=r["segment"], value=r["lift"], lo=r["ci"][0], hi=r["ci"][1],
                                n=sum(r["n"]), note=f"{r['best']} vs {r['other']}")
                for r in t["segments"]]
        svgs[t["name"]] = charts.forest(
            rows, title=f"{t['name']}: lift per segment (95% interval)",
            x_label=f"relative lift in {t['metric']} rate, best variant vs the runner-up",
            empty="No segment differs clearly from the rest yet")
    return render(request, "experiments.html", tests=tests, svgs=svgs)
