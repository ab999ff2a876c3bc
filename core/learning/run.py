"""One learning run: score the ledger, fit, find, propose, forecast, and queue the write-back."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import numpy as np
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from core import insights, links, outbox, policy, runs, secrets
from core import measures as registry
from core.contract import (
    COMMENT,
    FIELDS,
    INSIGHTS,
    LINK,
    NOTE,
    PROPERTY,
    InsightsPayload,
    LinkPayload,
    NotePayload,
    PayloadError,
    PropertyPayload,
    TargetSpec,
    WriteTarget,
    resolve_targets,
    surfaces_of,
)
from core.experiments.learn import learn_experiments
from core.learning import dataset, ledger, replanning
from core.learning.findings import CI_LEVEL, SegmentStat, describe, examine
from core.learning.model import MODEL_VERSION, SegmentQuantileModel
from core.learning.rates import Outcome, RateModel
from core.learning.stats import benjamini_hochberg
from core.lessons.evaluate import judge_all
from core.lessons.status import LessonIndex, own_writes
from core.model import (
    Connection,
    Finding,
    Item,
    LearningRun,
    Proposal,
    Rule,
    WriteIntent,
    utcnow,
)
from core.process import predicate
from core.process import store as process_store
from core.process.evaluate import evaluate_all
from core.settings import public_url
from core.store import unit_of_work

MIN_TRAIN = 30
ALPHA = 0.05
MAX_PROPOSALS = 10
MAX_FINDINGS = 200  # stored per run, most impactful first; all are counted
SHRINK_K = 10.0
RECENT_DAYS = 30
T = TypeVar("T")


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
    process_experiments: dict[str, Any] = field(default_factory=dict)
    lessons: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    forecasts_issued: int = 0
    forecasts_scored: int = 0
    writes_queued: int = 0
    models: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    """Items, segments and models a step could not handle, with the reason; the run went on."""
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return dict(self.__dict__)

    def leave_out(self, what: str, exc: BaseException) -> None:
        """Record that `what` was left out of the run because of `exc`."""
        self.left_out.append(f"{what}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """An exception in one short line (a database error without its SQL and parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(orig or exc).__name__}: {first[:300]}"


def _quantile_params(values: np.ndarray[Any, Any], pooled: np.ndarray[Any, Any]) -> dict[str, float]:
    """Multipliers P50/P80/P90 of a segment, shrunk toward the pooled distribution."""
    n = len(values)
    out = {}
    for name, q in (("p50", 0.5), ("p80", 0.8), ("p90", 0.9)):
        seg, allq = float(np.quantile(values, q)), float(np.quantile(pooled, q))
        out[name] = round(math.exp((n * seg + SHRINK_K * allq) / (n + SHRINK_K)), 3)
    return out


def _fit(obs: list[dataset.Observation], measure: str, report: RunReport
         ) -> SegmentQuantileModel | RateModel | None:
    """Fit the model of one `family/measure` key: quantiles of a ratio or of days, or a
    shrunk rate of a binary outcome; None (with a note) below MIN_TRAIN items."""
    if len(obs) < MIN_TRAIN:
        report.notes.append(
            f"{measure}: {len(obs)} finished items with a plan; at least {MIN_TRAIN} are needed "
            "before it is modelled and forecasts are issued"
        )
        return None
    fam, name = dataset.split(measure)
    spec = registry.lookup(fam, name)
    items = len({o.item_id for o in obs})
    if spec.view == registry.BINARY:
        rates = RateModel.fit([Outcome(o.value >= 0.5, o.segments) for o in obs])
        report.models[measure] = {"kind": fam, "measure": name, "items": items,
                                  **rates.describe()}
        return rates
    model = SegmentQuantileModel.fit([o.sample(measure) for o in obs])
    described = model.describe()
    report.models[measure] = {
        "kind": fam, "measure": name, "items": items,
        "version": model.version, "n_train": model.n_train, "penalty": model.penalty,
        "validation": model.validation,
        "dimensions": {d: len(v) for d, v in model.effects().items()},
        "chosen": {level: v["uses"] for level, v in described["levels"].items()},
        "candidates": {level: v["candidates"] for level, v in described["levels"].items()},
        "n_fitted": model.n_fitted, "half_life": described["half_life"],
        "ties": described["ties"], "why": described["summary"],
    }
    return model


def _examined(key: str) -> bool:
    """Whether segment findings are looked for on a measure (not on 0/1 outcomes: those are
    the experiments' and the rate models' business)."""
    fam, name = dataset.split(key)
    return registry.lookup(fam, name).view != registry.BINARY


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
    out = np.where((f0 > 0)[:, None], out, values)
    if values.shape[1] < 2:
        return out
    # Past the last predicted quantile the curve says nothing more: an exponential tail fitted
    # to its last two levels (memoryless: the wait still ahead does not shrink with the wait
    # so far) counts from `floor`, so an item long overdue is forecast from today onwards,
    # never "80% chance to finish by today".
    scale = np.maximum(tail[:, 0] / math.log((1 - levels[-2]) / (1 - levels[-1])), MIN_TAIL_DAYS)
    ahead = floors[:, None] + np.outer(scale, -np.log1p(-np.asarray(levels)))
    past = floors >= values[:, -1]
    return np.where(past[:, None], ahead, out)


MIN_TAIL_DAYS = 1.0
"""The scale of the tail beyond an overdue item's last predicted quantile is at least a day."""


def _recal_factor(segments: Mapping[str, Any], recal: Mapping[str, Mapping[str, float]]) -> float:
    """The ledger's correction for an item: that of its best-evidenced failing segment."""
    best: Mapping[str, float] | None = None
    for k, v in segments.items():
        entry = recal.get(f"{k}={v}")
        if entry is not None and (best is None or entry["n"] > best["n"]):
            best = entry
    return float(best["factor"]) if best else 1.0


def _forecast_open(s: Session, run: LearningRun, measure: registry.Measure,
                   model: SegmentQuantileModel | RateModel, items: list[Item],
                   report: RunReport, as_of: dt.datetime,
                   recal: Mapping[str, Mapping[str, float]] | None = None,
                   texts: dict[int, str] | None = None) -> dict[int, SimpleNamespace]:
    """Issue forecasts for open items of the model's kind family (skipping repeats); returns
    every item's current one, keyed by item id.

    Effort P80 and above are multiplied by the ledger's recalibration factor of the item's
    segment when that segment's issued P80s kept failing. A rate model issues probabilities.
    `texts` keeps each item's segments as the ledger stores them, for the next measure.
    """
    pairs = []
    for item in items:
        smp = dataset.open_sample(item, measure)
        if smp is not None:
            pairs.append((item, smp))
    if not pairs:
        return {}
    forecast_measure = measure.forecast or measure.name
    if isinstance(model, RateModel):
        predicted = {item.id: model.predict(smp.segments) for item, smp in pairs}
        issued = _issue(s, run, forecast_measure, model.version, pairs,
                        [{"probability": predicted[i.id][0]} for i, _ in pairs],
                        [None] * len(pairs), report, as_of, texts=texts)
        for item_id, ns in issued.items():  # what the write-back shows beside the probability
            _, ns.n, ns.low, ns.high = predicted[item_id]
        return issued
    preds = model.predict([smp for _, smp in pairs])
    levels = sorted(preds)
    grid = np.column_stack([preds[q] for q in levels])
    if measure.view == registry.LOG_RATIO:
        # The plan's size, as `open_sample` read it (`measure.size` of the item's plan).
        planned = np.array([smp.size for _, smp in pairs], dtype=np.float64)
        values = planned[:, None] * np.exp(grid)
        if recal:
            upper = np.asarray([q >= 0.8 for q in levels])
            for j, (item, _) in enumerate(pairs):
                fix = _recal_factor(item.segments, recal)
                if fix != 1.0:
                    above = values[j, upper] >= planned[j]
                    values[j, upper] *= fix
                    # A ledger that counted ties as covered must not push a quantile that
                    # was at or above the plan below it.
                    values[j, upper] = np.where(above, np.maximum(values[j, upper], planned[j]),
                                                values[j, upper])
                    values[j] = np.maximum.accumulate(values[j])
    else:
        planned = np.array([ledger.to_days(i.planned_due) for i, _ in pairs  # type: ignore[arg-type]
                            ], dtype=np.float64)
        floors = ledger.to_days(as_of) - planned
        values = planned[:, None] + conditional_many(levels, grid, floors)
    names = [f"p{round(q * 100)}" for q in levels]
    forecasts = [dict(zip(names, row, strict=True)) for row in values.tolist()]
    with np.errstate(invalid="ignore"):
        in_range = (np.isfinite(values) & (np.abs(values) < ledger.MAX_VALUE)).all(axis=1)
    return _issue(s, run, forecast_measure, model.version, pairs, forecasts,
                  planned.tolist(), report, as_of, cast(list[bool], in_range.tolist()), texts)


def _issue(s: Session, run: LearningRun, measure: str, version: str,
           pairs: list[tuple[Item, Any]], forecasts: list[dict[str, float]],
           planned: list[float | None], report: RunReport,
           as_of: dt.datetime | None = None, in_range: list[bool] | None = None,
           texts: dict[int, str] | None = None) -> dict[int, SimpleNamespace]:
    """Write the forecasts that do not repeat the item's previous one into the ledger, stamped
    with the time they are made as of (a run as of an earlier date is not stamped now).

    `in_range` says per forecast whether all its values are finite and below MAX_VALUE
    (default: checked here); `texts` caches the items' segments as stored, by item id."""
    previous = ledger.latest(s, [i.id for i, _ in pairs], measure)
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    now = utcnow() if as_of is None else min(utcnow(), as_of)
    rows: list[dict[str, Any]] = []
    current: dict[int, SimpleNamespace] = {}
    if in_range is None:
        in_range = [all(math.isfinite(v) and abs(v) < ledger.MAX_VALUE for v in f.values())
                    for f in forecasts]
    texts = {} if texts is None else texts
    for (item, _), forecast, plan, ok in zip(pairs, forecasts, planned, in_range, strict=True):
        if not ok:
            report.left_out.append(f"item {item.external_id}: its {measure} forecast is out of "
                                   "range (a plan far from every other); no forecast issued")
            continue
        current[item.id] = SimpleNamespace(model_version=version, actual=None, **forecast)
        if ledger.repeats(previous.get(item.id), forecast, version):
            continue
        seg = texts.get(item.id)
        if seg is None:
            seg = texts[item.id] = ",".join(f"{k}={v}" for k, v in sorted(item.segments.items()))
        rows.append({"item_id": item.id, "run_id": run.id, "measure": measure,
                     "model_version": version, "segment": seg[:300], "planned": plan,
                     "issued_at": now, "p50": None, "p80": None, "p90": None, "p95": None,
                     "probability": None, **forecast})
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
    """Estimation rules from the task family's effort: one global, one per kept finding."""
    if not obs:
        return
    pooled = np.log([o.value for o in obs])
    if len(obs) >= MIN_TRAIN:
        params = {k: round(math.exp(float(np.quantile(pooled, q))), 3)
                  for k, q in (("p50", 0.5), ("p80", 0.8), ("p90", 0.9))}
        params["n"] = len(obs)
        hyp = (f"Items take {params['p50']:.1f}x their estimate (P80 {params['p80']:.1f}x, "
               f"n={len(obs)})")
        p = _isolated(s, report, "the global proposal", lambda: policy.propose(
            s, key=policy.GLOBAL_KEY, selector={}, params=params, hypothesis=hyp,
            evidence={"n": len(obs)}, title=f"Plan for {params['p80']:.1f}x the estimate to be "
            "80% safe", run_id=run.id))
        if p is not None:
            report.proposals.append({"id": p.id, "title": p.title})
    by_id = {o.item_id: i for i, o in enumerate(obs)}
    for st, finding in found[:MAX_PROPOSALS]:
        p = _isolated(s, report, f"the proposal for segment {st.key}",
                      partial(_propose_segment, s, run, st, finding, pooled, by_id))
        if p is not None:
            report.proposals.append({"id": p.id, "title": p.title})


def _propose_segment(s: Session, run: LearningRun, st: SegmentStat, finding: Finding,
                     pooled: np.ndarray[Any, Any], by_id: Mapping[int, int]) -> Proposal | None:
    """The estimation rule proposed for one kept finding's segment."""
    idx = [by_id[i] for i in st.item_ids if i in by_id]
    params = _quantile_params(pooled[idx], pooled)
    params["n"] = st.n
    hyp = (f"{st.phrase()} take {params['p50']:.1f}x their estimate (P80 "
           f"{params['p80']:.1f}x; n={st.n}, median {st.effect:.1f}x with 90% confidence "
           f"interval {st.ci_low:.1f}-{st.ci_high:.1f}x)")
    return policy.propose(s, key="effort:" + st.key, selector=st.segment, params=params,
                          hypothesis=hyp, evidence=st.evidence(), title=f"{st.phrase()}: plan "
                          f"for {params['p80']:.1f}x the estimate", run_id=run.id,
                          finding_id=finding.id)


def _isolated(s: Session, report: RunReport, what: str, step: Callable[[], T]) -> T | None:
    """`step()` in a savepoint: a failure is rolled back, left out with its reason, and the
    run goes on (one bad segment never stops learning)."""
    try:
        with s.begin_nested():
            return step()
    except Exception as exc:
        report.leave_out(what, exc)
        return None


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


@dataclass(frozen=True)
class _Plan:
    """What one connector kind is sent: its FIELDS values, other surfaces, note types."""

    fields: tuple[str, ...]
    surfaces: frozenset[str]
    note_kinds: frozenset[str]

    def per_item(self) -> bool:
        """Whether anything is written onto items (not only an insights page)."""
        return bool(self.fields) or bool(self.surfaces & {COMMENT, PROPERTY, LINK, NOTE})

    @classmethod
    def of(cls, spec: Iterable[WriteTarget | str]) -> _Plan:
        targets = resolve_targets(spec)
        return cls(tuple(t.name for t in targets if t.surface == FIELDS), surfaces_of(targets),
                   frozenset(t.type for t in targets if t.surface == NOTE))


def _last_notes(s: Session, item_ids: list[int]) -> dict[int, NotePayload]:
    """The note payload last queued per item (what the next note is compared with)."""
    out: dict[int, NotePayload] = {}
    for start in range(0, len(item_ids), 1000):
        for item_id, payload in s.execute(
            select(WriteIntent.item_id, WriteIntent.payload)
            .where(WriteIntent.surface == NOTE, WriteIntent.item_id.in_(item_ids[start:start + 1000]))
        ):
            with contextlib.suppress(PayloadError):
                out[item_id] = NotePayload.from_json(payload)
    return out


def queue_writeback(s: Session, targets: TargetSpec,
                    items: list[Item] | None = None, findings: list[Finding] | None = None,
                    as_of: dt.datetime | None = None,
                    forecasts: Mapping[str, Mapping[int, ledger.ForecastLike]] | None = None,
                    left_out: list[str] | None = None,
                    variants: insights.VariantIndex | None = None) -> int:
    """Queue the write-back of `items` (default: `writeback_items`) with `forecasts` per
    measure (default: the ledger's), filling only the targets each connector kind declares.

    Fields go out quietly on every run; a comment only past the threshold; a note (or task)
    only when an item's status or risk band changed since the last one.

    Args:
        s: the store session.
        targets: the write targets per connector kind (`connectors.runtime.targets()`).
        items: the items to write back.
        findings: the findings matched to items (default: the newest run's).
        as_of: the time that decides which finished items are recent.
        forecasts: the current forecasts per measure and item id.
        left_out: collects each item whose write-back could not be built, with the reason
            (the others are queued all the same).
        variants: the recommended variants per segment (default: the active playbook rules
            and the newest run's randomised test findings).

    Returns:
        How many intents must now be written.
    """
    conns = list(s.scalars(select(Connection)))
    kinds = {c.id: c.kind for c in conns}
    plans = {kind: _Plan.of(spec) for kind, spec in targets.items()}
    if items is None:
        items = writeback_items(s, as_of)
    items = [i for i in items if kinds[i.connection_id] in plans
             and plans[kinds[i.connection_id]].per_item()]
    newest = current_findings(s) if findings is None or variants is None else []
    index = insights.FindingIndex(newest if findings is None else findings, "effort")
    rules = policy.active_rules(s)
    if variants is None:
        variants = insights.VariantIndex(rules, newest)
    if forecasts is None:
        open_ids = [i.id for i in items if i.status == "open"]
        forecasts = {m: ledger.latest(s, open_ids, m) for m in ("effort", "finish", "win")}
    effort, finish = forecasts.get("effort", {}), forecasts.get("finish", {})
    win = forecasts.get("win", {})
    notes = _last_notes(s, [i.id for i in items
                            if NOTE in plans[kinds[i.connection_id]].surfaces])
    treating = process_store.treating(s)
    # The variant for an item's segment: its own segments completed through its links (a
    # deal's contact's seniority, its company's industry), read only when one is known.
    wanting = [i for i in items if "recommended_variant" in plans[kinds[i.connection_id]]
               .fields] if variants else []
    segments = links.inherited_segments(s, [i.id for i in wanting],
                                        known={i.id: i.segments for i in wanting}) \
        if wanting else {}
    lessons = LessonIndex.load(s)
    kind_maps = {c.id: registry.kind_map(c.scope) for c in conns}
    writes: list[Write] = []
    for item in items:
        try:
            seg = segments.get(item.id)
            rec = variants.match(seg) if seg is not None else None
            writes += _writes_of(item, plans[kinds[item.connection_id]], effort, finish,
                                 rules, index, notes, win.get(item.id), rec,
                                 lessons.for_item(item, kind_maps[item.connection_id]), treating)
        except Exception as exc:
            if left_out is None:
                raise
            left_out.append(f"item {item.external_id}: its write-back could not be built "
                            f"({_reason(exc)})")
    return outbox.enqueue_many(s, writes)


Write = tuple[int, str, str, dict[str, Any], int | None]


def _writes_of(item: Item, plan: _Plan, effort: Mapping[int, ledger.ForecastLike],
               finish: Mapping[int, ledger.ForecastLike], rules: Mapping[str, Rule],
               index: insights.FindingIndex, notes: Mapping[int, NotePayload],
               win: ledger.ForecastLike | None,
               variant: insights.Recommendation | None,
               lessons: list[str],
               treating: Sequence[tuple[Mapping[str, list[str]], str]]) -> list[Write]:
    """What is written onto one item: its fields, comment, property (with the declared
    process experiments that treat it), link and note."""
    writes: list[Write] = []
    ins = insights.for_item(item, effort.get(item.id), finish.get(item.id), rules, index,
                            win, variant, lessons)
    if not ins.fields.learned():
        return writes  # nothing learned about this item: write nothing
    where = (item.connection_id, item.external_id)
    if plan.fields:
        writes.append((*where, FIELDS, ins.fields.json_of(plan.fields), item.id))
    if ins.comment and COMMENT in plan.surfaces:
        writes.append((*where, COMMENT, ins.comment.to_json(), item.id))
    if PROPERTY in plan.surfaces:  # the same learning, structured, for scripts and JQL
        under = tuple(label for pred, label in treating
                      if predicate.matches(pred, item.segments or {}))
        prop = PropertyPayload(**dict(ins.fields), item_id=item.id)
        if under:  # set only when there is one, so other items' JSON stays as it was
            prop = prop.model_copy(update={"experiments": under})
        writes.append((*where, PROPERTY, prop.to_json(), item.id))
    if LINK in plan.surfaces:
        link = LinkPayload(url=f"{public_url()}/items/{item.id}",
                           title="learnloop: forecast and evidence")
        writes.append((*where, LINK, link.to_json(), item.id))
    if plan.note_kinds:
        note = insights.note_for(item, ins, notes.get(item.id), plan.note_kinds)
        if note is not None:
            writes.append((*where, NOTE, note.to_json(), item.id))
    return writes


MAX_INSIGHTS = 50


def queue_insights(s: Session, targets: TargetSpec, findings: list[Finding],
                   as_of: dt.datetime) -> int:
    """One insights page per connection whose tool declares one: the top findings, with evidence."""
    rows = tuple((f.statement, f.n, round(f.effect, 3), round(f.interval_low, 3),
                  round(f.interval_high, 3), round(f.q_value, 4))
                 for f in sorted(findings, key=lambda f: -f.impact)[:MAX_INSIGHTS])
    payload = InsightsPayload(as_of=as_of, rows=rows,
                              columns=("finding", "n", "effect", "80% low", "80% high", "q"))
    kinds = {kind for kind, spec in targets.items()
             if INSIGHTS in surfaces_of(resolve_targets(spec))}
    writes: list[tuple[int, str, str, dict[str, Any], int | None]] = [
        (c.id, "learnloop insights", INSIGHTS, payload.to_json(), None)
        for c in s.scalars(select(Connection)) if c.kind in kinds
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


def run_learning(engine: Engine, capabilities: TargetSpec | None = None,
                 progress: Callable[[str], None] | None = None,
                 as_of: dt.datetime | None = None) -> RunReport:
    """Run one learning cycle over the whole store.

    Args:
        engine: the store.
        capabilities: write targets per connector kind (a bare surface name stands for all
            its standard targets); writes are queued only for these.
        progress: called with the name of each step as it starts (the last is "commit").
        as_of: the time forecasts are made at (default: now); open items already past their
            due date get finish forecasts conditional on not being done by then.

    Returns:
        The run's report (also stored on the LearningRun row).
    """
    capabilities = capabilities or {}
    with unit_of_work(engine) as s:
        runs.close_abandoned(s)
        run = LearningRun(model_version=MODEL_VERSION, inputs=runs.owner(),
                          policy_version=policy.current_policy(s).version)
        s.add(run)
        s.flush()
        run_id = run.id
    report = RunReport(run_id)
    progress = progress or (lambda _: None)
    try:
        with unit_of_work(engine) as s:
            run = s.get_one(LearningRun, run_id)
            _steps(s, run, report, capabilities, progress, as_of or utcnow())
            run.status, run.finished_at = "ok", utcnow()
            run.outputs, run.timings = report.as_dict(), report.timings
            run.inputs = {"finished": report.finished, "open": report.open_items}
            progress("commit")
    except BaseException as exc:
        status = "error" if isinstance(exc, Exception) else runs.INTERRUPTED  # Ctrl-C
        with unit_of_work(engine) as s:
            s.execute(update(LearningRun).where(LearningRun.id == run_id).values(
                status=status, finished_at=utcnow(),
                error=secrets.redact(f"{type(exc).__name__}: {exc}")))
        raise
    return report


def _steps(s: Session, run: LearningRun, report: RunReport,
           capabilities: TargetSpec, progress: Callable[[str], None],
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
    obs = dataset.finished(s)
    # Finished items per model: the whole history (what a weighted sample stands for).
    report.finished = {k: round(sum(o.weight for o in v)) for k, v in obs.items()}
    left = dataset.left_out(s)
    for k, counts in left.items():
        report.notes.append(f"{k}: {dataset.left_out_words(counts, report.finished.get(k, 0))}")
    open_items = dataset.open_items(s)
    open_by_family = dataset.open_by_family(s, open_items)
    report.open_items = len(open_items)
    close("load")
    timed("findings")
    stats = [st for k, o in obs.items() if _examined(k)
             for st in examine(o, dataset.finding_measure(k))]
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
    # One model per (kind family, measure); each forecasts the open items of its family only.
    current: dict[str, dict[int, SimpleNamespace]] = {}
    texts: dict[int, str] = {}  # open items' segments as the ledger stores them
    for key, o in obs.items():
        fam, name = dataset.split(key)
        spec = registry.lookup(fam, name)
        timed(f"fit {key}")
        model = _isolated(s, report, f"the model of {key}", partial(_fit, o, key, report))
        close(f"fit {key}")
        if model is not None and spec.forecast is not None:
            timed(f"forecast {key}")
            family = open_by_family.get(fam, [])
            got = _isolated(s, report, f"the forecasts of {key}", partial(
                _forecast_open, s, run, spec, model, family, report, as_of,
                recal if spec.name == "effort" else None, texts))
            current.setdefault(spec.forecast, {}).update(got or {})
            close(f"forecast {key}")
    for k, counts in left.items():
        report.models.setdefault(k, {})["left_out"] = counts
    timed("proposals")
    effort = dataset.key(registry.TASK, "effort")
    _propose(s, run, obs.get(effort, []),
             [(st, f) for st, f in pairs if st.measure == dataset.finding_measure(effort)], report)
    close("proposals")
    timed("experiments")
    report.experiments = _isolated(s, report, "the experiments",
                                   partial(learn_experiments, s, run.id)) or {}
    close("experiments")
    timed("process experiments")
    report.process_experiments = _isolated(s, report, "the process experiments", partial(
        evaluate_all, s, run.id, capabilities, now=as_of,
        isolate=partial(_isolated, s, report))) or {}
    report.proposals += [{"id": p.id, "title": p.title} for p in s.scalars(select(Proposal).where(
        Proposal.id.in_(report.process_experiments.get("proposals", []))))]
    judged = list(s.scalars(select(Finding).where(
        Finding.id.in_(report.process_experiments.get("findings", [])))))
    report.findings += [{"id": f.id, "statement": f.statement, "q": f.q_value} for f in judged]
    report.writes_queued += report.process_experiments.get("writes", 0)
    close("process experiments")
    timed("lessons")
    report.lessons = _isolated(s, report, "the lessons",
                               partial(judge_all, s, run.id, report.leave_out)) or {}
    close("lessons")
    timed("write-back")
    s.flush()
    tested = list(s.scalars(select(Finding).where(Finding.run_id == run.id,
                                                  Finding.kind == "experiment")))
    report.writes_queued += queue_writeback(
        s, capabilities, items=open_items + finished_recently(s, as_of), findings=rows,
        as_of=as_of, forecasts=current, left_out=report.left_out,
        variants=insights.VariantIndex(policy.active_rules(s), tested))
    report.writes_queued += queue_insights(s, capabilities, rows + judged, as_of)
    report.writes_queued += outbox.enqueue_many(s, own_writes(s, capabilities))
    close("write-back")
