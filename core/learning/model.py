"""The deviation learner: P50/P80/P90/P95 of a deviation, chosen among candidates on unseen data.

Candidates (`candidates.py`): the plan itself, one global quantile, shrunk quantiles per
value of ONE column (every segment column, and the plan's size as classes: estimate size is a
learned covariate, its effect and its unit differ between organisations), and the additive
model over every column with its own penalty for plan size. Where items often land exactly
on plan, each is also offered as a mixture of that point mass and the continuous deviation of
the other items (`ties.py`). Which candidate, or which blend of two, forecasts each quantile
level is chosen on the newest quarter of the training data (`select.py`), never on what is
forecast; then every candidate is refitted on all of it. On that validation the learner is
never worse than the best simple rule, and `describe` says what was chosen and why.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core.learning.additive import FloatArray, IntArray
from core.learning.candidates import (
    PLAN,
    AdditiveCurve,
    ColumnCurve,
    choose_penalties,
    fit_additive_curve,
    fit_column,
    pinball,
    plan_curve,
)
from core.learning.select import Choice, choose, combine, snapped
from core.learning.ties import TieShare, band, choose_share, fit_share, is_tie, mixture

__all__ = ["MODEL_VERSION", "QUANTILES", "Sample", "SegmentQuantileModel", "pinball"]

QUANTILES = (0.5, 0.8, 0.9, 0.95)
GRID = (0.1, 0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # the continuous part's levels
MIN_SEGMENT_COUNT = 5
MAX_TRAIN = 30_000
MAX_SELECT = 15_000  # candidates are compared after fitting on at most this many recent items
MAX_HOLDOUT = 10_000
SIZE_BANDS = 8
MAX_SIZE_CLASSES = 16  # up to this many common plan sizes are classes of their own
MIN_TIE_SHARE = 0.02  # below this share of exact ties no point mass is modelled
MIN_CONTINUOUS = 10
SIZE = "plan size"
OTHER = "\x00other"  # rare, unseen and missing values of a dimension
GLOBAL = "one global quantile"
ADDITIVE = "additive model"
TIES = "ties + "
MODEL_VERSION = "sqm-3"


@dataclass(frozen=True)
class Sample:
    """One item, as the model sees it.

    `when` (the plan was made) and `known` (the actual became known), as any increasing
    number such as epoch seconds, are optional: with both, an item counts toward fitting the
    candidates only if its actual was known when the first validation item was planned.
    """

    y: float  # the deviation: log(actual/planned) or slip in days
    size: float | None  # the plan's size (estimate, planned duration), None if unknown
    segments: Mapping[str, str]
    when: float | None = None
    known: float | None = None


class Candidate(Protocol):
    """What the learner needs of a candidate: its name and its quantiles per item."""

    name: str

    def predict(self, codes: Sequence[IntArray]) -> FloatArray: ...


@dataclass
class Mixed:
    """A continuous curve fitted on the items not exactly on plan, mixed with the tie share."""

    name: str
    curve: ColumnCurve | AdditiveCurve
    ties: TieShare
    levels: tuple[float, ...]

    def predict(self, codes: Sequence[IntArray]) -> FloatArray:
        """Items x levels of the mixture."""
        return mixture(self.ties.predict(codes), self.curve.predict(codes), self.curve.levels,
                       self.levels)

    def band(self, codes: Sequence[IntArray]) -> tuple[FloatArray, FloatArray]:
        """The levels at which each item's quantile is exactly the plan."""
        return band(self.ties.predict(codes), self.curve.predict(codes), self.curve.levels)


@dataclass
class Shape:
    """How samples become codes: the kept values of every segment column, plan-size classes."""

    dims: dict[str, list[str]]
    size_edges: list[float]

    def names(self) -> list[str]:
        """Every dimension's name, plan size last."""
        return [*self.dims, SIZE]

    def sizes(self) -> list[int]:
        """How many codes each dimension has."""
        return [len(v) for v in self.dims.values()] + [len(self.size_edges) + 2]

    def encode(self, samples: Sequence[Sample]) -> list[IntArray]:
        """One code array per dimension (plan size last); unknown values map to OTHER."""
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

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Shape:
        """The shape of a training set. Plan sizes: each common size its own class when there
        are few (story points, pomodoros), else bands of equal counts (hours, minutes): no
        unit is assumed."""
        counts: dict[str, Counter[str]] = {}
        for s in samples:
            for dim, value in s.segments.items():
                counts.setdefault(dim, Counter())[str(value)] += 1
        dims = {
            dim: [*sorted(v for v, c in counter.items() if c >= MIN_SEGMENT_COUNT), OTHER]
            for dim, counter in sorted(counts.items())
        }
        sizes = [s.size for s in samples if s.size and s.size > 0]
        logs = np.log(sizes) if sizes else np.zeros(0)
        common = sorted(math.log(v) for v, c in Counter(sizes).items() if c >= MIN_SEGMENT_COUNT)
        edges: list[float] = []
        if 2 <= len(common) <= MAX_SIZE_CLASSES:
            edges = [round((a + b) / 2, 9) for a, b in itertools.pairwise(common)]
        elif len(logs) >= 2 * MIN_SEGMENT_COUNT:
            inner = np.quantile(logs, np.linspace(0, 1, SIZE_BANDS + 1)[1:-1])
            edges = sorted({round(float(e), 9) for e in inner})
        return cls(dims=dims, size_edges=edges)


def _subset(codes: Sequence[IntArray], idx: Any) -> list[IntArray]:
    return [c[idx] for c in codes]


@dataclass
class SegmentQuantileModel:
    """A fitted learner; `predict` gives the quantiles of the deviation for new items."""

    shape: Shape = field(default_factory=lambda: Shape({}, []))
    levels: tuple[float, ...] = QUANTILES
    candidates: dict[str, Any] = field(default_factory=dict)
    choices: dict[float, Choice] = field(default_factory=dict)
    snap_ref: dict[float, str] = field(default_factory=dict)
    losses: dict[float, dict[str, float]] = field(default_factory=dict)
    simple: list[str] = field(default_factory=list)
    ties: TieShare | None = None
    tie_share: float = 0.0
    penalty: float = 0.0
    penalty_size: float = 0.0
    n_train: int = 0
    n_validation: int = 0
    not_known: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    version: str = MODEL_VERSION

    @property
    def dims(self) -> dict[str, list[str]]:
        """The segment columns and their kept values."""
        return self.shape.dims

    @classmethod
    def fit(cls, samples: Sequence[Sample],
            quantiles: Sequence[float] = QUANTILES) -> SegmentQuantileModel:
        """Fit on `samples`, which must be in time order (oldest first).

        The most recent quarter (at most MAX_HOLDOUT) is held out: every candidate is fitted
        on (at most MAX_SELECT) items before it, scored on it, and the choice per level made
        there; then every candidate is refitted on the most recent MAX_TRAIN samples.

        Raises:
            ValueError: with fewer than 10 samples.
        """
        samples = list(samples)[-MAX_TRAIN:]
        if len(samples) < 10:
            raise ValueError("at least 10 finished items are needed to learn from")
        shape = Shape.of(samples)
        codes = shape.encode(samples)
        y = np.fromiter((s.y for s in samples), dtype=np.float64, count=len(samples))
        n = len(samples)
        cut = max(int(n * 0.75), n - MAX_HOLDOUT)
        fit_idx = np.arange(max(0, cut - MAX_SELECT), cut)
        model = cls(shape=shape, levels=tuple(sorted(quantiles)), n_train=n,
                    n_validation=n - cut)
        cut_time = samples[cut].when
        if cut_time is not None:
            known = np.asarray([np.nan if samples[i].known is None else samples[i].known
                                for i in fit_idx], dtype=np.float64)
            late = known > cut_time
            if int((~late).sum()) >= MIN_CONTINUOUS:
                model.not_known = int(late.sum())
                fit_idx = fit_idx[~late]
        val_idx = np.arange(cut, n)
        tie = is_tie(y)
        chosen = model._compare(y[fit_idx], _subset(codes, fit_idx), tie[fit_idx],
                                y[val_idx], _subset(codes, val_idx), tie[val_idx])
        model._refit(chosen, y, codes, tie)
        return model

    def _compare(self, y: FloatArray, codes: list[IntArray], tie: Any, y_val: FloatArray,
                 codes_val: list[IntArray], tie_val: Any) -> dict[str, Any]:
        """Fit every candidate on the fitting part, choose per level on validation."""
        names, sizes = self.shape.names(), self.shape.sizes()
        size_dim = len(names) - 1 if self.shape.size_edges else None
        cands: dict[str, Any] = {PLAN: plan_curve(self.levels),
                                 GLOBAL: fit_column(GLOBAL, y, codes, sizes, self.levels, None)}
        useful = [d for d in range(len(names)) if len(np.unique(codes[d])) >= 2]
        for d in useful:
            name = f"quantiles per {names[d]}"
            cands[name] = fit_column(name, y, codes, sizes, self.levels, d)
        self.simple = list(cands)
        self.tie_share = float(np.mean(tie)) if len(tie) else 0.0
        ties_on = self.tie_share >= MIN_TIE_SHARE and int((~tie).sum()) >= MIN_CONTINUOUS \
            and int((~tie_val).sum()) >= 1
        # One penalty search serves both additive candidates: on the items off the plan when
        # ties are a point mass of their own (the spike would dominate the search), else on all.
        rest, rest_val = (~tie, ~tie_val) if ties_on else (slice(None), slice(None))
        penalties, _ = choose_penalties(y[rest], _subset(codes, rest), sizes, y_val[rest_val],
                                        _subset(codes_val, rest_val), size_dim)
        self.penalty = penalties[0] if penalties else 0.0
        self.penalty_size = penalties[size_dim] if size_dim is not None else 0.0
        cands[ADDITIVE] = fit_additive_curve(ADDITIVE, y, codes, sizes, self.levels, penalties)
        if ties_on:
            self.ties, _ = choose_share(tie, codes, sizes, names, tie_val, codes_val)
            cands.update(self._mixed(self.ties, y[~tie], _subset(codes, ~tie), useful,
                                     penalties))
        preds = {name: c.predict(codes_val) for name, c in cands.items()}
        mixed = [name for name, c in cands.items() if isinstance(c, Mixed)]
        for j, q in enumerate(self.levels):
            at = {name: p[:, j] for name, p in preds.items()}
            tie_band = None
            if mixed:
                self.snap_ref[q] = min(mixed, key=lambda m: pinball(y_val, at[m], q))
                tie_band = cands[self.snap_ref[q]].band(codes_val)
            self.choices[q], self.losses[q] = choose(y_val, at, q, self.simple, tie_band)
            combined = combine(at, self.choices[q].parts)
            if self.choices[q].snap and tie_band is not None:
                combined = snapped(combined, q, tie_band)
            self.validation[f"pinball_p{round(q * 100)}"] = round(pinball(y_val, combined, q), 6)
            self.validation[f"coverage_p{round(q * 100)}"] = round(
                float(np.mean(y_val <= combined + 1e-12)), 4)
        self.validation["n_holdout"] = float(len(y_val))
        return cands

    def _mixed(self, share: TieShare, y: FloatArray, codes: list[IntArray], useful: list[int],
               penalties: tuple[float, ...]) -> dict[str, Mixed]:
        """The point mass of ties mixed with each continuous candidate, fitted on the items
        not exactly on plan (at enough levels to read any level of the mixture off)."""
        names, sizes = self.shape.names(), self.shape.sizes()
        grid = tuple(sorted({*GRID, *self.levels}))
        bases: list[tuple[str, int | None]] = [(GLOBAL, None)]
        bases += [(f"quantiles per {names[d]}", d) for d in useful]
        out = {TIES + base: Mixed(TIES + base, fit_column(base, y, codes, sizes, grid, d),
                                  share, self.levels) for base, d in bases}
        additive = fit_additive_curve(ADDITIVE, y, codes, sizes, grid, penalties)
        out[TIES + ADDITIVE] = Mixed(TIES + ADDITIVE, additive, share, self.levels)
        return out

    def _refit(self, cands: dict[str, Any], y: FloatArray, codes: list[IntArray],
               tie: Any) -> None:
        """Every candidate refitted on all training samples (same columns and penalties)."""
        sizes = self.shape.sizes()
        rest = ~tie
        if self.ties is not None:
            self.ties = fit_share(tie, codes, sizes, self.ties.column, self.ties.name)
        used = {n for choice in self.choices.values() for n in choice.names()}
        used |= set(self.snap_ref.values()) | set(self.simple)
        used.add(TIES + ADDITIVE if TIES + ADDITIVE in cands else ADDITIVE)  # for `effects`
        for name, c in cands.items():
            if name not in used:
                continue  # never chosen: not worth refitting
            if isinstance(c, Mixed):
                assert self.ties is not None
                curve = c.curve.refit(y[rest], _subset(codes, rest), sizes)
                self.candidates[name] = Mixed(name, curve, self.ties, self.levels)
            else:
                self.candidates[name] = c.refit(y, codes, sizes)

    def encode(self, samples: Sequence[Sample]) -> list[IntArray]:
        """One code array per dimension (plan size last)."""
        return self.shape.encode(samples)

    def predict(self, samples: Sequence[Sample]) -> dict[float, FloatArray]:
        """Quantiles of the deviation per sample, non-crossing (never lowered to uncross)."""
        codes = self.encode(samples)
        cache: dict[str, FloatArray] = {}
        out = np.empty((len(samples), len(self.levels)))
        for j, q in enumerate(self.levels):
            choice = self.choices[q]
            for name in choice.names():
                if name not in cache:
                    cache[name] = self.candidates[name].predict(codes)
            col = combine({name: cache[name][:, j] for name in choice.names()}, choice.parts)
            if choice.snap:
                col = snapped(col, q, self.candidates[self.snap_ref[q]].band(codes))
            out[:, j] = col
        out = np.maximum.accumulate(out, axis=1)
        return {q: out[:, j] for j, q in enumerate(self.levels)}

    def predict_candidate(self, name: str, samples: Sequence[Sample]) -> dict[float, FloatArray]:
        """One candidate's own quantiles (the backtest shows the simple rules side by side)."""
        pred = self.candidates[name].predict(self.encode(samples))
        return {q: pred[:, j] for j, q in enumerate(self.levels)}

    def best_simple(self, level: float, columns_only: bool = True) -> str:
        """The simple rule with the lowest validation pinball at `level` (by default among
        the one-column rules only: the fair competitor a careful analyst would pick)."""
        names = [n for n in self.simple if not columns_only or n not in (PLAN, GLOBAL)]
        names = names or [GLOBAL]
        return min(names, key=lambda n: self.losses[level][n])

    def _additive(self) -> AdditiveCurve | None:
        for c in self.candidates.values():
            curve = c.curve if isinstance(c, Mixed) else c
            if isinstance(curve, AdditiveCurve):
                return curve
        return None

    def effects(self, q: float = 0.8) -> dict[str, dict[str, float]]:
        """Non-zero effects of the additive model at level q per dimension (what it found
        matters, on the continuous part when ties are a point mass of their own)."""
        additive = self._additive()
        if additive is None or q not in additive.fits:
            return {}
        _, effects = additive.fits[q]
        labels = [*self.shape.dims.values(),
                  [f"band {i}" for i in range(len(self.shape.size_edges) + 2)]]
        out: dict[str, dict[str, float]] = {}
        for name, values, eff in zip(self.shape.names(), labels, effects, strict=True):
            for value, e in zip(values, eff, strict=True):
                if value != OTHER and abs(e) > 1e-9:
                    out.setdefault(name, {})[value] = float(e)
        return out

    def describe(self) -> dict[str, Any]:
        """What was chosen per level and why, in plain words and in numbers."""
        levels: dict[str, Any] = {}
        lines = []
        for q in self.levels:
            choice, losses = self.choices[q], self.losses[q]
            simple = min(self.simple, key=lambda n: losses[n])
            label = f"P{round(q * 100)}"
            levels[label] = {"uses": choice.words(), "validation_pinball": round(choice.loss, 4),
                             "candidates": {n: round(v, 4) for n, v in
                                            sorted(losses.items(), key=lambda kv: kv[1])}}
            others = "".join(f", {n} {losses[n]:.4f}" for n in (GLOBAL, PLAN) if n != simple)
            lines.append(
                f"{label}: {choice.words()}, validation pinball {choice.loss:.4f} on "
                f"{self.n_validation:,} recent items; the best simple rule ({simple}) "
                f"{losses[simple]:.4f}{others}")
        ties = None
        if self.ties is not None:
            ties = {"share": round(self.tie_share, 4), "by": self.ties.name}
            lines.append(f"{self.tie_share:.0%} of items landed exactly on plan: modelled as a "
                         f"point mass ({self.ties.name})")
        return {"version": self.version, "n_train": self.n_train,
                "n_validation": self.n_validation, "not_known_at_validation": self.not_known,
                "penalty": self.penalty, "penalty_size": self.penalty_size, "ties": ties,
                "levels": levels, "summary": lines}
