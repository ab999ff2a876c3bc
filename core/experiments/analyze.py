"""Decisions on one test and segment policies that survive interaction tests and BH control."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.experiments.allocation import thompson_many
from core.experiments.stats import ArmStats, Moments, RatioMoments, compare, srm_p

SRM_ALPHA = 0.001
WIN_PROBABILITY = 0.95
MIN_UNITS = 100  # per arm, before any decision
MIN_EVENTS = 10  # conversions per arm for a proportion metric
SEGMENT_MIN_UNITS = 50
SEGMENT_MIN_EVENTS = 20
FDR = 0.05


@dataclass
class Experiment:
    """One test: per arm, per metric, sufficient statistics."""

    name: str
    arms: dict[str, dict[str, ArmStats]]
    control: str
    weights: dict[str, float] | None = None
    segments: dict[str, dict[str, dict[str, ArmStats]]] = field(default_factory=dict)


Dispersion = float | Mapping[str, float]
"""One dispersion for every metric, or one per metric (a metric missing from it gets 1)."""


def _enough(m: ArmStats) -> bool:
    return m.n >= MIN_UNITS and (not m.binary or m.total >= MIN_EVENTS)


def of_metric(dispersion: Dispersion, metric: str) -> float:
    """The dispersion that applies to `metric`."""
    if isinstance(dispersion, Mapping):
        return float(dispersion.get(metric, 1.0))
    return float(dispersion)


def analyze_tests(tests: Sequence[Experiment], dispersion: Dispersion = 1.0) -> list[dict[str, Any]]:
    """`analyze_test` for many tests, their traffic allocations drawn together."""
    allocations = thompson_many(
        [{a: t.arms[a][next(iter(t.arms[a]))] for a in t.arms} for t in tests], draws=2000)
    return [analyze_test(t, dispersion, a) for t, a in zip(tests, allocations, strict=True)]


def analyze_test(test: Experiment, dispersion: Dispersion = 1.0,
                 allocation: dict[str, float] | None = None) -> dict[str, Any]:
    """The decision on a test: healthy split, enough data, a winner that both the Bayesian
    chance to win (>= 95%) and the any-time-valid interval (Bonferroni over arms) support.

    Args:
        test: the test.
        dispersion: the variance inflation of over-dispersed data, per metric or for all.
        allocation: the Thompson traffic weights on the primary metric, when already drawn.
    """
    arms = list(test.arms)
    counts = [next(iter(test.arms[a].values())).n for a in arms]
    # An expected split that does not name every arm with a share says nothing: equal split.
    weights = [float(test.weights[a]) for a in arms] if test.weights and all(
        float(test.weights.get(a) or 0) > 0 for a in arms) else None
    srm = srm_p(counts, weights)
    metrics = list(next(iter(test.arms.values())))
    alpha = 0.05 / max(len(arms) - 1, 1)
    phis = {m: of_metric(dispersion, m) for m in metrics}
    out: dict[str, Any] = {"test": test.name, "control": test.control, "srm_p": srm,
                           "dispersion": round(phis[metrics[0]], 4),
                           "dispersions": {m: round(v, 4) for m, v in phis.items()},
                           "metrics": {}}
    primary_calls: dict[str, int] = {}
    for metric in metrics:
        control = test.arms[test.control][metric]
        table: dict[str, Any] = {}
        for arm in arms:
            m = test.arms[arm][metric]
            row: dict[str, Any] = {"n": m.n, "mean": m.mean, "lift": None, "ci": None,
                                   "chance_to_win": None, "expected_loss": None}
            if arm != test.control:
                c = compare(control, m, phis[metric], sequential_alpha=alpha)
                row.update(lift=c.lift, ci=list(c.ci) if c.ci else None,
                           chance_to_win=c.chance_to_win, expected_loss=c.expected_loss,
                           p_value=c.p_value, posterior_lift=c.posterior_mean,
                           sequential_ci=list(c.sequential_ci) if c.sequential_ci else None)
                if metric == metrics[0] and c.sequential_ci and c.chance_to_win is not None \
                        and _enough(m) and _enough(control):
                    if c.chance_to_win >= WIN_PROBABILITY and c.sequential_ci[0] > 0:
                        primary_calls[arm] = 1
                    elif c.chance_to_win <= 1 - WIN_PROBABILITY and c.sequential_ci[1] < 0:
                        primary_calls[arm] = -1
            table[arm] = row
        out["metrics"][metric] = table
    winner = None
    if srm is not None and srm < SRM_ALPHA:
        decision = "unhealthy"
    else:
        treatments = [a for a in arms if a != test.control]
        better = [a for a in treatments if primary_calls.get(a) == 1]
        if better:
            winner = max(better, key=lambda a: test.arms[a][metrics[0]].mean)
        elif treatments and all(primary_calls.get(a) == -1 for a in treatments):
            winner = test.control
        decision = "winner" if winner else "no_decision"
    segment_srm = _segment_srm(test, weights)
    if segment_srm:
        out["segment_srm"] = segment_srm
        columns = sorted({seg.split("=", 1)[0] for seg in segment_srm})
        out["post_stratified"] = {c: post_stratified(test, c) for c in columns}
    out.update(decision=decision, winner=winner, primary_metric=metrics[0],
               allocation=allocation if allocation is not None else thompson_many(
                   [{a: test.arms[a][metrics[0]] for a in arms}], draws=2000)[0])
    return out


def _segment_srm(test: Experiment, weights: list[float] | None) -> dict[str, float]:
    """One-column segments whose split between arms is off (p < 0.001)."""
    off = {}
    for seg, arms in test.segments.items():
        if "," in seg or len(arms) != len(test.arms):
            continue
        counts = [next(iter(arms[a].values())).n for a in test.arms]
        p = srm_p(counts, weights)
        if p is not None and p < SRM_ALPHA:
            off[seg] = p
    return off


def post_stratified(test: Experiment, column: str) -> dict[str, dict[str, Any]]:
    """Lifts re-weighted by the strata of `column` (each stratum at its share of all units):
    the defence against Simpson's paradox when allocation differs between strata."""
    strata = {seg: arms for seg, arms in test.segments.items()
              if "," not in seg and seg.split("=", 1)[0] == column
              and all(a in arms for a in test.arms)}
    total = sum(next(iter(arms[test.control].values())).n + sum(
        next(iter(arms[a].values())).n for a in test.arms if a != test.control)
        for arms in strata.values())
    out: dict[str, dict[str, Any]] = {}
    if not strata or total == 0:
        return out
    for metric in next(iter(test.arms.values())):
        means: dict[str, float] = {}
        variances: dict[str, float] = {}
        for arm in test.arms:
            m_sum = v_sum = 0.0
            for arms in strata.values():
                share = sum(arms[a][metric].n for a in test.arms) / total
                m = arms[arm][metric]
                if m.n == 0:
                    continue
                m_sum += share * m.mean
                v_sum += share * share * m.var / m.n
            means[arm], variances[arm] = m_sum, v_sum
        c = means[test.control]
        rows: dict[str, Any] = {}
        for arm in test.arms:
            if arm == test.control or c == 0:
                continue
            lift = (means[arm] - c) / abs(c)
            se = math.sqrt(variances[arm] / c ** 2 + variances[test.control] * means[arm] ** 2
                           / c ** 4)
            rows[arm] = {"mean": means[arm], "lift": lift,
                         "ci": [lift - 1.959964 * se, lift + 1.959964 * se]}
        out[metric] = rows
    return out


@dataclass
class _Cell:
    segment: str
    parts: tuple[str, ...]
    stats: tuple[ArmStats, ArmStats]
    metric: str
    best: str
    runner_up: str
    p_within: float
    p_interaction: float
    lift: float
    ci: tuple[float, float]
    shrunk: float
    rates: tuple[float, float]
    n: tuple[int, int]


def _diff(a: ArmStats, b: ArmStats) -> tuple[float, float]:
    return a.mean - b.mean, a.var / max(a.n, 1) + b.var / max(b.n, 1)


def _p_normal(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _rate(value: float) -> str:
    """A rate as people read it: a share as a percentage (21.7%), else three digits."""
    return f"{value:.1%}" if 0 <= value <= 1 else f"{value:.3g}"


def segment_findings(test: Experiment, observational: bool = False,
                     fdr: float = FDR, dispersion: Dispersion = 1.0) -> list[dict[str, Any]]:
    """Segment policies: in segment S, arm A beats the runner-up B, with enough data, the
    within-segment difference and the difference from the rest of the population (the
    interaction) both surviving Benjamini-Hochberg over every segment x metric cell examined.
    Observational data yields hypotheses, never policies."""
    cells: list[_Cell] = []
    for seg, arms in test.segments.items():
        for metric in next(iter(test.arms.values())):
            stats = {a: arms[a][metric] for a in test.arms if a in arms}
            if len(stats) < 2:
                continue
            ranked = sorted(stats, key=lambda a: stats[a].mean, reverse=True)
            best, runner = ranked[0], ranked[1]
            mb, mr = stats[best], stats[runner]
            if min(mb.n, mr.n) < SEGMENT_MIN_UNITS:
                continue
            if mb.binary and min(mb.total, mr.total) < SEGMENT_MIN_EVENTS:
                continue
            d_in, v_in = _diff(mb, mr)
            rest_b = _minus(test.arms[best][metric], mb)
            rest_r = _minus(test.arms[runner][metric], mr)
            d_out, v_out = _diff(rest_b, rest_r)
            phi = of_metric(dispersion, metric)
            v_in, v_out = v_in * phi, v_out * phi
            if v_in <= 0 or v_in + v_out <= 0:
                continue
            versus = compare(mr, mb, phi)
            cells.append(_Cell(
                seg, tuple(seg.split(",")), (mb, mr), metric, best, runner, _p_normal(d_in / math.sqrt(v_in)),
                _p_normal((d_in - d_out) / math.sqrt(v_in + v_out)),
                versus.lift or 0.0, versus.ci or (math.nan, math.nan),
                versus.posterior_mean or 0.0, (mb.mean, mr.mean), (mb.n, mr.n)))
    if not cells:
        return []
    from core.learning.stats import benjamini_hochberg  # scipy.stats: only segments need it

    q_within = benjamini_hochberg([c.p_within for c in cells])
    q_inter = benjamini_hochberg([c.p_interaction for c in cells])
    # A policy claims both things at once (A beats B here, and here differs from elsewhere):
    # an intersection-union test, so BH runs on the larger of the two p-values of each cell.
    q_claim = benjamini_hochberg([max(c.p_within, c.p_interaction) for c in cells])
    kept = {(c.segment, c.metric): (c, qw, qi)
            for c, qw, qi, qc in zip(cells, q_within, q_inter, q_claim, strict=True)
            if qc <= fdr}
    claim_q = {(c.segment, c.metric): qc for c, qc in zip(cells, q_claim, strict=True)}
    out: list[dict[str, Any]] = []
    for c, qw, qi in _prune(kept, test):
        kind = "hypothesis" if observational else "policy"
        out.append({
            "segment": c.segment, "metric": c.metric, "best_arm": c.best,
            "compared_to": c.runner_up, "kind": kind,
            "statement": (f"{c.segment}: {c.best} beats {c.runner_up} on {c.metric} "
                          f"({_rate(c.rates[0])} vs {_rate(c.rates[1])}, n={c.n[0]}/{c.n[1]}, lift "
                          f"{c.lift:+.0%}, 95% CI {c.ci[0]:+.0%} to {c.ci[1]:+.0%}, shrunk "
                          f"{c.shrunk:+.0%}; q={qw:.2g}, differs from the rest q={qi:.2g})"
                          + (" - observational: a hypothesis to test, not a policy"
                             if observational else "")),
            "lift": c.lift, "ci": list(c.ci), "shrunk_lift": c.shrunk, "q_value": qw,
            "interaction_q": qi, "n": list(c.n), "p_within": c.p_within,
            "p_interaction": c.p_interaction,
            # the claim (beats here, and differs from the rest) is what BH kept it on
            "claim_p": max(c.p_within, c.p_interaction), "claim_q": claim_q[(c.segment, c.metric)],
        })
    out.sort(key=lambda f: float(f["q_value"]))
    return out


def _same_population(a: _Cell, b: _Cell) -> bool:
    return (a.metric, a.best, a.runner_up) == (b.metric, b.best, b.runner_up) and \
        (a.stats[0].n, a.stats[1].n, a.stats[0].total, a.stats[1].total) == \
        (b.stats[0].n, b.stats[1].n, b.stats[0].total, b.stats[1].total)


def _prune(kept: dict[tuple[str, str], tuple[_Cell, float, float]],
           test: Experiment) -> list[tuple[_Cell, float, float]]:
    """Drop what a simpler finding already says.

    A two-column cell is dropped when a kept one-column parent with the same arms explains it
    (its effect does not differ from the rest of that parent, p >= 0.05), unless the cell is
    the very population of a one-column segment (then it is the clearer name for it, and that
    one-column twin is dropped instead).
    """
    cells = [v[0] for v in kept.values()]
    twins = {c.segment for c in cells if len(c.parts) == 1
             and any(len(o.parts) == 2 and _same_population(c, o) for o in cells)}
    result = []
    for cell, qw, qi in kept.values():
        if cell.segment in twins:
            continue
        if len(cell.parts) == 2:
            restates = any(len(o.parts) == 1 and _same_population(cell, o) for o in cells)
            parents = [kept.get((p, cell.metric)) for p in cell.parts]
            explained = False
            for parent in parents:
                if parent is None or restates:
                    continue
                pc = parent[0]
                if (pc.best, pc.runner_up) != (cell.best, cell.runner_up):
                    continue
                rest_b, rest_r = _minus(pc.stats[0], cell.stats[0]), _minus(pc.stats[1], cell.stats[1])
                if min(rest_b.n, rest_r.n) < 2:
                    explained = True
                    continue
                d_in, v_in = _diff(*cell.stats)
                d_out, v_out = _diff(rest_b, rest_r)
                if _p_normal((d_in - d_out) / math.sqrt(v_in + v_out)) >= 0.05:
                    explained = True
            if explained:
                continue
        result.append((cell, qw, qi))
    del test
    return result


def _minus(total: ArmStats, part: ArmStats) -> ArmStats:
    if isinstance(total, RatioMoments) and isinstance(part, RatioMoments):
        return RatioMoments(total.n - part.n, total.num - part.num, total.den - part.den,
                            total.num2 - part.num2, total.den2 - part.den2,
                            total.cross - part.cross, total.binary)
    assert isinstance(total, Moments) and isinstance(part, Moments)
    return Moments(total.n - part.n, total.total - part.total, total.squares - part.squares,
                   total.binary)
