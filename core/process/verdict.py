"""The plain verdict of a process experiment: did the change work, with its numbers.

| verdict | when | concluded |
| --- | --- | --- |
| worked | interval excludes 0 in the expected direction, estimate beyond the minimum effect, pre-period trends agree | yes |
| too_small | interval excludes 0 in the expected direction but rules out the minimum effect | yes (negative) |
| failed | interval includes 0 and rules out the minimum effect | yes (negative) |
| harmed | interval excludes 0 in the wrong direction | yes (negative) |
| diverging | the pre-period trends of the two sides diverge: the estimate is not trusted | no |
| inconclusive | none of the above yet (interval too wide, or trends not checkable) | no |
| not_enough_data | too few finished items, periods or comparison groups | no |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.process.did import Result
from core.process.measures import DECREASE, ProcessMeasure, shown

WORKED, TOO_SMALL, FAILED, HARMED = "worked", "too_small", "failed", "harmed"
DIVERGING, INCONCLUSIVE, NOT_ENOUGH = "diverging", "inconclusive", "not_enough_data"
NEGATIVE = (TOO_SMALL, FAILED, HARMED)
CONCLUDED = (WORKED, *NEGATIVE)
VERDICTS = (WORKED, TOO_SMALL, FAILED, HARMED, DIVERGING, INCONCLUSIVE, NOT_ENOUGH)


@dataclass(frozen=True)
class Verdict:
    """What a person reads: the kind of verdict and one sentence with its evidence."""

    kind: str
    statement: str
    effect: float  # shown units (days, %, points, items a week); NaN without an estimate
    low: float
    high: float
    needed: int  # about how many more finished treated items would settle it (0: none)


def _num(measure: ProcessMeasure, value: float) -> str:
    digits = 0 if measure.unit == "%" else 1
    return f"{value:,.{digits}f}"


def _amount(measure: ProcessMeasure, value: float) -> str:
    unit = "%" if measure.unit == "%" else f" {measure.unit}"
    return f"{_num(measure, value)}{unit}{measure.per}"


def _trend_words(res: Result) -> str:
    if not res.trend_checked:
        return f"the pre-period is too short to check the trends ({res.periods.get('pre', 0)} periods)"
    if res.diverging:
        return f"the pre-period trends diverge (placebo start dates, p={res.trend_p:.2g})"
    return "the pre-period trends agree"


def _more(res: Result, half: float, target: float) -> int:
    """About how many more finished treated items shrink the half-width to `target`."""
    n = max(res.counts.get("treated_post", 0), 1)
    if target <= 0 or half <= target:
        return 0
    return int(math.ceil(n * ((half / target) ** 2 - 1) / 10.0) * 10)


def judge(res: Result, measure: ProcessMeasure, direction: str, min_effect: float,
          name: str, who: str) -> Verdict:
    """The verdict of `res` for a change `name` on `who`, expected to move `measure` in
    `direction` by at least `min_effect` (shown units).

    Args:
        res: the difference-in-differences estimate.
        measure: the measure judged.
        direction: DECREASE or INCREASE.
        min_effect: the smallest effect worth acting on, in the measure's shown units.
        name: the change in words (`2-week sprints`).
        who: the treated group in words (`team A`).
    """
    nan = math.nan
    if not res.enough:
        need = res.needed
        why = "; ".join(res.missing) or "too few finished items"
        head = f"about {need:,} more finished items needed" if need else "more data needed"
        return Verdict(NOT_ENOUGH, f"{name}: not enough data yet to judge {who}'s "
                       f"{measure.label}: {head} ({why}; n={res.n_treated:,} vs "
                       f"{res.n_comparison:,} so far)", nan, nan, nan, need)
    eff, lo, hi = (shown(measure, v) for v in (res.effect, res.low, res.high))
    sign = -1.0 if direction == DECREASE else 1.0
    gain, g_lo, g_hi = sign * eff, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
    verb = "cut" if eff < 0 else "raised"
    mag_lo, mag_hi = (-hi, -lo) if eff < 0 else (lo, hi)
    evidence = (f"{res.level:.0%} interval {_num(measure, mag_lo)} to {_num(measure, mag_hi)}, "
                f"n={res.n_treated:,} vs {res.n_comparison:,}; {_trend_words(res)}")
    said = f"{name} {verb} {who}'s {measure.label} by {_amount(measure, abs(eff))} ({evidence})"
    half = (hi - lo) / 2
    if res.diverging:
        return Verdict(DIVERGING, f"{name}: not trusted yet: {said}. Before the change {who} "
                       "already drifted apart from the comparison, so the gap may not be the "
                       "change's doing", eff, lo, hi, 0)
    if g_hi < 0:
        return Verdict(HARMED, f"{said}: the opposite of what was expected (a negative "
                       "result, kept)", eff, lo, hi, 0)
    if g_lo > 0 and gain >= min_effect:
        if not res.trend_checked:
            return Verdict(INCONCLUSIVE, f"{said}; the change looks like it worked, but the "
                           "trends before it could not be checked yet", eff, lo, hi, 0)
        return Verdict(WORKED, said, eff, lo, hi, 0)
    if g_hi < min_effect:
        kind = TOO_SMALL if g_lo > 0 else FAILED
        tail = (f"real but smaller than the {_amount(measure, min_effect)} worth acting on"
                if kind == TOO_SMALL else
                f"no effect of the {_amount(measure, min_effect)} worth acting on")
        return Verdict(kind, f"{said}: {tail} (a negative result, kept)", eff, lo, hi, 0)
    target = min_effect if min_effect > 0 else abs(gain)
    need = _more(res, half, target)
    more = f"; about {need:,} more finished items of {who} would settle it" if need else ""
    return Verdict(INCONCLUSIVE, f"{said}: not clear yet{more}", eff, lo, hi, need)
