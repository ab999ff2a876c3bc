"""Segment findings: where plan and actual differ from the rest, in plain words with evidence."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.learning.dataset import Observation
from core.learning.stats import median_interval, rank_test, spread

MIN_N = 8
MAX_PAIR_VALUES = 40


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
    rest: float  # the same median over every other item
    p: float
    impact: float
    tie_share: float
    item_ids: list[int] = field(default_factory=list)
    q: float = 1.0

    @property
    def key(self) -> str:
        """A stable key of the segment, e.g. `project=PAY,type=Bug`."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.segment.items()))

    def phrase(self) -> str:
        """The segment in words: `Items with project=PAY and type=Bug`."""
        parts = [f"{k} {v}" for k, v in sorted(self.segment.items())]
        return " and ".join(parts) + " items"

    def statement(self) -> str:
        """The finding in one sentence a non-statistician can read, with its numbers."""
        if self.measure == "effort":
            text = (
                f"{self.phrase()} took {self.effect:.2g}x their estimate "
                f"(n={self.n}, 80% interval {self.low:.2g}-{self.high:.2g}x; "
                f"other items {self.rest:.2g}x)"
            )
            if self.tie_share >= 0.3:
                text += f"; {self.tie_share:.0%} logged exactly the estimate"
            return text
        when = "after" if self.effect >= 0 else "before"
        return (
            f"{self.phrase()} finished a median {abs(self.effect):.1f} days {when} their due date "
            f"(n={self.n}, 80% interval {self.low:+.1f} to {self.high:+.1f} days; "
            f"other items {self.rest:+.1f} days)"
        )

    def evidence(self) -> dict[str, Any]:
        """The numbers behind the statement, for storage and display."""
        return {
            "n": self.n, "effect": self.effect, "interval_80": [self.low, self.high],
            "median_ci_90": [self.ci_low, self.ci_high], "rest": self.rest, "p": self.p,
            "q": self.q, "tie_share": self.tie_share,
        }


def _segments(obs: Sequence[Observation]) -> dict[tuple[tuple[str, str], ...], list[int]]:
    groups: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    values: dict[str, set[str]] = defaultdict(set)
    for o in obs:
        for k, v in o.segments.items():
            values[k].add(str(v))
    pair_dims = sorted(d for d, vs in values.items() if 2 <= len(vs) <= MAX_PAIR_VALUES)
    for i, o in enumerate(obs):
        seg = {k: str(v) for k, v in o.segments.items()}
        for k in sorted(seg):
            groups[((k, seg[k]),)].append(i)
        for a, b in itertools.combinations(pair_dims, 2):
            if a in seg and b in seg:
                groups[((a, seg[a]), (b, seg[b]))].append(i)
    return groups


def examine(obs: Sequence[Observation], measure: str, min_n: int = MIN_N) -> list[SegmentStat]:
    """Every segment (single dimensions and pairs) with at least `min_n` items, tested
    against the rest with a rank test. Call `benjamini_hochberg` over all of them after."""
    if len(obs) < 2 * min_n:
        return []
    if measure == "effort":
        y = np.log([o.value for o in obs])
    else:
        y = np.asarray([o.value for o in obs], dtype=np.float64)
    ties = np.asarray([o.planned == o.actual for o in obs])
    scale = float(np.median(np.abs(y - np.median(y)))) or float(np.std(y)) or 1.0
    out = []
    for key, idx in _segments(obs).items():
        n = len(idx)
        if n < min_n or n > len(obs) - min_n:
            continue
        mask = np.zeros(len(obs), dtype=bool)
        mask[idx] = True
        inside, outside = y[mask], y[~mask]
        med, rest = float(np.median(inside)), float(np.median(outside))
        lo, hi = spread(inside.tolist())
        ci_lo, ci_hi = median_interval(inside.tolist())
        conv = math.exp if measure == "effort" else float
        out.append(SegmentStat(
            measure=measure, segment=dict(key), n=n, effect=conv(med), low=conv(lo), high=conv(hi),
            ci_low=conv(ci_lo), ci_high=conv(ci_hi), rest=conv(rest),
            p=rank_test(inside.tolist(), outside.tolist()),
            impact=n * abs(med - rest) / scale, tie_share=float(ties[mask].mean()),
            item_ids=[obs[i].item_id for i in idx],
        ))
    return out
