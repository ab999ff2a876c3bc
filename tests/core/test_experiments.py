"""Experiment analysis: the reference formulas, decisions that do not fool themselves."""

from __future__ import annotations

import pytest

from core.experiments.analyze import Experiment, analyze_test
from core.experiments.stats import Moments, compare, dispersion_across_tests, srm_p

# Hillstrom arm totals (shared/data/hillstrom/README.md), visits per arm.
CONTROL = Moments(21306, 2262, 2262, True)
MENS = Moments(21307, 3894, 3894, True)


def test_compare_reproduces_gbstats() -> None:
    c = compare(CONTROL, MENS)
    assert c.lift == pytest.approx(0.7214, abs=1e-4)
    assert c.ci == pytest.approx((0.6384, 0.8044), abs=1e-4)
    assert c.posterior_mean == pytest.approx(0.7073, abs=1e-4)
    assert c.sequential_ci == pytest.approx((0.5850, 0.8578), abs=1e-4)
    assert c.chance_to_win == pytest.approx(1.0)
    conv = compare(Moments(21306, 122, 122, True), Moments(21387, 189, 189, True))
    assert conv.chance_to_win == pytest.approx(0.995522, abs=1e-6)
    assert conv.p_value == pytest.approx(0.00235, rel=0.02)
    assert conv.sequential_ci is not None and conv.sequential_ci[0] < 0  # no "stop now" claim


def test_srm() -> None:
    assert srm_p([21307, 21387, 21306]) == pytest.approx(0.904, abs=1e-3)
    assert srm_p([1000, 1200]) < 0.001
    assert srm_p([7, 9]) is None


def _test(rates: dict[str, tuple[int, int]], control: str = "A") -> Experiment:
    return Experiment("t", {a: {"reply": Moments(n, c, c, True)} for a, (n, c) in rates.items()},
                control)


def test_a_real_lift_wins_and_a_skewed_split_is_unhealthy() -> None:
    won = analyze_test(_test({"A": (20000, 1000), "B": (20000, 1300)}))
    assert won["decision"] == "winner" and won["winner"] == "B"
    row = won["metrics"]["reply"]["B"]
    assert row["lift"] == pytest.approx(0.3) and row["ci"][0] > 0
    assert 0 < row["expected_loss"] < 0.001
    skewed = analyze_test(_test({"A": (20000, 1000), "B": (23000, 1500)}))
    assert skewed["decision"] == "unhealthy" and skewed["winner"] is None
    small = analyze_test(_test({"A": (60, 3), "B": (60, 12)}))
    assert small["decision"] == "no_decision"  # not enough data to call it


def test_identical_arms_rarely_win_even_when_over_dispersed() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    tests = []
    for _ in range(400):
        base = rng.uniform(0.03, 0.15)
        ns = rng.multinomial(int(rng.integers(4000, 20000)), [0.25] * 4)
        arms = {}
        for a, n in zip("ABCD", ns, strict=True):
            p = rng.beta(base * 150, (1 - base) * 150)
            c = int(rng.binomial(n, p))
            arms[a] = (int(n), c)
        tests.append(_test(arms))
    dispersion = dispersion_across_tests(
        [[(m["reply"].n, m["reply"].total) for m in t.arms.values()] for t in tests])
    assert dispersion > 5
    winners = sum(analyze_test(t, dispersion)["decision"] == "winner" for t in tests)
    assert winners <= 0.05 * len(tests)
    naive = sum(analyze_test(t, 1.0)["decision"] == "winner" for t in tests)
    assert naive > winners  # ignoring the dispersion would over-claim


def test_thompson_weights_favour_the_better_arm_with_a_floor() -> None:
    from core.experiments.allocation import thompson

    weights = thompson({"A": Moments(2000, 100, 100, True), "B": Moments(2000, 160, 160, True),
                        "C": Moments(2000, 20, 20, True)})
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["B"] > 0.9 and weights["C"] == pytest.approx(0.01, abs=1e-3)
    assert thompson({"A": Moments(50, 5, 5, True), "B": Moments(2000, 1, 1, True)}) == \
        {"A": 0.5, "B": 0.5}


def test_dispersion_over_days_sees_day_to_day_swings() -> None:
    import numpy as np

    from core.experiments.stats import dispersion_over_days

    rng = np.random.default_rng(3)
    calm = [(a, 500, float(rng.binomial(500, 0.1))) for a in "AB" for _ in range(30)]
    assert dispersion_over_days(calm) < 1.5
    swings = [(a, 500, float(rng.binomial(500, rng.beta(10, 90)))) for a in "AB" for _ in range(30)]
    assert dispersion_over_days(swings) > 3
    assert dispersion_over_days(calm[:3]) == 1.0


def test_post_stratification_undoes_simpsons_paradox() -> None:
    # Stratum "big" (high base rate) sent mostly B; within each stratum B is no better.
    seg = {
        "size=small": {"A": {"reply": Moments(1100, 110, 110, True)},
                       "B": {"reply": Moments(200, 20, 20, True)}},
        "size=big": {"A": {"reply": Moments(900, 450, 450, True)},
                     "B": {"reply": Moments(1800, 900, 900, True)}},
    }
    arms = {a: {"reply": seg["size=small"][a]["reply"] + seg["size=big"][a]["reply"]}
            for a in ("A", "B")}
    result = analyze_test(Experiment("t", arms, "A", segments=seg))
    assert result["metrics"]["reply"]["B"]["lift"] > 0.5  # naive: B looks far better
    assert "size=small" in result["segment_srm"]
    ps = result["post_stratified"]["size"]["reply"]["B"]
    assert abs(ps["lift"]) < 0.01 and ps["ci"][0] < 0 < ps["ci"][1]
