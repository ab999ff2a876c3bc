"""Allocation for many cheap arms: Thompson sampling with a floor (GrowthBook's bandit rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from core.experiments.stats import ArmStats

FLOOR = 0.01
MIN_UNITS = 100  # per arm before any reweighting
DRAWS = 10_000
PRIOR_PRECISION = 1e-4


@lru_cache(maxsize=16)
def _standard_normals(draws: int, k: int, seed: int) -> np.ndarray[Any, Any]:
    # What rng.normal(means, sds, size=(draws, k)) draws before scaling: the same numbers,
    # drawn once for every test of k arms instead of once per test.
    z = np.random.default_rng(seed).standard_normal(size=(draws, k))
    z.setflags(write=False)
    return z


def thompson(arms: Mapping[str, ArmStats], floor: float = FLOOR, draws: int = DRAWS,
             seed: int = 0) -> dict[str, float]:
    """Traffic weights: each arm's probability of being best under a Gaussian posterior,
    mixed with a floor so no arm starves (p_i = f + (1 - K f) w_i). Equal weights until every
    arm has MIN_UNITS units."""
    return thompson_many([arms], floor, draws, seed)[0]


def _posterior(arms: Mapping[str, ArmStats]) -> tuple[list[float], list[float]]:
    means, sds = [], []
    for m in arms.values():
        var = max(m.var, 1e-12)
        precision = PRIOR_PRECISION + m.n / var
        means.append(m.n / var * m.mean / precision)
        sds.append(float(1 / np.sqrt(precision)))
    return means, sds


def thompson_many(tests: Sequence[Mapping[str, ArmStats]], floor: float = FLOOR,
                  draws: int = DRAWS, seed: int = 0, chunk: int = 64) -> list[dict[str, float]]:
    """`thompson` for many tests at once: the same weights, drawn for tests of the same number
    of arms together (one array operation per `chunk` tests instead of one per test)."""
    out: list[dict[str, float]] = [{} for _ in tests]
    by_k: dict[int, list[int]] = {}
    for i, arms in enumerate(tests):
        k = len(arms)
        if k and any(m.n < MIN_UNITS for m in arms.values()):
            out[i] = {a: round(1 / k, 6) for a in arms}
        elif k:
            by_k.setdefault(k, []).append(i)
    for k, members in by_k.items():
        z = np.ascontiguousarray(_standard_normals(draws, k, seed).T)  # (k, draws)
        for start in range(0, len(members), chunk):
            part = members[start:start + chunk]
            posts = [_posterior(tests[i]) for i in part]
            means, sds = np.asarray([p[0] for p in posts]), np.asarray([p[1] for p in posts])
            # argmax over arms, one arm at a time on (tests, draws) planes: the same samples
            # (mean + sd * z) and the same ties (the first arm wins) as np.argmax, in
            # contiguous passes instead of a reduction over a short last axis.
            best = means[:, :1] + sds[:, :1] * z[0]
            which = np.zeros(best.shape, dtype=np.intp)
            sample = np.empty_like(best)
            for j in range(1, k):
                np.multiply(sds[:, j:j + 1], z[j], out=sample)
                np.add(means[:, j:j + 1], sample, out=sample)
                higher = sample > best
                np.copyto(which, j, where=higher)
                np.copyto(best, sample, where=higher)
            which += np.arange(len(part))[:, None] * k
            wins = np.bincount(which.ravel(), minlength=len(part) * k).reshape(len(part), k)
            shares = wins / draws
            for i, w in zip(part, shares.tolist(), strict=True):
                out[i] = {a: round(float(floor + (1 - k * floor) * x), 6)
                          for a, x in zip(tests[i], w, strict=True)}
    return out
