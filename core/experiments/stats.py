"""Per-arm sufficient statistics and the formulas of the leading experimentation engines.

Everything is computed from (n, sum, sum of squares) per arm, which are additive across days
and segments, so any analysis can be reproduced from the stored statistics alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from scipy import special

PRIOR_SD = 0.3  # proper prior N(0, 0.3^2) on relative lift (GrowthBook's default)
N_TUNE = 5000  # sequential interval tuning (pairwise sample size of a typical decision)
SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one metric in one arm."""

    n: int
    total: float
    squares: float
    binary: bool = False

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.squares + other.squares,
                       self.binary and other.binary)

    @property
    def mean(self) -> float:
        """The arm's rate or mean."""
        return self.total / self.n if self.n else 0.0

    @property
    def var(self) -> float:
        """Per-unit variance: p(1-p) for a proportion, the sample variance for a mean."""
        if self.n < 2:
            return 0.0
        if self.binary:
            p = self.mean
            return p * (1 - p)
        return max((self.squares - self.total ** 2 / self.n) / (self.n - 1), 0.0)


@lru_cache(maxsize=64)
def _z(alpha: float) -> float:
    return float(special.ndtri(1 - alpha / 2))  # the normal quantile (scipy.stats' norm.ppf)


@dataclass(frozen=True)
class RatioMoments:
    """Sufficient statistics of a ratio metric (e.g. replies per contact, with the account as
    the unit): sums of numerator, denominator, their squares and cross-products."""

    n: int
    num: float
    den: float
    num2: float
    den2: float
    cross: float
    binary: bool = False

    def __add__(self, other: RatioMoments) -> RatioMoments:
        return RatioMoments(self.n + other.n, self.num + other.num, self.den + other.den,
                            self.num2 + other.num2, self.den2 + other.den2,
                            self.cross + other.cross)

    @property
    def total(self) -> float:
        """The numerator's sum (what "events" means for a ratio)."""
        return self.num

    @property
    def mean(self) -> float:
        """sum(numerator) / sum(denominator)."""
        return self.num / self.den if self.den else 0.0

    @property
    def var(self) -> float:
        """Per-unit variance of the ratio by the delta method (divide by n for the estimate)."""
        if self.n < 2 or self.den == 0:
            return 0.0
        n = self.n
        mu_m, mu_d = self.num / n, self.den / n
        var_m = (self.num2 - self.num ** 2 / n) / (n - 1)
        var_d = (self.den2 - self.den ** 2 / n) / (n - 1)
        cov = (self.cross - self.num * self.den / n) / (n - 1)
        r = mu_m / mu_d
        return max((var_m - 2 * r * cov + r * r * var_d) / (mu_d * mu_d), 0.0)


ArmStats = Moments | RatioMoments


def phi(x: float) -> float:
    """Standard normal density."""
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def cdf(x: float) -> float:
    """Standard normal distribution function."""
    return 0.5 * (1 + math.erf(x / SQRT2))


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric: lift and every interval and probability."""

    lift: float | None
    var: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    sequential_ci: tuple[float, float] | None
    posterior_mean: float | None
    posterior_sd: float | None
    chance_to_win: float | None
    expected_loss: float | None


EMPTY = Comparison(None, None, None, None, None, None, None, None, None)


def compare(control: Moments | RatioMoments, treatment: Moments | RatioMoments, dispersion: float = 1.0, alpha: float = 0.05,
            prior_sd: float = PRIOR_SD, sequential_alpha: float | None = None) -> Comparison:
    """Relative lift of treatment over control (delta method), Welch p-value, any-time-valid
    sequential interval, and the Bayesian posterior under a N(0, prior_sd^2) prior.

    `dispersion` (>= 1) inflates the variances of over-dispersed data; `sequential_alpha`
    (default `alpha`) is the level of the sequential interval, e.g. Bonferroni over arms.
    """
    mc, mt = control.mean, treatment.mean
    if control.n < 2 or treatment.n < 2 or mc == 0:
        return EMPTY
    vc, vt = control.var * dispersion, treatment.var * dispersion
    lift = (mt - mc) / abs(mc)
    var = vc * mt * mt / (mc ** 4 * control.n) + vt / (mc * mc * treatment.n)
    if var <= 0:
        return Comparison(lift, 0.0, None, None, None, None, None, None, None)
    se = math.sqrt(var)
    a, b = vc / control.n, vt / treatment.n
    df = (a + b) ** 2 / ((a * a / (control.n - 1)) + (b * b / (treatment.n - 1))) if a + b else 1e9
    t = lift / se
    p_value = float(2 * special.stdtr(df, -abs(t)))
    z = _z(alpha)
    ci = (lift - z * se, lift + z * se)
    n_pair = control.n + treatment.n
    alpha = sequential_alpha or alpha
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / N_TUNE)
    nr = n_pair * rho * rho + 1
    half = math.sqrt(var * n_pair) * math.sqrt(2 * nr * math.log(math.sqrt(nr) / alpha)
                                               / (n_pair * n_pair * rho * rho))
    precision = 1 / prior_sd ** 2 + 1 / var
    post_sd = math.sqrt(1 / precision)
    post_mean = (lift / var) / precision
    ratio = post_mean / post_sd
    ctw = cdf(ratio)
    loss = post_sd * phi(ratio) - post_mean * cdf(-ratio)
    return Comparison(lift, var, ci, p_value, (lift - half, lift + half), post_mean, post_sd,
                      ctw, loss)


def srm_p(counts: Sequence[int], weights: Sequence[float] | None = None) -> float | None:
    """Sample-ratio mismatch: Pearson chi-square p against the expected split (None when an
    arm has fewer than 8 units, where the test says nothing)."""
    if len(counts) < 2 or min(counts) < 8:
        return None
    w = list(weights) if weights else [1.0] * len(counts)
    total, wsum = sum(counts), sum(w)
    chi2 = sum((o - total * wi / wsum) ** 2 / (total * wi / wsum) for o, wi in zip(counts, w, strict=True))
    return float(special.chdtrc(len(counts) - 1, chi2))


def dispersion_across_tests(tests: Sequence[Sequence[tuple[int, float]]]) -> float:
    """Over-dispersion of conversion counts between arms, from many tests at once.

    For each test, Pearson chi-square of the arms' conversions against the pooled rate over
    its degrees of freedom; the median of that ratio, against the median it has without
    over-dispersion, is a robust estimate (true effects in a minority of tests do not move it).
    Returns 1 with fewer than 20 usable tests.
    """
    ratios = []
    for arms in tests:
        n = sum(u for u, _ in arms)
        c = sum(x for _, x in arms)
        if len(arms) < 2 or n == 0 or c == 0 or c == n:
            continue
        p = c / n
        chi2 = sum((x - u * p) ** 2 / (u * p * (1 - p)) for u, x in arms if u > 0)
        ratios.append((chi2 / (len(arms) - 1), len(arms) - 1))
    if len(ratios) < 20:
        return 1.0
    ratios.sort()
    median = ratios[len(ratios) // 2]
    expected = float(special.chdtri(median[1], 0.5) / median[1])  # the chi-square median
    return max(1.0, median[0] / expected)


def dispersion_over_days(cells: Sequence[tuple[str, int, float]]) -> float:
    """Over-dispersion of a proportion within one test, from (arm, units, conversions) per
    day: Pearson chi-square of the days against each arm's overall rate over its degrees of
    freedom (1 when days vary no more than binomial noise, or with too few days)."""
    arms: dict[str, list[tuple[int, float]]] = {}
    for arm, n, c in cells:
        if n > 0:
            arms.setdefault(arm, []).append((n, c))
    chi2, df = 0.0, 0
    for days in arms.values():
        n_all = sum(n for n, _ in days)
        p = sum(c for _, c in days) / n_all
        if len(days) < 2 or p in (0.0, 1.0):
            continue
        chi2 += sum((c - n * p) ** 2 / (n * p * (1 - p)) for n, c in days)
        df += len(days) - 1
    return max(1.0, chi2 / df) if df >= 10 else 1.0
