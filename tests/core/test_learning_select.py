"""The learner's parts: the tie mixture, the choice on validation, per-dimension penalties,
and the Monte Carlo's memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from core.learning.additive import fit_additive
from core.learning.montecarlo import days_needed, latest_finish
from core.learning.select import choose
from core.learning.ties import band, fit_share, mixture


def test_mixture_quantiles_match_a_sampled_mixture() -> None:
    rng = np.random.default_rng(0)
    share = 0.3
    cont = rng.normal(0.2, 0.5, 200_000)
    sample = np.where(rng.random(200_000) < share, 0.0, cont)
    grid = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    curve = np.quantile(cont, grid)[None, :]
    got = mixture(np.array([share]), curve, grid, (0.2, 0.5, 0.8, 0.9))[0]
    want = np.quantile(sample, (0.2, 0.5, 0.8, 0.9))
    assert got == pytest.approx(want, abs=0.03)
    low, high = band(np.array([share]), curve, grid)
    assert high[0] - low[0] == pytest.approx(share)
    assert np.mean(sample < 0) == pytest.approx(low[0], abs=0.01)


def test_when_most_land_on_plan_the_mixture_says_the_plan_and_nothing_below() -> None:
    grid = (0.1, 0.5, 0.9)
    curve = np.array([[-0.5, 0.1, 0.8], [-1.0, -0.6, -0.2]])  # even a mostly-under item
    got = mixture(np.array([0.6, 0.9]), curve, grid, (0.5, 0.8, 0.9, 0.95))
    assert np.all(got[:, 0] == 0.0) and np.all(got >= 0.0)


def test_tie_share_is_shrunk_per_value() -> None:
    codes = np.array([0] * 100 + [1] * 100 + [2] * 3)
    tie = np.array([True] * 90 + [False] * 10 + [True] * 10 + [False] * 90 + [True] * 3)
    share = fit_share(tie, [codes], [3], 0)
    p = share.predict([np.array([0, 1, 2])])
    assert p[0] > 0.8 and p[1] < 0.2
    assert share.p0 < p[2] < 1.0  # three ties out of three is not a certainty


def test_choice_is_never_worse_than_the_best_simple_rule_on_validation() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(0.3, 0.4, 2000)
    preds = {"plan": np.zeros_like(y), "global": np.full_like(y, 0.6),
             "noisy learned": 0.6 + rng.normal(0, 0.05, 2000)}
    choice, losses = choose(y, preds, 0.8, simple=["plan", "global"])
    assert choice.loss <= min(losses["plan"], losses["global"]) + 1e-12
    # A learned candidate that is no better than noise does not replace the simple rule.
    assert "noisy learned" not in choice.names()[:1]


def test_a_penalty_of_its_own_keeps_the_size_effect_among_irrelevant_columns() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    size = rng.integers(0, 4, n)
    noise = [rng.integers(0, 8, n) for _ in range(8)]
    y = np.array([0.8, 0.3, 0.0, -0.3])[size] + rng.normal(0, 0.3, n)
    shared = fit_additive(y, [*noise, size], [8] * 8 + [4], 0.5, 1500.0)
    own = fit_additive(y, [*noise, size], [8] * 8 + [4], 0.5, [1500.0] * 8 + [3.0])
    assert np.ptp(shared[1][-1]) < 0.1  # one big shared penalty wipes the size effect out
    assert np.ptp(own[1][-1]) == pytest.approx(1.1, abs=0.1)
    assert all(np.ptp(e) < 0.05 for e in own[1][:-1])
    with pytest.raises(ValueError, match="2 penalties for 9 dimensions"):
        fit_additive(y, [*noise, size], [8] * 8 + [4], 0.5, [1.0, 2.0])


def test_throughput_simulation_is_exact_and_its_memory_bounded() -> None:
    rng = np.random.default_rng(1)
    assert np.all(days_needed(np.array([1.0]), 10, rng, 500) == 10)
    never = days_needed(np.array([0.0]), 1, rng, 100, max_days=50)
    assert np.all(never == 50)
    daily = np.zeros(60)
    daily[0] = 1.0  # one item every 60 days on average: a long horizon
    tracemalloc.start()
    needed = days_needed(daily, 40, rng, 10_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40e6, peak  # the whole 10,000 x 3,650 array would be about 290 MB
    assert 1800 < float(np.median(needed)) < 3000  # 40 items at 1/60 per day: about 2,400 days


def test_bottom_up_simulation_in_blocks_of_items_keeps_memory_flat() -> None:
    rng = np.random.default_rng(2)
    curves = np.tile(np.array([10.0, 14.0, 17.0, 20.0]), (3000, 1))
    tracemalloc.start()
    done = latest_finish(curves, [0.5, 0.8, 0.9, 0.95], rng, 10_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 60e6, peak  # 10,000 x 3,000 draws at once would be 240 MB per array
    assert float(np.min(done)) > 17.0  # the latest of 3,000 items is far in the tail
