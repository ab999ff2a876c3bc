"""Difference-in-differences of declared process changes: planted effects, nulls, trends."""

from __future__ import annotations

import math

from core.process import did
from core.process.did import Design, Obs, estimate
from core.process.measures import get
from core.process.verdict import (
    DIVERGING,
    NOT_ENOUGH,
    WORKED,
    judge,
)
from tests.core.process_data import Planted, observations, teams

DESIGN = Design(start=0.0, period_days=7, permutations=199)
SLIP = get("slip")


def _judge(res: did.Result, min_effect: float = 1.0) -> str:
    return judge(res, SLIP, "decrease", min_effect, "2-week sprints", "team A").kind


def test_planted_effect_is_found_with_its_interval() -> None:
    res = estimate(observations(teams(3, effect=3.0)), DESIGN)
    assert res.enough and res.method == did.PERMUTATION and res.draws == 199
    assert res.low < -3.0 < res.high and res.high < 0
    assert res.counts["treated_post"] > 50 and res.counts["comparison_pre"] > 500
    assert res.trend_checked and not res.diverging
    verdict = judge(res, SLIP, "decrease", 1.0, "2-week sprints", "team A")
    assert verdict.kind == WORKED
    assert verdict.statement.startswith("2-week sprints cut team A's slip against the committed "
                                        "plan by ")
    assert f"n={res.n_treated:,} vs {res.n_comparison:,}" in verdict.statement
    assert "the pre-period trends agree" in verdict.statement
    assert "90% interval" in verdict.statement


def test_a_common_trend_alone_is_rarely_called_a_success() -> None:
    results = [estimate(observations(teams(seed)), Design(start=0.0, period_days=7,
                                                         permutations=199, seed=seed))
               for seed in range(40)]
    kinds = [_judge(r) for r in results]
    assert kinds.count(WORKED) <= 3, kinds  # nominal 5% one-sided, before the minimum effect
    covered = sum(r.low <= 0 <= r.high for r in results)
    assert covered >= 32  # the 90% interval covers the true 0 (about 36 of 40)
    assert sum(r.diverging for r in results) <= 5


def test_diverging_pre_trends_are_flagged() -> None:
    flagged = [estimate(observations(teams(seed, effect=3.0, diverge=0.25)), DESIGN)
               for seed in range(5)]
    assert sum(r.diverging for r in flagged) >= 4
    assert all(_judge(r) != WORKED for r in flagged)
    assert all(_judge(r) == DIVERGING for r in flagged if r.diverging)


def test_not_enough_data_says_how_many_more_items() -> None:
    few = [i for i in teams(1, effect=3.0) if i.when < 14]
    res = estimate(observations(few), DESIGN)
    assert not res.enough
    assert res.needed > 0
    verdict = judge(res, SLIP, "decrease", 1.0, "2-week sprints", "team A")
    assert verdict.kind == NOT_ENOUGH and math.isnan(verdict.effect)
    assert f"about {res.needed:,} more finished items needed" in verdict.statement


def test_one_comparison_team_is_not_enough_for_an_interval() -> None:
    two = [i for i in teams(2, effect=3.0) if i.team in ("A", "B")]
    res = estimate(observations(two), DESIGN)
    assert not res.enough and any("comparison groups" in m for m in res.missing)


def test_many_clusters_use_cluster_robust_errors() -> None:
    items = teams(4, effect=3.0, n_teams=2, assignees=12, per_week=40)
    obs = [Obs(i.assignee, i.team == "A", i.when, i.slip, i.begun) for i in items]
    res = estimate(obs, DESIGN)
    assert res.enough and res.method == did.CR1 and res.groups["treated"] >= did.CR1_MIN
    assert res.low < -3.0 < res.high < 0


def test_throughput_counts_items_per_period_including_empty_ones() -> None:
    items = [Planted("A" if k % 2 else "B", "x", float(d), float(d), 0.0)
             for d in range(-70, 70) for k in range(2)]
    items += [Planted(t, "x", float(d), float(d), 0.0) for t in "CDE" for d in range(-70, 70, 2)]
    extra = [Planted("A", "x", float(d) + 0.5, float(d) + 0.5, 0.0) for d in range(0, 70)]
    res = estimate(observations(items + extra),
                   Design(start=0.0, period_days=7, aggregate=did.COUNT, permutations=199))
    assert res.enough
    assert abs(res.effect - 7.0) < 1e-6  # one more item a day: 7 more a week


def test_items_begun_before_the_change_are_left_out() -> None:
    items = teams(5, effect=3.0)
    straddling = [Planted("A", "x", 3.0, -10.0, 50.0)] * 5
    res = estimate(observations(items + straddling), DESIGN)
    assert res.transition >= 5


def test_a_measure_with_no_variation_says_so() -> None:
    flat = [Obs(o.group, o.treated, o.when, 0.0, o.begun) for o in observations(teams(6))]
    res = estimate(flat, DESIGN)
    assert not res.enough and res.missing == [
        "items that differ: every one has the same value (0), so there is nothing to compare yet"]
