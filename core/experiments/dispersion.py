"""Over-dispersion of any metric within one test, from its arms' statistics per day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.experiments.stats import ArmStats

MIN_DF = 10


def over_days(arms: Mapping[str, ArmStats], per_day: Mapping[str, Sequence[ArmStats]]) -> float:
    """How much more the arm's daily means swing than their standard errors allow.

    Pearson's statistic of each day's mean against the arm's mean, sum of
    n_day (mean_day - mean_arm)^2 / var_arm over days and arms, over its degrees of freedom.
    For a proportion this is `stats.dispersion_over_days` exactly; for a mean or a ratio it
    uses that metric's own per-unit variance, so each metric gets its own dispersion.

    Args:
        arms: each arm's statistics over the whole test.
        per_day: each arm's statistics per day (same metric).

    Returns:
        The dispersion (>= 1); 1 with fewer than MIN_DF degrees of freedom.
    """
    chi2, df = 0.0, 0
    for arm, days in per_day.items():
        total = arms[arm]
        filled = [d for d in days if d.n > 0]
        var = total.var
        if len(filled) < 2 or var <= 0:
            continue
        mean = total.mean
        chi2 += sum(d.n * (d.mean - mean) ** 2 for d in filled) / var
        df += len(filled) - 1
    return max(1.0, chi2 / df) if df >= MIN_DF else 1.0
