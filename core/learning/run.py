"""One learning run: score the ledger, fit, find, propose, forecast, and queue the write-back."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from core import insights, outbox, policy
from core.contract import COMMENT, FIELDS, INSIGHTS, LINK, PROPERTY
from core.experiments.learn import learn_experiments
from core.learning import dataset, ledger, replanning
from core.learning.findings import CI_LEVEL, SegmentStat, describe, examine
from core.learning.model import MODEL_VERSION, SegmentQuantileModel
from core.learning.stats import benjamini_hochberg
from core.model import Connection, Finding, Item, LearningRun, utcnow
from core.settings import public_url
from core.store import unit_of_work

MIN_TRAIN = 30
ALPHA = 0.05
MAX_PROPOSALS = 10
MAX_FINDINGS = 200  # stored per run, most impactful first; all are counted
SHRINK_K = 10.0
RECENT_DAYS = 30


@dataclass
class RunReport:
    """What a learning run did, with the numbers a person needs to trust it."""

    run_id: int
    finished: dict[str, int] = field(default_factory=dict)
    open_items: int = 0
    examined: int = 0
    findings_total: int = 0
    recalibrated: dict[str, Any] = field(default_factory=dict)
    experiments: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    forecasts_issued: int = 0
    forecasts_scored: int = 0
    writes_queued: int = 0
    models: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return dict(self.__dict__)


def _quantile_params(values: np.ndarray[Any, Any], pooled: np.ndarray[Any, Any]) -> dict[str, float]:
    """Multipliers P50/P80/P90 of a segment, shrunk toward the pooled distribution."""
    n = len(values)
    out = {}
    for name, q in (("p50", 0.5), ("p80", 0.8), ("p90", 0.9)):
        seg, allq = float(np.quantile(values, q)), float(np.quantile(pooled, q))
        out[name] = round(math.exp((n * seg + SHRINK_K * allq) / (n + SHRINK_K)), 3)
    return out


def _fit(obs: list[dataset.Observation], measure: str, report: RunReport
         ) -> SegmentQuantileModel | None:
    if len(obs) < MIN_TRAIN:
        report.notes.append(
            f"{measure}: {len(obs)} finished items with a plan; at least {MIN_TRAIN} are needed "
            "before forecasts are issued"
        )
        return None
    model = SegmentQuantileModel.fit([o.sample(measure) for o in obs])
    report.models[measure] = {
        "version": model.version, "n_train": model.n_train, "penalty": model.penalty,
        "validation": model.validation,
        "dimensions": {d: len(v) for d, v in model.effects().items()},
    }
    return model


def conditional(levels: list[float], values: list[float], floor: float) -> list[float]:
    """Quantiles given that the value already exceeds `floor` (an open item past its due date).

    The predicted quantile curve is extended to levels 0 and 1, its CDF at `floor` is F0, and
    level p becomes level F0 + p (1 - F0) of the unconditional curve (never below `floor`).
    """
    out = conditional_many(levels, np.asarray([values], dtype=np.float64),
                           np.asarray([floor], dtype=np.float64))
    return [float(v) for v in out[0]]


def _interp_rows(x: np.ndarray[Any, Any], xs: np.ndarray[Any, Any],
                 ys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Row-wise linear interpolation of x[i] on the increasing points (xs[i], ys[i])."""
    out = np.where(x <= xs[:, 0], ys[:, 0], ys[:, -1])
    for j in range(xs.shape[1] - 1):
        x0, x1, y0, y1 = xs[:, j], xs[:, j + 1], ys[:, j], ys[:, j + 1]
        inside = (x > x0) & (x <= x1)
        width = np.where(x1 > x0, x1 - x0, 1.0)
        out = np.where(inside, y0 + (y1 - y0) * (x - x0) / width, out)
    return out


def conditional_many(levels: list[float], values: np.ndarray[Any, Any],
                     floors: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """`conditional` for many items at once: values is items x levels."""
    lo = values[:, :1] - (values[:, -1:] - values[:, :1])
    tail = values[:, -1:] - values[:, -2:-1] if values.shape[1] > 1 else np.ones_like(lo)
    xs = np.hstack([lo, values, values[:, -1:] + 2 * tail])
    ps = np.tile(np.asarray([0.0, *levels, 1.0]), (len(values), 1))
    f0 = np.clip(_interp_rows(floors, xs, ps), 0.0, 1.0)
    f0 = np.where(floors > lo[:, 0], f0, 0.0)
    out = np.empty_like(values)
    for j, p in enumerate(levels):
        out[:, j] = np.maximum(_interp_rows(f0 + p * (1 - f0), ps, xs), floors)
    return np.where((f0 > 0)[:, None], out, values)


def _recal_factor(segments: Mapping[str, Any], recal: Mapping[str, Mapping[str, float]]) -> float:
    """The ledger's correction for an item: that of its best-evidenced failing segment."""
    best: Mapping[str, float] | None = None
    for k, v in segments.items():
        entry = recal.get(f"{k}={v}")
        if entry is not None and (best is None or entry["n"] > best["n"]):
            best = entry
    return float(best["factor"]) if best else 1.0


def _forecast_open(s: Session, run: LearningRun, measure: str, model: SegmentQuantileModel,
                   items: list[Item], report: RunReport, as_of: dt.datetime,
                   recal: Mapping[str, Mapping[str, float]] | None = None,
                   ) -> dict[int, SimpleNamespace]:
    """Issue forecasts for open items (skipping repeats); returns every item's current one.

    Effort P80 and above are multiplied by the ledger's recalibration factor of the item's
    segment when that segment's issued P80s kept failing.
    """
    pairs = []
    for item in items:
        smp = dataset.open_sample(item, measure)
        if smp is not None:
            pairs.append((item, smp))
    if not pairs:
        return {}
    preds = model.predict([smp for _, smp in pairs])
    levels = sorted(preds)
    grid = np.column_stack([preds[q] for q in levels])
    if measure == "effort":
        planned = np.array([i.planned_estimate for i, _ in pairs], dtype=np.float64)
        values = planned[:, None] * np.exp(grid)
        if recal:
            upper = np.asarray([q >= 0.8 for q in levels])
            for j, (item, _) in enumerate(pairs):
                fix = _recal_factor(item.segments, recal)
                if fix != 1.0:
                    values[j, upper] *= fix
                    values[j] = np.maximum.accumulate(values[j])
    else:
        planned = np.array([ledger.to_days(i.planned_due) for i, _ in pairs  # type: ignore[arg-type]
                            ], dtype=np.float64)
        floors = ledger.to_days(as_of) - planned
        values = planned[:, None] + conditional_many(levels, grid, floors)
    names = [f"p{round(q * 100)}" for q in levels]
    previous = ledger.latest(s, [i.id for i, _ in pairs], measure)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    current: dict[int, SimpleNamespace] = {}
    for j, (item, _) in enumerate(pairs):
        forecast = dict(zip(names, (float(v) for v in values[j]), strict=True))
        current[item.id] = SimpleNamespace(model_version=model.version, actual=None, **forecast)
        if ledger.repeats(previous.get(item.id), forecast, model.version):
            continue
        seg = ",".join(f"{k}={v}" for k, v in sorted(item.segments.items()))
        rows.append({"item_id": item.id, "run_id": run.id, "measure": measure,
                     "model_version": model.version, "segment": seg[:300],
                     "planned": float(planned[j]), "issued_at": now, **forecast})
    report.forecasts_issued += ledger.issue_many(s, rows)
    return current


def _store_findings(s: Session, run: LearningRun, stats: list[SegmentStat]) -> list[Finding]:
    rows = []
    for st in sorted(stats, key=lambda x: -x.impact):
        row = Finding(
            run_id=run.id, kind="estimation", measure=st.measure, segment=st.segment,
            statement=st.statement(), n=st.n, effect=st.effect, interval_low=st.ci_low,
            interval_high=st.ci_high, interval_level=CI_LEVEL, spread_low=st.low,
            spread_high=st.high, p_value=st.p, q_value=st.q, impact=st.impact,
            item_ids={"ids": st.item_ids[:5000]}, evidence=st.evidence(),
        )
        s.add(row)
        rows.append(row)
    s.flush()
    return rows


def _propose(s: Session, run: LearningRun, obs: list[dataset.Observation],
             found: list[tuple[SegmentStat, Finding]], report: RunReport) -> None:
    pooled = np.log([o.value for o in obs])
    if len(obs) >= MIN_TRAIN:
        params = {k: round(math.exp(float(np.quantile(pooled, q))), 3)
                  for k, q in (("p50", 0.5), ("p80", 0.8), ("p90", 0.9))}
        params["n"] = len(obs)
        hyp = (f"Items take {params['p50']:.1f}x their estimate (P80 {params['p80']:.1f}x, "
               f"n={len(obs)})")
        p = policy.propose(s, key=policy.GLOBAL_KEY, selector={}, params=params, hypothesis=hyp,
                           evidence={"n": len(obs)}, title=f"Plan for {params['p80']:.1f}x the "
                           "estimate to be 80% safe", run_id=run.id)
        if p is not None:
            report.proposals.append({"id": p.id, "title": p.title})
    by_id = {o.item_id: i for i, o in enumerate(obs)}
    for st, finding in found[:MAX_PROPOSALS]:
        idx = [by_id[i] for i in st.item_ids if i in by_id]
        params = _quantile_params(pooled[idx], pooled)
        params["n"] = st.n
        key = "effort:" + st.key
        hyp = (f"{st.phrase()} take {params['p50']:.1f}x their estimate (P80 "
               f"{params['p80']:.1f}x; n={st.n}, median {st.effect:.1f}x with 90% confidence "
               f"interval {st.ci_low:.1f}-{st.ci_high:.1f}x)")
        p = policy.propose(s, key=key, selector=st.segment, params=params, hypothesis=hyp,
                           evidence=st.evidence(), title=f"{st.phrase()}: plan for "
                           f"{params['p80']:.1f}x the estimate", run_id=run.id,
                           finding_id=finding.id)
        if p is not None:
            report.proposals.append({"id": p.id, "title": p.title})


def finished_recently(s: Session, as_of: dt.datetime | None = None) -> list[Item]:
    """Live items that finished in the RECENT_DAYS before `as_of` (default: now)."""
    cutoff = (as_of or utcnow()) - dt.timedelta(days=RECENT_DAYS)
    return dataset.item_views(
        s, Item.deleted.is_(False), Item.status != "open",
        or_(Item.actual_end >= cutoff, Item.actual_end.is_(None) & (Item.updated_at >= cutoff)))


def writeback_items(s: Session, as_of: dt.datetime | None = None) -> list[Item]:
    """What the write-back covers: open items, and items finished in the last RECENT_DAYS.

    Items closed long ago are left alone: re-writing years of closed issues on every run
    would only mail their watchers.
    """
    return dataset.open_items(s) + finished_recently(s, as_of)


def queue_writeback(s: Session, capabilities: Mapping[str, frozenset[str]],
                    items: list[Item] | None = None, findings: list[Finding] | None = None,
                    as_of: dt.datetime | None = None,
                    forecasts: Mapping[str, Mapping[int, ledger.ForecastLike]] | None = None,
                    ) -> int:
    """Queue the field (and, past the threshold, comment) writes for `items`
    (default: `writeback_items`), with `forecasts` per measure (default: the ledger's)."""
    conns = {c.id: c for c in s.scalars(select(Connection))}
    if items is None:
        items = writeback_items(s, as_of)
    index = insights.FindingIndex(current_findings(s) if findings is None else findings, "effort")
    rules = policy.active_rules(s)
    if forecasts is None:
        open_ids = [i.id for i in items if i.status == "open"]
        forecasts = {m: ledger.latest(s, open_ids, m) for m in ("effort", "finish")}
    effort, finish = forecasts.get("effort", {}), forecasts.get("finish", {})
    writes: list[tuple[int, str, str, dict[str, Any], int | None]] = []
    for item in items:
        caps = capabilities.get(conns[item.connection_id].kind, frozenset())
        if FIELDS not in caps:
            continue
        ins = insights.for_item(item, effort.get(item.id), finish.get(item.id), rules, index)
        if all(v is None for k, v in ins.fields.items() if k != "unit"):
            continue  # nothing learned about this item: write nothing
        writes.append((item.connection_id, item.external_id, FIELDS, ins.fields, item.id))
        if ins.comment and COMMENT in caps:
            writes.append((item.connection_id, item.external_id, COMMENT,
                           {"text": ins.comment}, item.id))
        if PROPERTY in caps:  # the same learning, structured, for scripts and JQL
            writes.append((item.connection_id, item.external_id, PROPERTY,
                           {**ins.fields, "item_id": item.id}, item.id))
        if LINK in caps:
            writes.append((item.connection_id, item.external_id, LINK,
                           {"url": f"{public_url()}/items/{item.id}",
                            "title": "learnloop: forecast and evidence"}, item.id))
    return outbox.enqueue_many(s, writes)


MAX_INSIGHTS = 50


def queue_insights(s: Session, capabilities: Mapping[str, frozenset[str]],
                   findings: list[Finding], as_of: dt.datetime) -> int:
    """One insights page per connection whose tool has one: the top findings, with evidence."""
    rows = [[f.statement, f.n, round(f.effect, 3), round(f.interval_low, 3),
             round(f.interval_high, 3), round(f.q_value, 4)]
            for f in sorted(findings, key=lambda f: -f.impact)[:MAX_INSIGHTS]]
    payload = {"as_of": as_of.isoformat(), "rows": rows,
               "columns": ["finding", "n", "effect", "80% low", "80% high", "q"]}
    writes: list[tuple[int, str, str, dict[str, Any], int | None]] = [
        (c.id, "learnloop insights", INSIGHTS, payload, None)
        for c in s.scalars(select(Connection)) if INSIGHTS in capabilities.get(c.kind, frozenset())
    ]
    return outbox.enqueue_many(s, writes) if writes else 0


def current_findings(s: Session) -> list[Finding]:
    """The findings of the newest successful learning run."""
    run_id = s.scalar(select(LearningRun.id).where(LearningRun.status == "ok")
                      .order_by(LearningRun.id.desc()).limit(1))
    if run_id is None:
        return []
    return list(s.scalars(select(Finding).where(Finding.run_id == run_id)
                          .order_by(Finding.impact.desc())))


def run_learning(engine: Engine, capabilities: Mapping[str, frozenset[str]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 as_of: dt.datetime | None = None) -> RunReport:
    """Run one learning cycle over the whole store.

    Args:
        engine: the store.
        capabilities: write-back surfaces per connector kind; writes are queued only for these.
        progress: called with the name of each step as it starts.
        as_of: the time forecasts are made at (default: now); open items already past their
            due date get finish forecasts conditional on not being done by then.

    Returns:
        The run's report (also stored on the LearningRun row).
    """
    capabilities = capabilities or {}
    with unit_of_work(engine) as s:
        run = LearningRun(model_version=MODEL_VERSION,
                          policy_version=policy.current_policy(s).version)
        s.add(run)
        s.flush()
        run_id = run.id
    report = RunReport(run_id)
    try:
        with unit_of_work(engine) as s:
            run = s.get_one(LearningRun, run_id)
            _steps(s, run, report, capabilities, progress or (lambda _: None), as_of or utcnow())
            run.status, run.finished_at = "ok", utcnow()
            run.outputs, run.timings = report.as_dict(), report.timings
            run.inputs = {"finished": report.finished, "open": report.open_items}
    except Exception as exc:
        with unit_of_work(engine) as s:
            s.execute(update(LearningRun).where(LearningRun.id == run_id).values(
                status="error", finished_at=utcnow(), error=f"{type(exc).__name__}: {exc}"))
        raise
    return report


def _steps(s: Session, run: LearningRun, report: RunReport,
           capabilities: Mapping[str, frozenset[str]], progress: Callable[[str], None],
           as_of: dt.datetime) -> None:
    def timed(name: str) -> None:
        progress(name)
        report.timings[name] = time.perf_counter()

    def close(name: str) -> None:
        report.timings[name] = round(time.perf_counter() - report.timings[name], 3)

    timed("score ledger")
    report.forecasts_scored = ledger.score_pending(s)
    s.flush()
    recal = ledger.recalibration(s)
    report.recalibrated = recal
    close("score ledger")
    timed("load")
    obs = dataset.finished_all(s)
    report.finished = {m: len(v) for m, v in obs.items()}
    open_items = dataset.open_items(s)
    report.open_items = len(open_items)
    close("load")
    timed("findings")
    stats = [st for m, o in obs.items() for st in examine(o, m)]
    report.examined = len(stats)
    for st, q in zip(stats, benjamini_hochberg([st.p for st in stats]), strict=True):
        st.q = q
    kept = sorted((describe(st) for st in stats if st.q <= ALPHA), key=lambda x: -x.impact)
    report.findings_total = len(kept)
    kept = kept[:MAX_FINDINGS]
    rows = _store_findings(s, run, kept)
    pairs = list(zip(sorted(kept, key=lambda x: -x.impact), rows, strict=True))
    report.findings = [{"id": f.id, "statement": f.statement, "q": f.q_value} for f in rows]
    report.findings += replanning.store_findings(s, run.id)
    close("findings")
    current: dict[str, dict[int, SimpleNamespace]] = {}
    for measure, o in obs.items():
        timed(f"fit {measure}")
        model = _fit(o, measure, report)
        close(f"fit {measure}")
        if model is not None:
            timed(f"forecast {measure}")
            current[measure] = _forecast_open(s, run, measure, model, open_items, report, as_of,
                                              recal if measure == "effort" else None)
            close(f"forecast {measure}")
    timed("proposals")
    _propose(s, run, obs["effort"], [(st, f) for st, f in pairs if st.measure == "effort"], report)
    close("proposals")
    timed("experiments")
    report.experiments = learn_experiments(s, run.id)
    close("experiments")
    timed("write-back")
    s.flush()
    report.writes_queued = queue_writeback(
        s, capabilities, items=open_items + finished_recently(s, as_of), findings=rows,
        as_of=as_of, forecasts=current)
    report.writes_queued += queue_insights(s, capabilities, rows, as_of)
    close("write-back")
