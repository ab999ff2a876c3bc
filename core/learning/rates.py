"""Shrunk rates of a binary outcome (won, reply): empirical-Bayes beta-binomial per segment.

A rate per value of one segment dimension is shrunk toward the pooled rate by a beta prior
whose mean is the pooled rate and whose strength (alpha + beta, a pseudo-count) maximises the
beta-binomial marginal likelihood of that dimension's counts (type-II maximum likelihood): a
dimension whose values really differ gets a weak prior, one whose differences are noise a
strong one. Which dimension (or none: the pooled rate) is chosen on a time-ordered hold-out by
Brier score, never on what is forecast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special
from scipy import stats as sps

RATE_VERSION = "ebbeta-1"
STRENGTHS = np.geomspace(0.5, 5000.0, 48)
MIN_VALUES = 2  # a dimension needs at least this many values to be told apart
HOLDOUT = 0.25


@dataclass(frozen=True)
class Outcome:
    """One finished item as the rate model sees it: did it happen, and its segments."""

    hit: bool
    segments: Mapping[str, Any]


def prior_strength(hits: np.ndarray[Any, Any], n: np.ndarray[Any, Any], p0: float) -> float:
    """alpha + beta of the beta prior with mean `p0` maximising the beta-binomial marginal
    likelihood of the counts (`hits` of `n` per segment value); the largest candidate when
    the values do not differ beyond noise."""
    a = STRENGTHS[:, None] * p0
    b = STRENGTHS[:, None] * (1 - p0)
    loglik = (special.betaln(hits[None, :] + a, n[None, :] - hits[None, :] + b)
              - special.betaln(a, b)).sum(axis=1)
    return float(STRENGTHS[int(np.argmax(loglik))])


def brier(p: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> float:
    """Mean squared difference between predicted probabilities and 0/1 outcomes."""
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


@dataclass
class RateModel:
    """A fitted shrunk rate: `predict` gives each item's probability with its evidence."""

    p0: float = 0.5
    dimension: str | None = None
    strength: float = 0.0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # value -> (hits, n)
    n_train: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    version: str = RATE_VERSION

    @classmethod
    def _fit_on(cls, outcomes: Sequence[Outcome], dimension: str | None) -> RateModel:
        n = len(outcomes)
        hits = sum(o.hit for o in outcomes)
        p0 = (hits + 0.5) / (n + 1)  # never exactly 0 or 1: the prior needs both sides
        model = cls(p0=p0, dimension=dimension, n_train=n)
        if dimension is None:
            return model
        counts: dict[str, list[int]] = {}
        for o in outcomes:
            value = o.segments.get(dimension)
            if value not in (None, ""):
                c = counts.setdefault(str(value), [0, 0])
                c[0] += int(o.hit)
                c[1] += 1
        model.counts = {k: (v[0], v[1]) for k, v in counts.items()}
        k = np.asarray([v[0] for v in counts.values()], dtype=np.float64)
        m = np.asarray([v[1] for v in counts.values()], dtype=np.float64)
        model.strength = prior_strength(k, m, p0) if len(k) >= MIN_VALUES else float("inf")
        return model

    @classmethod
    def fit(cls, outcomes: Sequence[Outcome]) -> RateModel:
        """Fit on `outcomes` in time order (oldest first): the dimension is chosen on the most
        recent quarter, then the model is refitted on everything.

        Raises:
            ValueError: with fewer than 10 outcomes.
        """
        outcomes = list(outcomes)
        if len(outcomes) < 10:
            raise ValueError("at least 10 finished items are needed to learn a rate from")
        cut = int(len(outcomes) * (1 - HOLDOUT))
        early, late = outcomes[:cut], outcomes[cut:]
        y = np.asarray([o.hit for o in late], dtype=np.float64)
        dims = sorted({d for o in early for d, v in o.segments.items() if v not in (None, "")})
        scores: dict[str | None, float] = {}
        for dim in [None, *dims]:
            trial = cls._fit_on(early, dim)
            if dim is not None and len(trial.counts) < MIN_VALUES:
                continue
            scores[dim] = brier(np.asarray([trial.predict(o.segments)[0] for o in late]), y)
        best = min(scores, key=lambda d: (scores[d], d is not None, d or ""))
        model = cls._fit_on(outcomes, best)
        model.validation = {"n_holdout": float(len(late)), "brier_holdout": round(scores[best], 4),
                            "brier_pooled_holdout": round(scores[None], 4)}
        return model

    def predict(self, segments: Mapping[str, Any]) -> tuple[float, int, float, float]:
        """(probability, n of the segment value it rests on, 80% interval low, high)."""
        hits, n = 0, 0
        if self.dimension is not None:
            hits, n = self.counts.get(str(segments.get(self.dimension)), (0, 0))
        if self.dimension is None or n == 0 or not np.isfinite(self.strength):
            a = self.p0 * (self.n_train + 1)
            b = (1 - self.p0) * (self.n_train + 1)
            n = self.n_train
        else:
            a = self.strength * self.p0 + hits
            b = self.strength * (1 - self.p0) + n - hits
        low, high = sps.beta.ppf([0.1, 0.9], a, b)
        return (float(a / (a + b)), n, float(low), float(high))

    def describe(self) -> dict[str, Any]:
        """What the run report shows of the model."""
        return {"version": self.version, "n_train": self.n_train,
                "dimension": self.dimension, "pooled_rate": round(self.p0, 4),
                "prior_strength": None if not np.isfinite(self.strength) else self.strength,
                "validation": self.validation}
