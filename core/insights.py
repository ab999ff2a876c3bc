"""What is written back onto an item: quiet field values, a comment when it matters, and a
note when its status or risk band changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.learning.ledger import ForecastLike, from_days, to_days
from core.model import Finding, Item, Rule
from core.payloads import CommentPayload, FieldsPayload, NotePayload, Risk
from core.policy import rule_for
from core.segments import within

COMMENT_FACTOR = 1.5  # a comment is posted only when the P80 is at least 1.5x the plan
RISK_BANDS: tuple[tuple[float, Risk], ...] = ((COMMENT_FACTOR, "high"), (1.2, "medium"))
"""P80 over the estimate at or above which an open item's risk is high, medium (else low)."""
LATE_DAYS_HIGH = 7.0  # a P80 finish this many days past the due date is high risk; past it, medium


@dataclass(frozen=True)
class ItemInsight:
    """The field values for one item and, when a threshold is crossed, a comment."""

    fields: FieldsPayload
    comment: CommentPayload | None
    summary: str = ""
    """What was learned about the item, in one line (the insight without the policy)."""


def _num(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


class FindingIndex:
    """The highest-impact finding per segment, looked up by an item's segments."""

    def __init__(self, findings: Sequence[Finding], measure: str) -> None:
        self.best: dict[frozenset[tuple[str, str]], Finding] = {}
        for f in findings:
            if f.measure != measure:
                continue
            key = frozenset((k, str(v)) for k, v in f.segment.items())
            if key not in self.best or f.impact > self.best[key].impact:
                self.best[key] = f
        # By dimension, the values some finding names (an item's other values match nothing),
        # and the findings of one and of two values, keyed by plain tuples (both orders).
        self._values: dict[str, set[str]] = {}
        self._one: dict[tuple[str, str], Finding] = {}
        self._two: dict[tuple[tuple[str, str], tuple[str, str]], Finding] = {}
        for key, f in self.best.items():
            for k, v in key:
                self._values.setdefault(k, set()).add(v)
            pairs = sorted(key)
            if len(pairs) == 1:
                self._one[pairs[0]] = f
            elif len(pairs) == 2:
                self._two[(pairs[0], pairs[1])] = self._two[(pairs[1], pairs[0])] = f
        self._matched: dict[tuple[tuple[str, str], ...], Finding | None] = {}

    def match(self, item: Item) -> Finding | None:
        """The highest-impact finding whose segment (one or two dimensions) holds the item."""
        if not self.best:
            return None
        # Only the item's values that some finding names can make up a matching segment; the
        # answer depends on those alone (in their order), so it is remembered per combination
        # of them (a learning run matches a hundred thousand items).
        hits = []
        for k, v in item.segments.items():
            values = self._values.get(k)
            if values is not None:
                text = v if v.__class__ is str else str(v)
                if text in values:
                    hits.append((k, text))
        pairs = tuple(hits)
        if pairs in self._matched:
            return self._matched[pairs]
        found: Finding | None = None
        for i, a in enumerate(pairs):
            f = self._one.get(a)
            if f is not None and (found is None or f.impact > found.impact):
                found = f
            for b in pairs[i + 1:]:
                f = self._two.get((a, b))
                if f is not None and (found is None or f.impact > found.impact):
                    found = f
        self._matched[pairs] = found
        return found


@dataclass(frozen=True)
class Recommendation:
    """The variant to send to a segment, with where it comes from and its evidence."""

    variant: str
    test: str
    segment: Mapping[str, str]
    why: str
    """The evidence in words (with its sample size and interval)."""
    policy: bool
    """True for an accepted playbook rule, False for a randomised test's finding."""


def _segment_words(segment: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(segment.items())) or "everyone"


class VariantIndex:
    """The recommended variant per segment: an accepted (active) playbook rule's, else the best
    arm of a randomised test's kept segment finding on replies (observational hypotheses are
    never recommended).

    An item gets the recommendation whose segment holds it: a policy before a finding, then the
    most specific segment, then the best evidenced (the finding's impact, the rule's n).
    """

    def __init__(self, rules: Mapping[str, Rule], findings: Sequence[Finding]) -> None:
        self.entries: list[tuple[tuple[int, int, float], Recommendation]] = []
        for rule in rules.values():
            if not rule.key.startswith("playbook:") or "variant" not in rule.params:
                continue
            test = str(rule.selector.get("test") or "")
            segment = {str(k): str(v) for k, v in rule.selector.items() if k != "test"}
            n = rule.params.get("n") or 0
            n_total = sum(n) if isinstance(n, list) else int(n)
            by = f", accepted by {rule.owner}" if rule.owner else ""
            why = (f"playbook for {_segment_words(segment)} in '{test}'{by}: "
                   f"{rule.hypothesis} (n={n_total})")
            self.entries.append(((1, len(segment), float(n_total)), Recommendation(
                str(rule.params["variant"]), test, segment, why, True)))
        for f in findings:
            ev = f.evidence or {}
            if f.kind != "experiment" or f.measure != "reply" or not ev.get("best_arm"):
                continue
            segment = {str(k): str(v) for k, v in (f.segment or {}).items()}
            self.entries.append(((0, len(segment), float(f.impact)), Recommendation(
                str(ev["best_arm"]), str(ev.get("test") or ""), segment,
                f"'{ev.get('test') or 'test'}', {f.statement}", False)))
        self.entries.sort(key=lambda e: e[0], reverse=True)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, segments: Mapping[str, Any]) -> Recommendation | None:
        """The recommendation for an item with `segments` (its own and its links'), if any."""
        for _, rec in self.entries:
            if within(rec.segment, segments):
                return rec
        return None


def win_words(win: ForecastLike) -> str | None:
    """An open deal's win probability in words, with its interval and n when known."""
    if win.probability is None:
        return None
    low, high, n = (getattr(win, k, None) for k in ("low", "high", "n"))
    if low is None or high is None or n is None:
        return None  # a figure shown to a person carries its n and interval
    return (f"win probability {win.probability:.0%} (80% interval {low:.0%}-{high:.0%}, "
            f"n={n})")


def matching_finding(item: Item, findings: Sequence[Finding], measure: str) -> Finding | None:
    """The highest-impact finding of `measure` whose segment contains the item."""
    return FindingIndex(findings, measure).match(item)


def policy_words(rule: Rule) -> str:
    """The policy rule an item falls under, with the values in force (edits included)."""
    who = " and ".join(f"{k} {v}" for k, v in sorted(rule.selector.items())) or "every item"
    by = f", accepted by {rule.owner}" if rule.owner else ""
    return (f"policy for {who}: plan for {float(rule.params['p80']):.2f}x the estimate "
            f"(P80{by})")


def risk_band(item: Item, effort: ForecastLike | None,
              finish: ForecastLike | None) -> Risk | None:
    """An open item's risk: its effort P80 against the estimate, and its P80 finish against
    the due date, whichever is worse; None when there is no forecast (or the item is closed)."""
    if item.status != "open":
        return None
    bands: list[Risk] = []
    if effort is not None and item.planned_estimate:
        ratio = effort.p80 / item.planned_estimate
        bands.append(next((b for limit, b in RISK_BANDS if ratio >= limit), "low"))
    if finish is not None and item.planned_due is not None:
        late = finish.p80 - to_days(item.planned_due)
        bands.append("high" if late >= LATE_DAYS_HIGH else "medium" if late > 0 else "low")
    order = ("low", "medium", "high")
    return max(bands, key=order.index) if bands else None


def for_item(item: Item, effort: ForecastLike | None, finish: ForecastLike | None,
             rules: Mapping[str, Rule], findings: FindingIndex,
             win: ForecastLike | None = None,
             variant: Recommendation | None = None,
             lessons: Sequence[str] = ()) -> ItemInsight:
    """Build the write-back for one item from its newest forecasts, the policy and findings.

    Args:
        item: the item.
        effort: its newest effort forecast (open items).
        finish: its newest finish (or close date) forecast.
        rules: the active policy rules.
        findings: the estimation findings, by segment.
        win: its newest win-probability forecast (open deals and opportunities).
        variant: the variant recommended for its segment (or its contact's or company's).
        lessons: the status lines of the lessons that concern it (`core.lessons.status`).
    """
    unit = item.unit or "hours"
    rule = rule_for(rules, item.segments)
    fields: dict[str, Any] = {
        "unit": unit, "delta": None, "forecast_p50": None, "forecast_p80": None,
        "forecast_p90": None, "forecast_finish_p80": None,
        # The factor is that of the P80 written beside it (P80 = factor x estimate); the
        # policy's own multiplier when the item has no effort forecast.
        "effort_factor": _num(float(rule.params["p80"]), 2) if rule else None,
        "risk": risk_band(item, effort, finish), "win_probability": None,
        "recommended_variant": None,
    }
    parts: list[str] = []
    finding = findings.match(item)
    comment = None
    if item.status == "done":
        if item.actual_effort is not None and item.planned_estimate:
            fields["delta"] = _num(item.actual_effort - item.planned_estimate, 2)
            parts.append(f"took {item.actual_effort / item.planned_estimate:.1f}x its estimate")
        elif item.actual_end is not None and item.planned_due is not None:
            fields["delta"] = _num((item.actual_end - item.planned_due).total_seconds() / 86400)
            parts.append(f"finished {fields['delta']:+} days against its due date")
    else:
        if effort is not None and item.planned_estimate:
            fields["forecast_p50"] = _num(effort.p50)
            fields["forecast_p80"] = _num(effort.p80)
            fields["forecast_p90"] = _num(effort.p90)
            factor = effort.p80 / item.planned_estimate
            fields["effort_factor"] = _num(factor, 2)
            parts.append(
                f"P80 for this item: {effort.p80:.1f} {unit} ({factor:.1f}x the estimate of "
                f"{item.planned_estimate:g})"
            )
            if effort.p95 and effort.p95 > 3 * effort.p50:
                parts.append(f"tail warning: 1 in 20 such items takes over {effort.p95:.0f} {unit}")
        if finish is not None:
            fields["forecast_finish_p80"] = from_days(finish.p80).date()
            parts.append(f"80% chance to finish by {fields['forecast_finish_p80'].isoformat()}")
        if win is not None and win.probability is not None:
            fields["win_probability"] = round(min(max(float(win.probability), 0.0), 1.0), 3)
            words = win_words(win)
            if words:
                parts.append(words)
    summary = "; ".join(parts)
    if variant is not None:
        fields["recommended_variant"] = variant.variant
        parts.append(f"send {variant.variant} ({variant.why})")
    if finding is not None:
        parts.append(finding.statement)
    if rule is not None and "p80" in rule.params:
        parts.append(policy_words(rule))
    parts += lessons
    fields["insight"] = "; ".join(parts) if parts else None
    crossed = (
        item.status != "done" and effort is not None and item.planned_estimate
        and effort.p80 >= COMMENT_FACTOR * item.planned_estimate and finding is not None
    )
    if crossed:
        comment = CommentPayload(text="learnloop: " + "; ".join(parts))
    return ItemInsight(fields=FieldsPayload(**fields), comment=comment, summary=summary)


def note_for(item: Item, insight: ItemInsight, last: NotePayload | None,
             kinds: frozenset[str]) -> NotePayload | None:
    """The note (or task) to write on the item now, if its status or risk band changed.

    A closed item gets a note when it closes (its status or outcome differs from the last
    note's); an open one when its risk band becomes high, and again when a band that was
    noted changes. Otherwise None: activity is written only when something changed.

    Args:
        item: the item.
        insight: what `for_item` built for it.
        last: the payload of the last note written on it, if any.
        kinds: the NOTE target types the connector declares ("note", "task").
    """
    status = "open" if item.status == "open" else (item.outcome or item.status)
    risk = insight.fields.risk
    if item.status != "open":
        if last is not None and last.reason == "status" and last.status == status:
            return None
        subject = f"learnloop: closed as {status}"
        body = f"{item.title or item.external_id} closed as {status}" + (
            f"; it {insight.summary}" if insight.summary else "")
        return _note("status", status, None, subject, body, kinds)
    if risk is None or (last is not None and last.status == "open" and last.risk == risk):
        return None
    if risk != "high" and last is None:
        return None
    subject = f"learnloop: risk is {risk}"
    body = f"{item.title or item.external_id}: risk is {risk}" + (
        f" ({insight.summary})" if insight.summary else "")
    return _note("risk", status, risk, subject, body, kinds)


def _note(reason: str, status: str, risk: Risk | None, subject: str, body: str,
          kinds: frozenset[str]) -> NotePayload | None:
    # A person should act on a high risk (a task, where the tool has them); the rest is a note.
    wanted = "task" if risk == "high" else "note"
    kind = wanted if wanted in kinds else next(iter(sorted(kinds)), None)
    if kind is None:
        return None
    return NotePayload.model_validate({"kind": kind, "reason": reason, "status": status,
                                       "risk": risk, "subject": subject, "body": body})
