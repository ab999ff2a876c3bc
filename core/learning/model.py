"""Segment quantile model: P50/P80/P90/P95 of a deviation, pooled across segment dimensions.

Each quantile level is an additive model: a common level plus one effect per value of every
segment dimension the data carries (project, type, team, assignee, ...) and per band of the
plan's size (estimate size is a learned covariate: its effect differs between organisations).
Effects are fitted with an L1 penalty expressed as a pseudo-count (see `additive.py`), so thin
and new segments stay at the pooled level and dimensions without signal drop out. The
pseudo-count is chosen on a time-ordered hold-out of the training data (never on what is
forecast), and each level is recalibrated on that hold-out when its coverage is clearly off.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.learning.additive import FloatArray, IntArray, fit_additive

QUANTILES = (0.5, 0.8, 0.9, 0.95)
PSEUDO_COUNTS = (3.0, 6.0, 12.0, 25.0, 50.0)
MIN_SEGMENT_COUNT = 5
MAX_TRAIN = 30_000
MAX_SELECT = 15_000  # the pseudo-count is chosen on at most this many recent items
MAX_HOLDOUT = 10_000
SIZE_BANDS = 8
SIZE = "plan size"
OTHER = "\x00other"  # rare, unseen and missing values of a dimension
MODEL_VERSION = "sqm-2"


@dataclass(frozen=True)
class Sample:
    """One item, as the model sees it."""

    y: float  # the deviation: log(actual/planned) or slip in days
    size: float | None  # the plan's size (estimate, planned duration), None if unknown
    segments: Mapping[str, str]


def pinball(y: FloatArray, pred: FloatArray, q: float) -> float:
    """Mean pinball (quantile) loss of `pred` at level q."""
    diff = y - pred
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


@dataclass
class SegmentQuantileModel:
    """A fitted model; `predict` gives the quantiles of the deviation for new items."""

    dims: dict[str, list[str]] = field(default_factory=dict)
    size_edges: list[float] = field(default_factory=list)
    fits: dict[float, tuple[float, list[FloatArray]]] = field(default_factory=dict)
    shifts: dict[float, float] = field(default_factory=dict)
    penalty: float = 0.0
    n_train: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    version: str = MODEL_VERSION

    def encode(self, samples: Sequence[Sample]) -> list[IntArray]:
        """One code array per dimension (the size bands last); unknown values map to OTHER."""
        out = []
        for dim, values in self.dims.items():
            index = {v: i for i, v in enumerate(values)}
            other = index[OTHER]
            out.append(np.fromiter(
                (index.get(str(s.segments[dim]), other) if dim in s.segments else other
                 for s in samples), dtype=np.intp, count=len(samples)))
        logs = np.fromiter((math.log(s.size) if s.size and s.size > 0 else np.nan
                            for s in samples), dtype=np.float64, count=len(samples))
        bands = np.searchsorted(np.asarray(self.size_edges), logs, side="right")
        bands[np.isnan(logs)] = len(self.size_edges) + 1
        out.append(bands.astype(np.intp))
        return out

    def _sizes(self) -> list[int]:
        return [len(v) for v in self.dims.values()] + [len(self.size_edges) + 2]

    @classmethod
    def _shape(cls, samples: Sequence[Sample]) -> SegmentQuantileModel:
        counts: dict[str, Counter[str]] = {}
        for s in samples:
            for dim, value in s.segments.items():
                counts.setdefault(dim, Counter())[str(value)] += 1
        dims = {
            dim: [*sorted(v for v, c in counter.items() if c >= MIN_SEGMENT_COUNT), OTHER]
            for dim, counter in sorted(counts.items())
        }
        logs = np.log([s.size for s in samples if s.size and s.size > 0])
        edges: list[float] = []
        if len(logs) >= 2 * MIN_SEGMENT_COUNT:
            inner = np.quantile(logs, np.linspace(0, 1, SIZE_BANDS + 1)[1:-1])
            edges = sorted({round(float(e), 9) for e in inner})
        return cls(dims=dims, size_edges=edges, n_train=len(samples))

    @classmethod
    def _fit_at(cls, samples: Sequence[Sample], quantiles: Sequence[float], k: float,
                warm: SegmentQuantileModel | None = None,
                prepared: tuple[SegmentQuantileModel, list[IntArray], FloatArray] | None = None,
                ) -> SegmentQuantileModel:
        shape, codes, y = prepared or cls._prepare(samples)
        model = cls(dims=shape.dims, size_edges=shape.size_edges, n_train=shape.n_train,
                    penalty=k)
        same_shape = warm is not None and warm.dims == model.dims \
            and warm.size_edges == model.size_edges
        for q in quantiles:
            # Warm starts only from the same level: across levels the fit stalls elsewhere.
            init = warm.fits.get(q) if warm is not None and same_shape else None
            model.fits[q] = fit_additive(y, codes, model._sizes(), q, k, init=init)
        return model

    @classmethod
    def _prepare(cls, samples: Sequence[Sample]
                 ) -> tuple[SegmentQuantileModel, list[IntArray], FloatArray]:
        shape = cls._shape(samples)
        y = np.fromiter((s.y for s in samples), dtype=np.float64, count=len(samples))
        return shape, shape.encode(samples), y

    @classmethod
    def fit(cls, samples: Sequence[Sample], quantiles: Sequence[float] = QUANTILES,
            penalties: Sequence[float] = PSEUDO_COUNTS) -> SegmentQuantileModel:
        """Fit on `samples`, which must be in time order (oldest first).

        The most recent quarter (at most MAX_HOLDOUT) is held out to choose the pseudo-count
        (on at most MAX_SELECT items before it) and to check calibration; the final fit uses
        the most recent MAX_TRAIN samples.

        Raises:
            ValueError: with fewer than 10 samples.
        """
        samples = list(samples)[-MAX_TRAIN:]
        if len(samples) < 10:
            raise ValueError("at least 10 finished items are needed to learn from")
        cut = max(int(len(samples) * 0.75), len(samples) - MAX_HOLDOUT)
        early, late = samples[:cut][-MAX_SELECT:], samples[cut:]
        y_late = np.fromiter((s.y for s in late), dtype=np.float64, count=len(late))
        best: tuple[float, float, SegmentQuantileModel] | None = None
        trial: SegmentQuantileModel | None = None
        prepared = cls._prepare(early)
        for k in penalties:
            trial = cls._fit_at(early, [0.8], k, warm=trial, prepared=prepared)
            loss = pinball(y_late, trial._raw(trial.encode(late), 0.8), 0.8)
            if best is None or loss < best[0]:
                best = (loss, k, trial)
        assert best is not None
        loss, k, chosen = best
        held = cls._fit_at(early, quantiles, k, warm=chosen, prepared=prepared)
        codes_late = held.encode(late)
        validation = {"n_holdout": float(len(late)), "pinball_p80": loss}
        shifts: dict[float, float] = {}
        for q in quantiles:
            resid = y_late - held._raw(codes_late, q)
            coverage = float(np.mean(resid <= 1e-12))
            validation[f"coverage_p{round(q * 100)}"] = coverage
            se = math.sqrt(q * (1 - q) / len(late))
            # Shift only when the held-out coverage is clearly off: drift, not noise.
            shifts[q] = float(np.quantile(resid, q)) if abs(coverage - q) > 2 * se else 0.0
        model = cls._fit_at(samples, quantiles, k, warm=held)
        model.shifts, model.validation = shifts, validation
        return model

    def _raw(self, codes: list[IntArray], q: float) -> FloatArray:
        intercept, effects = self.fits[q]
        out = np.full(len(codes[0]) if codes else 0, intercept)
        for eff, c in zip(effects, codes, strict=True):
            out += eff[c]
        return out

    def predict(self, samples: Sequence[Sample]) -> dict[float, FloatArray]:
        """Quantiles of the deviation per sample, non-crossing (sorted across levels)."""
        codes = self.encode(samples)
        levels = sorted(self.fits)
        stacked = np.vstack([self._raw(codes, q) + self.shifts.get(q, 0.0) for q in levels])
        stacked.sort(axis=0)
        return {q: stacked[i] for i, q in enumerate(levels)}

    def effects(self, q: float = 0.8) -> dict[str, dict[str, float]]:
        """Non-zero effects at level q per dimension (what the model found matters)."""
        _, effects = self.fits[q]
        names = [*self.dims, SIZE]
        labels = [*self.dims.values(), [f"band {i}" for i in range(len(self.size_edges) + 2)]]
        out: dict[str, dict[str, float]] = {}
        for name, values, eff in zip(names, labels, effects, strict=True):
            for value, e in zip(values, eff, strict=True):
                if value != OTHER and abs(e) > 1e-9:
                    out.setdefault(name, {})[value] = float(e)
        return out
