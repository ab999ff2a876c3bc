"""Choosing and combining candidate forecasts per quantile level on time-ordered validation.

For each level the candidate with the lowest validation pinball is taken (a learned one only
when it beats the best simple rule by more than one standard error of the paired difference:
selection noise must not replace a rule that is as good), then blended with each other
candidate at weights 0.1 to 0.9 where that clearly lowers the validation pinball further (a
blend of two quantile forecasts is again one), and finally snapped to the plan where the
point mass of ties says the level is exactly "as planned", if that clearly helps too. Every
simple candidate is one of the options, so on validation the choice is never worse than the
best of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.learning.additive import FloatArray

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
MIN_GAIN = 2e-4  # a blend or a snap must lower the validation pinball by this share
Z = 1.0  # ... and by this many standard errors of the paired difference (one-SE rule)


@dataclass(frozen=True)
class Choice:
    """What forecasts one quantile level: weighted candidates, maybe snapped to the plan."""

    level: float
    parts: tuple[tuple[str, float], ...]
    snap: bool
    loss: float

    def names(self) -> list[str]:
        """The candidates it uses."""
        return [name for name, _ in self.parts]

    def words(self) -> str:
        """The choice in plain words."""
        if len(self.parts) == 1:
            text = self.parts[0][0]
        else:
            text = "a blend of " + " and ".join(f"{round(w * 100)}% {name}"
                                                for name, w in self.parts)
        return text + (", exactly the plan where ties make it so" if self.snap else "")


def combine(preds: Mapping[str, FloatArray], parts: Sequence[tuple[str, float]]) -> FloatArray:
    """The weighted sum of the named candidates' forecasts."""
    out = np.zeros_like(preds[parts[0][0]])
    for name, w in parts:
        out = out + w * preds[name]
    return out


def snapped(pred: FloatArray, level: float, band: tuple[FloatArray, FloatArray]) -> FloatArray:
    """`pred` set to the plan (0) where the tie band (low, high] covers `level`."""
    low, high = band
    return np.where((level > low) & (level <= high), 0.0, pred)


def _losses(y: FloatArray, pred: FloatArray, level: float) -> FloatArray:
    diff = y - pred
    return np.asarray(np.maximum(level * diff, (level - 1) * diff))


def _clearly_better(new: FloatArray, old: FloatArray) -> bool:
    """Whether per-item losses `new` beat `old` by more than Z standard errors of the
    paired difference (and by MIN_GAIN): a more complex forecast has to earn its place."""
    diff = old - new
    gain = float(np.mean(diff)) if len(diff) else 0.0
    if gain <= MIN_GAIN * float(np.mean(old)):
        return False
    se = float(np.std(diff, ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
    return gain > Z * se


def choose(y: FloatArray, preds: Mapping[str, FloatArray], level: float,
           simple: Sequence[str] = (), band: tuple[FloatArray, FloatArray] | None = None
           ) -> tuple[Choice, dict[str, float]]:
    """The best selection or blend of `preds` (name -> validation forecasts at `level`, the
    simplest first: on equal loss the earlier wins). A candidate not in `simple`, a blend
    and a snap each replace the choice so far only when clearly better on validation.

    Returns:
        (the choice, every candidate's own validation pinball)
    """
    per_item = {name: _losses(y, p, level) for name, p in preds.items()}
    losses = {name: float(np.mean(v)) if len(v) else 0.0 for name, v in per_item.items()}
    best = min(losses, key=lambda n: losses[n])  # min keeps the first of equal losses
    plain = [n for n in preds if n in simple]
    if plain and best not in plain:
        fallback = min(plain, key=lambda n: losses[n])
        if not _clearly_better(per_item[best], per_item[fallback]):
            best = fallback
    parts: tuple[tuple[str, float], ...] = ((best, 1.0),)
    current = per_item[best]
    for other in preds:
        if other == best:
            continue
        for w in WEIGHTS:
            trial = _losses(y, (1 - w) * preds[best] + w * preds[other], level)
            if np.mean(trial) < np.mean(current) and _clearly_better(trial, per_item[best]):
                parts, current = ((best, round(1 - w, 1)), (other, w)), trial
    snap = False
    if band is not None:
        trial = _losses(y, snapped(combine(preds, parts), level, band), level)
        if _clearly_better(trial, current):
            snap, current = True, trial
    loss = float(np.mean(current)) if len(current) else 0.0
    return Choice(level, parts, snap, loss), losses
