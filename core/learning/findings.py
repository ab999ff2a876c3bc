"""Segment findings: where plan and actual differ from the rest, in plain words with evidence.

Every single-dimension segment and every pair of low-cardinality dimensions with enough items
is compared with the rest by a Mann-Whitney rank test (normal approximation with the tie
correction, from one global ranking, so a million items cost a few sorts, not a test each).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from core.learning.dataset import Observation

MIN_N = 8
RATIOS = {"effort": "their estimate", "duration": "their planned duration",
          "amount": "their planned amount"}  # measures seen as the log of a ratio
MAX_PAIR_VALUES = 40
MAX_ITEM_IDS = 5000
CI_LEVEL = 0.9  # of the confidence interval of a segment's median


@dataclass
class SegmentStat:
    """One examined segment of one measure; `q` is filled in by BH over everything examined."""

    measure: str
    segment: dict[str, str]
    n: int
    effect: float  # median factor (effort) or median slip days (finish)
    low: float  # the central 80% of the segment's items
    high: float
    ci_low: float  # 90% confidence interval of the median
    ci_high: float
    p: float
    tie_share: float
    rest: float = math.nan  # the same median over every other item (filled in when kept)
    impact: float = 0.0
    item_ids: list[int] = field(default_factory=list)
    positions: NDArray[np.intp] | None = None  # rows of the examined observations (a view)
    context: _Prepared | None = None
    q: float = 1.0

    @property
    def key(self) -> str:
        """A stable key of the segment, e.g. `project=PAY,type=Bug`."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.segment.items()))

    def phrase(self) -> str:
        """The segment in words: `project PAY and type Bug items` (`... deals` for deals)."""
        family, _, _ = self.measure.rpartition("/")
        noun = {"deal": "deals", "enrollment": "enrollments"}.get(family, "items")
        return " and ".join(f"{k} {v}" for k, v in sorted(self.segment.items())) + f" {noun}"

    def statement(self) -> str:
        """The finding in one sentence a non-statistician can read, with its numbers."""
        if self.measure == "effort":
            text = (
                f"{self.phrase()} took {self.effect:.1f}x their estimate "
                f"(n={self.n}, 90% confidence interval of that median {self.ci_low:.1f}-"
                f"{self.ci_high:.1f}x; the middle 80% of them took {self.low:.1f}-{self.high:.1f}x; "
                f"other items {self.rest:.1f}x)"
            )
            if self.tie_share >= 0.3:
                text += f"; {self.tie_share:.0%} logged exactly the estimate"
            return text
        name = _name(self.measure)
        if name in RATIOS:
            return (f"{self.phrase()} came to {self.effect:.2f}x {RATIOS[name]} "
                    f"(n={self.n}, 80% interval {self.low:.2f}-{self.high:.2f}x; "
                    f"other {self.phrase().rsplit(' ', 1)[-1]} {self.rest:.2f}x)")
        if name == "stage_days":
            return (f"{self.phrase()} spent a median {self.effect:.1f} days in the stage "
                    f"(n={self.n}, 80% interval {self.low:.1f} to {self.high:.1f} days; "
                    f"other stages and deals {self.rest:.1f} days)")
        when = "after" if self.effect >= 0 else "before"
        if self.measure.startswith("deal/"):
            return (f"{self.phrase()} closed a median {abs(self.effect):.1f} days {when} their "
                    f"planned close date (n={self.n}, 80% interval {self.low:+.1f} to "
                    f"{self.high:+.1f} days; other deals {self.rest:+.1f} days)")
        return (
            f"{self.phrase()} finished a median {abs(self.effect):.1f} days {when} their due date "
            f"(n={self.n}, 90% confidence interval of that median {self.ci_low:+.1f} to "
            f"{self.ci_high:+.1f} days; the middle 80% of them {self.low:+.1f} to "
            f"{self.high:+.1f} days; other items {self.rest:+.1f} days)"
        )

    def evidence(self) -> dict[str, Any]:
        """The numbers behind the statement, for storage and display."""
        return {
            "n": self.n, "effect": self.effect, "spread_80": [self.low, self.high],
            "median_ci_90": [self.ci_low, self.ci_high], "rest": self.rest, "p": self.p,
            "q": self.q, "tie_share": self.tie_share,
        }


def _quantile_sorted(values: NDArray[np.float64], starts: NDArray[np.intp],
                     sizes: NDArray[np.intp], q: float) -> NDArray[np.float64]:
    """Linear-interpolated q-quantile of each group of an array sorted within groups."""
    pos = (sizes - 1) * q
    lo = np.floor(pos).astype(np.intp)
    frac = pos - lo
    hi = np.minimum(lo + 1, sizes - 1)
    return np.asarray(values[starts + lo] * (1 - frac) + values[starts + hi] * frac,
                      dtype=np.float64)


@dataclass
class _Prepared:
    y: NDArray[np.float64]
    ranks: NDArray[np.float64]
    tie_term: float
    ties: NDArray[np.bool_]
    ids: NDArray[np.int64]
    ysorted: NDArray[np.float64]
    scale: float


def _name(measure: str) -> str:
    return measure.rpartition("/")[2]


def _prepare(obs: Sequence[Observation], measure: str) -> _Prepared:
    values = np.fromiter((o.value for o in obs), dtype=np.float64, count=len(obs))
    y = np.log(values) if _name(measure) in RATIOS else values
    ranks = stats.rankdata(y)
    _, counts = np.unique(y, return_counts=True)
    n = len(y)
    tie_term = float(np.sum(counts.astype(np.float64) ** 3 - counts) / (n * (n - 1)))
    ties = np.fromiter((o.planned == o.actual for o in obs), dtype=bool, count=n)
    ids = np.fromiter((o.item_id for o in obs), dtype=np.int64, count=n)
    ysorted = np.sort(y)
    med = float(ysorted[n // 2])
    scale = float(np.median(np.abs(y - med))) or float(np.std(y)) or 1.0
    return _Prepared(y, ranks, tie_term, ties, ids, ysorted, scale)


def _codes(obs: Sequence[Observation]) -> dict[str, tuple[NDArray[np.int64], list[str]]]:
    """Per dimension, each observation's value code (-1: none or empty) and the values in
    the order they first appear. One pass over the observations."""
    dims: dict[str, dict[str, int]] = {}
    where: dict[str, list[int]] = {}
    found: dict[str, list[int]] = {}
    for j, o in enumerate(obs):
        for k, v in o.segments.items():
            if v is not None and v != "":
                index = dims.get(k)
                if index is None:
                    index, where[k], found[k] = dims.setdefault(k, {}), [], []
                where[k].append(j)
                found[k].append(index.setdefault(str(v), len(index)))
    out = {}
    for dim, index in sorted(dims.items()):
        codes = np.full(len(obs), -1, dtype=np.int64)
        codes[np.asarray(where[dim], dtype=np.intp)] = found[dim]
        out[dim] = (codes, list(index))
    return out


def examine(obs: Sequence[Observation], measure: str, min_n: int = MIN_N) -> list[SegmentStat]:
    """Every segment (single dimensions and pairs) with at least `min_n` items, tested
    against the rest. Apply `benjamini_hochberg` over everything examined, then `describe`
    the ones kept."""
    n = len(obs)
    if n < 2 * min_n:
        return []
    prep = _prepare(obs, measure)
    codes = _codes(obs)
    combos: list[tuple[str, ...]] = [(d,) for d in codes]
    pair_dims = [d for d, (_, vals) in codes.items() if 2 <= len(vals) <= MAX_PAIR_VALUES]
    combos += list(itertools.combinations(pair_dims, 2))
    conv = np.exp if _name(measure) in RATIOS else (lambda a: a)
    out: list[SegmentStat] = []
    for combo in combos:
        key = np.zeros(n, dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        for dim in combo:
            c, vals = codes[dim]
            key = key * (len(vals) + 1) + (c + 1)
            valid &= c >= 0
        idx = np.flatnonzero(valid)
        order = idx[np.lexsort((prep.y[idx], key[idx]))]
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        keep = (sizes >= min_n) & (sizes <= n - min_n)
        if not keep.any():
            continue
        ys = prep.y[order]
        rank_sum = np.add.reduceat(prep.ranks[order], starts)
        tie_sum = np.add.reduceat(prep.ties[order].astype(np.float64), starts)
        n1 = sizes.astype(np.float64)
        n2 = n - n1
        u = rank_sum - n1 * (n1 + 1) / 2
        sd = np.sqrt(n1 * n2 / 12 * ((n + 1) - prep.tie_term))
        z = (np.abs(u - n1 * n2 / 2) - 0.5) / np.where(sd > 0, sd, np.inf)
        p = np.minimum(2 * stats.norm.sf(np.maximum(z, 0)), 1.0)
        med = _quantile_sorted(ys, starts, sizes, 0.5)
        p10 = _quantile_sorted(ys, starts, sizes, 0.1)
        p90 = _quantile_sorted(ys, starts, sizes, 0.9)
        ci_lo_k = np.maximum(stats.binom.ppf(0.05, sizes, 0.5).astype(np.intp) - 1, 0)
        ci_hi_k = np.minimum(stats.binom.isf(0.05, sizes, 0.5).astype(np.intp), sizes - 1)
        for g in np.flatnonzero(keep):
            first = order[starts[g]]
            segment = {}
            for dim in combo:
                c, vals = codes[dim]
                segment[dim] = vals[c[first]]
            out.append(SegmentStat(
                measure=measure, segment=segment, n=int(sizes[g]), effect=float(conv(med[g])),
                low=float(conv(p10[g])), high=float(conv(p90[g])),
                ci_low=float(conv(ys[starts[g] + ci_lo_k[g]])),
                ci_high=float(conv(ys[starts[g] + ci_hi_k[g]])),
                p=float(p[g]), tie_share=float(tie_sum[g] / sizes[g]),
            ))
            out[-1].positions = order[starts[g]:starts[g] + sizes[g]]
            out[-1].context = prep
    return out


def _kth_of_rest(everything: NDArray[np.float64], inside: NDArray[np.float64], k: int) -> float:
    """The k-th smallest (0-based) value of `everything` minus the multiset `inside` (both
    sorted), by binary search on counts: no copy of the complement is made."""
    lo, hi = 0, len(everything) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        v = everything[mid]
        rest_le = int(np.searchsorted(everything, v, "right") - np.searchsorted(inside, v, "right"))
        if rest_le >= k + 1:
            hi = mid
        else:
            lo = mid + 1
    return float(everything[lo])


def describe(stat: SegmentStat) -> SegmentStat:
    """Fill in the rest-of-items median, the impact and the item ids of a kept finding."""
    prep, pos = stat.context, stat.positions
    assert prep is not None and pos is not None
    inside = prep.y[pos]  # sorted: groups are ordered by value
    m = len(prep.y) - len(inside)
    rest = (_kth_of_rest(prep.ysorted, inside, (m - 1) // 2)
            + _kth_of_rest(prep.ysorted, inside, m // 2)) / 2
    stat.rest = math.exp(rest) if _name(stat.measure) in RATIOS else rest
    stat.impact = stat.n * abs(float(np.median(inside)) - rest) / prep.scale
    stat.item_ids = prep.ids[pos[:MAX_ITEM_IDS]].tolist()
    stat.positions, stat.context = None, None
    return stat
