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

All the history counts, weighted by recency: the half-life (or none) is chosen on the same
validation, and a history too long to fit whole is a weighted sample standing for all of it
(`recency.py`).
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
from core.learning.recency import DAY, FLOOR, HALF_LIVES, thin, weights
from core.learning.select import Choice, choose, clearly_better, combine, snapped
from core.learning.ties import TieShare, band, choose_share, fit_share, is_tie, mixture

__all__ = ["MODEL_VERSION", "QUANTILES", "Sample", "SegmentQuantileModel", "pinball"]

QUANTILES = (0.5, 0.8, 0.9, 0.95)
GRID = (0.1, 0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # the continuous part's levels
MIN_SEGMENT_COUNT = 5
MAX_TRAIN = 30_000  # rows fitted at most: a weighted sample of the whole history beyond it
MAX_SELECT = 15_000  # ... and candidates compared after fitting on at most this many
MAX_HOLDOUT = 10_000
SIZE_BANDS = 8
MAX_SIZE_CLASSES = 16  # up to this many common plan sizes are classes of their own
ROUND_SHARE = 0.02  # with more, the sizes this share of items has are classes inside bands
MIN_TIE_SHARE = 0.02  # below this share of exact ties no point mass is modelled
MIN_CONTINUOUS = 10
SIZE = "plan size"
OTHER = "\x00other"  # rare, unseen and missing values of a dimension
GLOBAL = "one global quantile"
ADDITIVE = "additive model"
TIES = "ties + "
HALF_LIFE_PENALTY = 12.0  # the additive model's pseudo-count while half-lives are compared
HALF_LIFE_LEVEL = 0.8  # ... and its one level
MODEL_VERSION = "sqm-4"


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
    weight: float = 1.0  # how many items of the history it stands for (`recency.thin`)


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

    def size_labels(self) -> list[str]:
        """Each plan-size class in words ("2", "2 to 3.5", "under 0.5", "unknown")."""
        bounds = [math.exp(e) for e in self.size_edges]

        def num(v: float) -> str:
            return f"{v:.3g}"

        out = []
        for i in range(len(bounds) + 1):
            lo = bounds[i - 1] if i > 0 else None
            hi = bounds[i] if i < len(bounds) else None
            if lo is None:
                out.append("any size" if hi is None else f"under {num(hi)}")
            elif hi is None:
                out.append(f"{num(lo)} or more")
            elif num(lo) == num(hi):
                out.append(num(lo))
            else:
                out.append(f"{num(lo)} to {num(hi)}")
        return [*out, "unknown"]

    def encode(self, samples: Sequence[Sample]) -> list[IntArray]:
        """One code array per dimension (plan size last); unknown values map to OTHER."""
        out = []
        segs = [s.segments for s in samples]
        for dim, values in self.dims.items():
            index: dict[Any, int] = {v: i for i, v in enumerate(values)}
            other = index[OTHER]
            raw = [seg.get(dim, _MISSING) for seg in segs]
            try:  # values as stored: one dict look-up each (text values are their own key)
                got = [index.get(v, -1) for v in raw]
            except TypeError:  # an unhashable value (a list): compare as text
                got = [-1] * len(raw)
            for i in [i for i, g in enumerate(got) if g < 0]:
                v = raw[i]
                got[i] = other if v is _MISSING else index.get(str(v), other)
            out.append(np.asarray(got, dtype=np.intp))
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
        try:
            pairs = Counter(kv for s in samples for kv in s.segments.items())
        except TypeError:  # an unhashable value (a list): count them as text
            pairs = Counter((d, str(v)) for s in samples for d, v in s.segments.items())
        for (dim, value), c in pairs.items():
            counts.setdefault(dim, Counter())[str(value)] += c
        dims = {
            dim: [*sorted(v for v, c in counter.items() if c >= MIN_SEGMENT_COUNT), OTHER]
            for dim, counter in sorted(counts.items())
        }
        sizes = [s.size for s in samples if s.size and s.size > 0]
        logs = np.log(sizes) if sizes else np.zeros(0)
        by_size = Counter(sizes)
        common = sorted(math.log(v) for v, c in by_size.items() if c >= MIN_SEGMENT_COUNT)
        edges: list[float] = []
        if 2 <= len(common) <= MAX_SIZE_CLASSES:
            edges = [round((a + b) / 2, 9) for a, b in itertools.pairwise(common)]
        elif len(logs) >= 2 * MIN_SEGMENT_COUNT:
            inner = np.quantile(logs, np.linspace(0, 1, SIZE_BANDS + 1)[1:-1])
            # The values a team uses most (the round ones: 1, 2, 7 hours; 30, 60 minutes)
            # are classes of their own inside the bands: a round estimate is often a guess
            # and lands differently from a worked-out 3.25 beside it.
            least = max(MIN_SEGMENT_COUNT, ROUND_SHARE * len(sizes))
            favourites = [math.log(v) for v, c in by_size.most_common(MAX_SIZE_CLASSES)
                          if c >= least]
            edges = sorted({round(float(e), 9) for e in inner}
                           | {round(v + d, 9) for v in favourites for d in (-1e-6, 1e-6)})
        return cls(dims=dims, size_edges=edges)


_MISSING = object()


def _subset(codes: Sequence[IntArray], idx: Any) -> list[IntArray]:
    return [c[idx] for c in codes]


def _per_item(y: FloatArray, pred: FloatArray, q: float) -> FloatArray:
    diff = y - pred
    return np.asarray(np.maximum(q * diff, (q - 1) * diff))


def _label(half_life: float | None) -> str:
    """A half-life in words."""
    if half_life is None:
        return "no decay"
    if half_life >= 365:
        years = half_life / 365
        return f"{years:g} year" + ("" if years == 1 else "s")
    return f"{half_life:g} days"


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
    half_life: float | None = None
    half_life_losses: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_fitted: int = 0
    n_validation: int = 0
    not_known: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    version: str = MODEL_VERSION

    @property
    def dims(self) -> dict[str, list[str]]:
        """The segment columns and their kept values."""
        return self.shape.dims

    @classmethod
    def fit(cls, samples: Sequence[Sample], quantiles: Sequence[float] = QUANTILES,
            half_lives: Sequence[float | None] = HALF_LIVES) -> SegmentQuantileModel:
        """Fit on `samples`, which must be in time order (oldest first): all of them, each
        weighted by its recency (`recency.py`) and its own `weight`.

        The most recent quarter (at most MAX_HOLDOUT) is held out. The half-life of the
        recency weights is chosen there among `half_lives` (no decay unless a decay is
        clearly better); every candidate is fitted on the items before it (a weighted sample
        of at most MAX_SELECT of them), scored on it, and the choice per level made there;
        then every candidate is refitted on all samples (a weighted sample of at most
        MAX_TRAIN), weighted from the newest one.

        Raises:
            ValueError: with fewer than 10 samples.
        """
        samples = list(samples)
        if len(samples) < 10:
            raise ValueError("at least 10 finished items are needed to learn from")
        shape = Shape.of(samples)
        codes = shape.encode(samples)
        n = len(samples)
        y = np.fromiter((s.y for s in samples), dtype=np.float64, count=n)
        design = np.fromiter((s.weight for s in samples), dtype=np.float64, count=n)
        when = np.fromiter((np.nan if s.when is None else s.when for s in samples),
                           dtype=np.float64, count=n)
        cut = max(int(n * 0.75), n - MAX_HOLDOUT)
        model = cls(shape=shape, levels=tuple(sorted(quantiles)), n_train=n,
                    n_validation=n - cut)
        pool = np.arange(cut)
        cut_time = samples[cut].when
        if cut_time is not None:
            known = np.asarray([np.nan if samples[i].known is None else samples[i].known
                                for i in pool], dtype=np.float64)
            late = known > cut_time
            if int((~late).sum()) >= MIN_CONTINUOUS:
                model.not_known = int(late.sum())
                pool = pool[~late]
        timed = not np.isnan(when).any()
        options = list(half_lives) if timed else [None]
        val_idx = np.arange(cut, n)
        tie = is_tie(y)
        val = (y[val_idx], _subset(codes, val_idx))
        ref = float(when[cut]) if timed else 0.0
        model.half_life = model._half_life(options, y, codes, design, when, pool, ref, val)
        fit_idx, fit_w = model._weighted(design, when, pool, ref, MAX_SELECT)
        chosen = model._compare(y[fit_idx], _subset(codes, fit_idx), tie[fit_idx], fit_w,
                                *val, tie[val_idx])
        every = np.arange(n)
        ref = float(np.max(when)) if timed else 0.0
        idx, w = model._weighted(design, when, every, ref, MAX_TRAIN)
        model.n_fitted = len(idx)
        model._refit(chosen, y[idx], _subset(codes, idx), tie[idx], w)
        return model

    def _weighted(self, design: FloatArray, when: FloatArray, idx: IntArray, ref: float,
                  budget: int) -> tuple[IntArray, FloatArray | None]:
        """The rows `idx` weighted by recency seen from `ref` (times their own weight), thinned
        to about `budget` (`recency.thin`); no weights at all when every row weighs the same."""
        w = design[idx] * (weights(when[idx], ref, self.half_life) if self.half_life else 1.0)
        keep, kept_w = thin(w, budget, keys=idx.astype(np.int64))
        if len(kept_w) == 0 or np.all(kept_w == kept_w[0]):
            return idx[keep], None
        return idx[keep], kept_w

    def _half_life(self, options: Sequence[float | None], y: FloatArray, codes: list[IntArray],
                   design: FloatArray, when: FloatArray, pool: IntArray, ref: float,
                   val: tuple[FloatArray, list[IntArray]]) -> float | None:
        """The half-life of the recency weights with the lowest validation pinball of the
        simple rules and the additive model (summed over levels, each level's best), no
        decay unless a decay is clearly better (one standard error, `select.py`)."""
        y_val, codes_val = val
        best: tuple[float | None, FloatArray] | None = None
        sizes = self.shape.sizes()
        useful = [d for d in range(len(sizes)) if len(np.unique(codes[d][pool])) >= 2]
        span = (ref - float(np.min(when[pool]))) / DAY if len(pool) else 0.0
        for hl in options:
            if hl is not None and span < hl / 4:
                continue  # over so short a history the weights would hardly differ
            self.half_life = hl
            idx, w = self._weighted(design, when, pool, ref, MAX_SELECT)
            yy, cc = y[idx], _subset(codes, idx)
            preds = [fit_column(GLOBAL, yy, cc, sizes, self.levels, None, w=w).predict(codes_val)]
            preds += [fit_column("", yy, cc, sizes, self.levels, d, w=w).predict(codes_val)
                      for d in useful]
            # The additive model at the level its penalty is searched at only (it is the
            # dearest candidate): there it competes with the simple rules.
            at = HALF_LIFE_LEVEL if HALF_LIFE_LEVEL in self.levels else self.levels[-1]
            additive = fit_additive_curve(ADDITIVE, yy, cc, sizes, (at,),
                                          [HALF_LIFE_PENALTY] * len(sizes), w=w
                                          ).predict(codes_val)[:, 0]
            total = np.zeros(len(y_val))
            for j, q in enumerate(self.levels):
                per = [_per_item(y_val, p[:, j], q) for p in preds]
                if q == at:
                    per.append(_per_item(y_val, additive, q))
                total += min(per, key=lambda v: float(np.mean(v)))
            self.half_life_losses[_label(hl)] = round(float(np.mean(total)), 6)
            if best is None or clearly_better(total, best[1]):
                best = (hl, total)
        assert best is not None
        return best[0]

    def _compare(self, y: FloatArray, codes: list[IntArray], tie: Any, w: FloatArray | None,
                 y_val: FloatArray, codes_val: list[IntArray], tie_val: Any) -> dict[str, Any]:
        """Fit every candidate on the fitting part, choose per level on validation."""
        names, sizes = self.shape.names(), self.shape.sizes()
        size_dim = len(names) - 1 if self.shape.size_edges else None
        cands: dict[str, Any] = {PLAN: plan_curve(self.levels),
                                 GLOBAL: fit_column(GLOBAL, y, codes, sizes, self.levels, None,
                                                    w=w)}
        useful = [d for d in range(len(names)) if len(np.unique(codes[d])) >= 2]
        for d in useful:
            name = f"quantiles per {names[d]}"
            cands[name] = fit_column(name, y, codes, sizes, self.levels, d, w=w)
        self.simple = list(cands)
        weight = np.ones(len(y)) if w is None else w
        self.tie_share = float(np.sum(weight[tie]) / np.sum(weight)) if len(tie) else 0.0
        ties_on = self.tie_share >= MIN_TIE_SHARE and int((~tie).sum()) >= MIN_CONTINUOUS \
            and int((~tie_val).sum()) >= 1
        # One penalty search serves both additive candidates: on the items off the plan when
        # ties are a point mass of their own (the spike would dominate the search), else on all.
        rest, rest_val = (~tie, ~tie_val) if ties_on else (slice(None), slice(None))
        penalties, _ = choose_penalties(y[rest], _subset(codes, rest), sizes, y_val[rest_val],
                                        _subset(codes_val, rest_val), size_dim,
                                        w=None if w is None else w[rest])
        self.penalty = penalties[0] if penalties else 0.0
        self.penalty_size = penalties[size_dim] if size_dim is not None else 0.0
        cands[ADDITIVE] = fit_additive_curve(ADDITIVE, y, codes, sizes, self.levels, penalties,
                                             w=w)
        if ties_on:
            self.ties, _ = choose_share(tie, codes, sizes, names, tie_val, codes_val, w=w)
            cands.update(self._mixed(self.ties, y[~tie], _subset(codes, ~tie), useful,
                                     penalties, None if w is None else w[~tie]))
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
               penalties: tuple[float, ...], w: FloatArray | None) -> dict[str, Mixed]:
        """The point mass of ties mixed with each continuous candidate, fitted on the items
        not exactly on plan (at enough levels to read any level of the mixture off)."""
        names, sizes = self.shape.names(), self.shape.sizes()
        grid = tuple(sorted({*GRID, *self.levels}))
        bases: list[tuple[str, int | None]] = [(GLOBAL, None)]
        bases += [(f"quantiles per {names[d]}", d) for d in useful]
        out = {TIES + base: Mixed(TIES + base, fit_column(base, y, codes, sizes, grid, d, w=w),
                                  share, self.levels) for base, d in bases}
        additive = fit_additive_curve(ADDITIVE, y, codes, sizes, grid, penalties, w=w)
        out[TIES + ADDITIVE] = Mixed(TIES + ADDITIVE, additive, share, self.levels)
        return out

    def _refit(self, cands: dict[str, Any], y: FloatArray, codes: list[IntArray],
               tie: Any, w: FloatArray | None) -> None:
        """Every candidate refitted on all training samples (same columns and penalties)."""
        sizes = self.shape.sizes()
        rest = ~tie
        w_rest = None if w is None else w[rest]
        if self.ties is not None:
            self.ties = fit_share(tie, codes, sizes, self.ties.column, self.ties.name, w)
        used = {n for choice in self.choices.values() for n in choice.names()}
        used |= set(self.snap_ref.values()) | set(self.simple)
        used.add(TIES + ADDITIVE if TIES + ADDITIVE in cands else ADDITIVE)  # for `effects`
        for name, c in cands.items():
            if name not in used:
                continue  # never chosen: not worth refitting
            if isinstance(c, Mixed):
                assert self.ties is not None
                curve = c.curve.refit(y[rest], _subset(codes, rest), sizes, w_rest)
                self.candidates[name] = Mixed(name, curve, self.ties, self.levels)
            else:
                self.candidates[name] = c.refit(y, codes, sizes, w)

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
        labels = [*self.shape.dims.values(), self.shape.size_labels()]
        out: dict[str, dict[str, float]] = {}
        for name, values, eff in zip(self.shape.names(), labels, effects, strict=True):
            for value, e in zip(values, eff, strict=True):
                if value != OTHER and abs(e) > 1e-9:
                    out.setdefault(name, {})[value] = float(e)
        return out

    def recency_words(self) -> str:
        """How the history was weighted, in plain words."""
        tried = ", ".join(f"{k} {v:.4f}" for k, v in self.half_life_losses.items())
        used = (f"all {self.n_train:,} items" if self.n_fitted >= self.n_train else
                f"a weighted sample of {self.n_fitted:,} standing for all {self.n_train:,}")
        if self.half_life is None:
            how = "every item weighs the same (no recency decay"
        else:
            how = (f"recent items weigh more (half-life {_label(self.half_life)}, at least "
                   f"{FLOOR:g} of the newest"
                   )
        return f"history: {used}; {how}" + (f"; validation pinball {tried})" if tried else ")")

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
        lines.append(self.recency_words())
        return {"version": self.version, "n_train": self.n_train, "n_fitted": self.n_fitted,
                "half_life": _label(self.half_life), "half_lives": self.half_life_losses,
                "n_validation": self.n_validation, "not_known_at_validation": self.not_known,
                "penalty": self.penalty, "penalty_size": self.penalty_size, "ties": ties,
                "levels": levels, "summary": lines}
