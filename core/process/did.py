"""Difference-in-differences of a declared process change, on cells of group x period.

Items are placed in periods of `period_days` aligned on the start date (period 0 is the first
after the change) and averaged per (group, period) cell; the effect is the coefficient of the
treatment indicator in a two-way fixed-effects regression (group and period effects) weighted
by the items per cell, so a trend common to everyone is absorbed by the period effects.

Items of one team are not independent (a bad month hits all of them), so the interval never
treats them as if they were:

- few clusters (the usual case: one team changes, a handful do not): a studentized permutation
  interval in the manner of Conley and Taber, with Ferman and Pinto's scaling: the change is
  pretended to happen to untreated groups at start dates drawn across the history, and the
  spread of those placebo t-statistics (which carries the team-by-period shocks) is what the
  real estimate is judged against;
- many clusters on both sides (`CR1_MIN` each): a CR1 cluster-robust standard error with a t
  distribution on G - 1 degrees of freedom.

Parallel trends are checked in the pre-period by placebo start dates (the change pretended to
happen earlier): each placebo effect is judged like the real one and the smallest p-value is
Bonferroni-adjusted, so trends that agree are flagged as diverging about 5-10% of the time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

PERMUTATION, CR1 = "permutation", "cr1"
LEVEL = 0.9
PERMUTATIONS = 999
MIN_DRAWS = 19  # placebo draws below which a 90% interval cannot be read off them
CR1_MIN = 10  # clusters on each side before the cluster-robust error is trusted
MIN_SIDE = 20  # finished items in each of the four cells of the 2x2
MIN_PRE_PERIODS = 3
PLACEBOS = 3  # placebo start dates in the pre-period
TREND_ALPHA = 0.05  # family-wise level of the parallel-trends check (false flags ~5%)
MAX_PERIODS = 52
PERIOD_CHOICES = (7.0, 14.0, 28.0, 56.0, 91.0)

Aggregate = Literal["mean", "count"]
MEAN: Aggregate = "mean"
COUNT: Aggregate = "count"


@dataclass(frozen=True)
class Obs:
    """One finished item: its cluster, side, when it finished and began (days), its value."""

    group: str
    treated: bool
    when: float
    value: float
    begun: float | None = None


@dataclass(frozen=True)
class Design:
    """How a change is judged.

    Attributes:
        start: when the change began (days on the same clock as `Obs.when`).
        end: when it ended, or None while it lasts.
        aggregate: MEAN of the items' values per cell, or COUNT of items per period (throughput).
        period_days: the period length; None chooses one from the data's span.
        level: of the interval.
        permutations: placebo draws at most (all of them when there are fewer).
        seed: of the draws, so a run can be repeated.
    """

    start: float
    end: float | None = None
    aggregate: Aggregate = MEAN
    period_days: float | None = None
    level: float = LEVEL
    permutations: int = PERMUTATIONS
    seed: int = 0


@dataclass
class Placebo:
    """One placebo start date of the pre-period: its effect and how unusual it is."""

    period: int
    effect: float
    p: float


@dataclass
class Result:
    """The difference-in-differences estimate with its evidence."""

    enough: bool
    effect: float = math.nan
    low: float = math.nan
    high: float = math.nan
    level: float = LEVEL
    p: float = math.nan
    se: float = math.nan
    method: str = ""
    draws: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    periods: dict[str, int] = field(default_factory=dict)
    period_days: float = 0.0
    transition: int = 0
    trend_checked: bool = False
    trend_p: float = math.nan
    diverging: bool = False
    placebos: list[Placebo] = field(default_factory=list)
    needed: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def n_treated(self) -> int:
        """Finished items of the treated side, before and after."""
        return self.counts.get("treated_pre", 0) + self.counts.get("treated_post", 0)

    @property
    def n_comparison(self) -> int:
        """Finished items of the comparison side, before and after."""
        return self.counts.get("comparison_pre", 0) + self.counts.get("comparison_post", 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, NaN as None."""
        out = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}


@dataclass
class _Cells:
    """The (group, period) cells of a panel: group and period codes, mean, weight."""

    g: IntArray
    t: IntArray
    y: FloatArray
    w: FloatArray
    treated: NDArray[np.bool_]  # per group code
    names: list[str]


def choose_period(span_days: float) -> float:
    """The shortest period in PERIOD_CHOICES giving at most MAX_PERIODS periods."""
    for days in PERIOD_CHOICES:
        if span_days / days <= MAX_PERIODS:
            return days
    return PERIOD_CHOICES[-1]


def _place(obs: Sequence[Obs], design: Design, period: float
           ) -> tuple[list[tuple[Obs, int]], int]:
    """Each usable item with its period; items begun before the change and finished after it
    (in transition) are left out and counted."""
    out, transition = [], 0
    for o in obs:
        if not math.isfinite(o.value):
            continue
        if design.end is not None and o.when >= design.end:
            continue
        idx = math.floor((o.when - design.start) / period)
        if idx >= 0 and o.begun is not None and o.begun < design.start:
            transition += 1
            continue
        out.append((o, idx))
    return out, transition


def _cells(placed: list[tuple[Obs, int]], aggregate: Aggregate, lo: int) -> _Cells:
    """Cells from placed items, periods re-coded from `lo`; COUNT cells include the zeros
    (a group with nothing finished in a period had a throughput of 0 there)."""
    names = sorted({o.group for o, _ in placed})
    code = {n: i for i, n in enumerate(names)}
    treated = np.zeros(len(names), dtype=bool)
    sums: dict[tuple[int, int], list[float]] = {}
    for o, idx in placed:
        g = code[o.group]
        treated[g] = treated[g] or o.treated
        cell = sums.setdefault((g, idx - lo), [0.0, 0.0])
        cell[0] += o.value
        cell[1] += 1.0
    if aggregate == COUNT:
        periods = sorted({t for _, t in sums})
        span = range(periods[0], periods[-1] + 1) if periods else range(0)
        for g, t in itertools.product(range(len(names)), span):
            sums.setdefault((g, t), [0.0, 0.0])
    keys = sorted(sums)
    g_arr = np.fromiter((k[0] for k in keys), dtype=np.intp, count=len(keys))
    t_arr = np.fromiter((k[1] for k in keys), dtype=np.intp, count=len(keys))
    if aggregate == COUNT:
        y = np.fromiter((sums[k][1] for k in keys), dtype=np.float64, count=len(keys))
        w = np.ones(len(keys))
    else:
        y = np.fromiter((sums[k][0] / sums[k][1] for k in keys), dtype=np.float64,
                        count=len(keys))
        w = np.fromiter((sums[k][1] for k in keys), dtype=np.float64, count=len(keys))
    return _Cells(g_arr, t_arr, y, w, treated, names)


@dataclass
class _Fit:
    effect: float
    se: float  # from the cells' residual variance (the placebo draws calibrate it)
    se_cr1: float
    clusters: int


def _fit(g: IntArray, t: IntArray, y: FloatArray, w: FloatArray, d: FloatArray) -> _Fit | None:
    """Weighted two-way fixed-effects regression of y on d; None when d is not identified.

    The fixed effects are partialled out through the normal equations of the dummies, built
    from sums by group and period (the placebo draws fit this hundreds of times).
    """
    gs, g_idx = np.unique(g, return_inverse=True)
    ts, t_idx = np.unique(t, return_inverse=True)
    n_g, n_t = len(gs), len(ts)
    n, k = len(y), n_g + n_t - 1
    if n_g < 2 or n_t < 2 or n - k - 1 < 1:
        return None
    col = np.where(t_idx > 0, n_g + t_idx - 1, -1)  # period 0 is the reference
    xtx = np.zeros((k, k))
    xtx[np.arange(n_g), np.arange(n_g)] = np.bincount(g_idx, weights=w, minlength=n_g)
    by_t = np.bincount(t_idx, weights=w, minlength=n_t)[1:]
    xtx[np.arange(n_g, k), np.arange(n_g, k)] = by_t
    later = col >= 0
    cross = np.zeros((n_g, n_t - 1))
    np.add.at(cross, (g_idx[later], col[later] - n_g), w[later])
    xtx[:n_g, n_g:] = cross
    xtx[n_g:, :n_g] = cross.T

    def xtw(v: FloatArray) -> FloatArray:
        out = np.empty(k)
        out[:n_g] = np.bincount(g_idx, weights=w * v, minlength=n_g)
        out[n_g:] = np.bincount(t_idx, weights=w * v, minlength=n_t)[1:]
        return out

    def xb(b: FloatArray) -> FloatArray:
        return np.asarray(b[g_idx] + np.where(later, b[np.maximum(col, 0)], 0.0))

    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtx)
    beta_d = inv @ xtw(d)
    resid_d = d - xb(beta_d)
    denom = float(np.sum(w * resid_d ** 2))
    if denom <= 1e-9 * max(float(np.sum(w * d ** 2)), 1e-300):
        return None
    a = w * resid_d / denom
    effect = float(a @ y)
    e = y - xb(inv @ xtw(y) - effect * beta_d) - effect * d
    dof = n - k - 1
    sigma2 = float(np.sum(w * e ** 2)) / dof
    se = math.sqrt(sigma2 * float(np.sum(a ** 2 / w)))
    scores = np.bincount(g_idx, weights=a * e, minlength=n_g)
    adj = n_g / (n_g - 1) * (n - 1) / dof
    se_cr1 = math.sqrt(adj * float(np.sum(scores ** 2)))
    return _Fit(effect, se, se_cr1, n_g)


def _window(c: _Cells, keep_groups: NDArray[np.bool_], first: int, last: int
            ) -> NDArray[np.bool_]:
    return keep_groups[c.g] & (c.t >= first) & (c.t < last)


def _draws(c: _Cells, start: int, pre: int, post: int, design: Design
           ) -> FloatArray:
    """Placebo t-statistics: untreated groups pretend the change at start dates across their
    history, judged against the other untreated groups over a window of the same shape."""
    controls = np.flatnonzero(~c.treated)
    m = min(int(c.treated.sum()), len(controls) - 1)
    if m < 1:
        return np.empty(0)
    lo, hi = int(c.t.min()), int(c.t.max()) + 1
    starts = list(range(lo + 2, hi))  # two periods before, one after, at least
    subsets = list(itertools.combinations(controls.tolist(), m)) \
        if math.comb(len(controls), m) <= 5000 else None
    total = (len(subsets) if subsets is not None else math.comb(len(controls), m)) * len(starts)
    rng = np.random.default_rng(design.seed)
    pairs: list[tuple[tuple[int, ...], int]]
    if subsets is not None and total <= design.permutations:
        pairs = [(sub, s) for sub in subsets for s in starts]
    else:
        seen: set[tuple[tuple[int, ...], int]] = set()
        pairs = []
        tries = 0
        while len(pairs) < design.permutations and tries < 20 * design.permutations:
            tries += 1
            sub = tuple(sorted(rng.choice(controls, size=m, replace=False).tolist()))
            s = int(starts[rng.integers(len(starts))])
            if (sub, s) not in seen:
                seen.add((sub, s))
                pairs.append((sub, s))
    out = []
    is_control = ~c.treated
    for sub, s in pairs:
        mask = _window(c, is_control, s - pre, s + post)
        fake = np.zeros(len(c.treated), dtype=bool)
        fake[list(sub)] = True
        d = (fake[c.g[mask]] & (c.t[mask] >= s)).astype(np.float64)
        fit = _fit(c.g[mask], c.t[mask], c.y[mask], c.w[mask], d)
        if fit is not None and fit.se > 0:
            out.append(fit.effect / fit.se)
    return np.asarray(out, dtype=np.float64)


def _interval(fit: _Fit, method: str, ref: FloatArray, level: float
              ) -> tuple[float, float, float, float]:
    """(low, high, p, se) of an estimate, by the placebo t-statistics or CR1."""
    tail = (1 - level) / 2
    if method == CR1:
        crit = float(stats.t.ppf(1 - tail, fit.clusters - 1))
        tstat = fit.effect / fit.se_cr1 if fit.se_cr1 > 0 else math.inf
        p = float(2 * stats.t.sf(abs(tstat), fit.clusters - 1))
        return (fit.effect - crit * fit.se_cr1, fit.effect + crit * fit.se_cr1, p, fit.se_cr1)
    q_lo, q_hi = (float(v) for v in np.quantile(ref, [tail, 1 - tail]))
    tstat = fit.effect / fit.se if fit.se > 0 else math.inf
    p = float((1 + np.sum(np.abs(ref) >= abs(tstat))) / (1 + len(ref)))
    return (fit.effect - q_hi * fit.se, fit.effect - q_lo * fit.se, p, fit.se)


def _counts(placed: list[tuple[Obs, int]]) -> dict[str, int]:
    out = dict.fromkeys(("treated_pre", "treated_post", "comparison_pre", "comparison_post"), 0)
    for o, idx in placed:
        out[f"{'treated' if o.treated else 'comparison'}_{'post' if idx >= 0 else 'pre'}"] += 1
    return out


def _shortfall(res: Result, groups_t: int, groups_c: int) -> None:
    """What is missing before anything can be said, and about how many more items."""
    for side, n in res.counts.items():
        if n < MIN_SIDE:
            res.needed += MIN_SIDE - n
            who, when = side.split("_")
            res.missing.append(f"{MIN_SIDE - n} more finished {who} items "
                               f"{'before' if when == 'pre' else 'after'} the start")
    if res.periods.get("pre", 0) < MIN_PRE_PERIODS:
        res.missing.append(f"at least {MIN_PRE_PERIODS} periods of {res.period_days:g} days "
                           "before the start")
    if groups_t < 1:
        res.missing.append("treated items")
    if groups_c < 2:
        res.missing.append(f"{2 - groups_c} more comparison groups (the interval compares the "
                           "treated group with each untreated one)")


def estimate(obs: Sequence[Obs], design: Design) -> Result:
    """The effect of the change on the treated groups, with its interval and trend check.

    Args:
        obs: finished items of the treated and comparison groups (model scale values).
        design: the start date and how to judge.

    Returns:
        The estimate; `enough` is False (with `missing` and `needed`) when the data cannot
        support a verdict yet.
    """
    whens = [o.when for o in obs]
    span = (max(whens) - min(whens)) if whens else 0.0
    period = design.period_days or choose_period(span)
    placed, transition = _place(obs, design, period)
    if placed:
        lo = max(min(i for _, i in placed), -(MAX_PERIODS - 1))
        placed = [(o, i) for o, i in placed if i >= lo]
    res = Result(enough=False, level=design.level, period_days=period, transition=transition,
                 counts=_counts(placed))
    if not placed:
        _shortfall(res, 0, 0)
        return res
    c = _cells(placed, design.aggregate, lo)
    start = -lo
    pre = start
    post = int(c.t.max()) + 1 - start
    res.groups = {"treated": int(c.treated.sum()), "comparison": int((~c.treated).sum())}
    res.periods = {"pre": max(pre, 0), "post": max(post, 0)}
    _shortfall(res, res.groups["treated"], res.groups["comparison"])
    values = [o.value for o, _ in placed]
    if design.aggregate == MEAN and max(values) == min(values):
        res.missing.append(f"items that differ: every one has the same value ({values[0]:g}), "
                           "so there is nothing to compare yet")
    if res.missing:
        return res
    d = (c.treated[c.g] & (c.t >= start)).astype(np.float64)
    fit = _fit(c.g, c.t, c.y, c.w, d)
    if fit is None:
        res.missing.append("cells that separate the change from the period effects")
        return res
    many = res.groups["treated"] >= CR1_MIN and res.groups["comparison"] >= CR1_MIN
    method = CR1 if many else PERMUTATION
    ref = np.empty(0) if many else _draws(c, start, pre, post, design)
    if not many and len(ref) < MIN_DRAWS:
        res.missing.append(f"more comparison groups or periods: {len(ref)} placebo draws, "
                           f"{MIN_DRAWS} needed for a {design.level:.0%} interval")
        return res
    res.enough, res.method, res.draws = True, method, len(ref)
    res.effect = fit.effect
    res.low, res.high, res.p, res.se = _interval(fit, method, ref, design.level)
    _trends(res, c, start, method, ref, design)
    return res


def _trends(res: Result, c: _Cells, start: int, method: str, ref: FloatArray,
            design: Design) -> None:
    """Placebo start dates in the pre-period: a treated-vs-comparison gap that opens before
    the change means the trends were not parallel, and the estimate is not to be trusted."""
    pre_mask = c.t < start
    first = int(c.t[pre_mask].min()) if pre_mask.any() else start
    candidates = list(range(first + 2, start))
    if len(candidates) < 1 or start - first < MIN_PRE_PERIODS:
        return
    picks = sorted({candidates[round(float(q) * (len(candidates) - 1))]
                    for q in np.linspace(0, 1, PLACEBOS + 2)[1:-1]})
    for s in picks:
        d = (c.treated[c.g[pre_mask]] & (c.t[pre_mask] >= s)).astype(np.float64)
        fit = _fit(c.g[pre_mask], c.t[pre_mask], c.y[pre_mask], c.w[pre_mask], d)
        if fit is None:
            continue
        _, _, p, _ = _interval(fit, method, ref, design.level)
        res.placebos.append(Placebo(period=s - start, effect=fit.effect, p=p))
    if res.placebos:
        res.trend_checked = True
        res.trend_p = min(1.0, min(p.p for p in res.placebos) * len(res.placebos))
        res.diverging = res.trend_p < TREND_ALPHA
