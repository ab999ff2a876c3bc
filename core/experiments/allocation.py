"""Allocation for many cheap arms: Thompson sampling with a floor (GrowthBook's bandit rules)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.experiments.stats import ArmStats

FLOOR = 0.01
MIN_UNITS = 100  # per arm before any reweighting
DRAWS = 10_000
PRIOR_PRECISION = 1e-4


def thompson(arms: Mapping[str, ArmStats], floor: float = FLOOR, draws: int = DRAWS,
             seed: int = 0) -> dict[str, float]:
    """Traffic weights: each arm's probability of being best under a Gaussian posterior,
    mixed with a floor so no arm starves (p_i = f + (1 - K f) w_i). Equal weights until every
    arm has MIN_UNITS units."""
    names = list(arms)
    k = len(names)
    if k == 0:
        return {}
    if any(arms[a].n < MIN_UNITS for a in names):
        return {a: round(1 / k, 6) for a in names}
    rng = np.random.default_rng(seed)
    means, sds = [], []
    for a in names:
        m = arms[a]
        var = max(m.var, 1e-12)
        precision = PRIOR_PRECISION + m.n / var
        means.append(m.n / var * m.mean / precision)
        sds.append(1 / np.sqrt(precision))
    samples = rng.normal(means, sds, size=(draws, k))
    best = np.bincount(np.argmax(samples, axis=1), minlength=k) / draws
    return {a: round(float(floor + (1 - k * floor) * w), 6) for a, w in zip(names, best, strict=True)}
