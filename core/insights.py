"""What is written back onto an item: quiet field values, and a comment when it matters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.learning.ledger import ForecastLike, from_days
from core.model import Finding, Item, Rule
from core.policy import rule_for

COMMENT_FACTOR = 1.5  # a comment is posted only when the P80 is at least 1.5x the plan


@dataclass(frozen=True)
class ItemInsight:
    """The field values for one item and, when a threshold is crossed, a comment."""

    fields: dict[str, Any]
    comment: str | None


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

    def match(self, item: Item) -> Finding | None:
        """The highest-impact finding whose segment (one or two dimensions) holds the item."""
        if not self.best:
            return None
        pairs = [(k, str(v)) for k, v in item.segments.items()]
        found: Finding | None = None
        for i, a in enumerate(pairs):
            for key in (frozenset((a,)), *(frozenset((a, b)) for b in pairs[i + 1:])):
                f = self.best.get(key)
                if f is not None and (found is None or f.impact > found.impact):
                    found = f
        return found


def matching_finding(item: Item, findings: Sequence[Finding], measure: str) -> Finding | None:
    """The highest-impact finding of `measure` whose segment contains the item."""
    return FindingIndex(findings, measure).match(item)


def for_item(item: Item, effort: ForecastLike | None, finish: ForecastLike | None,
             rules: Mapping[str, Rule], findings: FindingIndex) -> ItemInsight:
    """Build the write-back for one item from its newest forecasts, the policy and findings."""
    unit = item.unit or "hours"
    rule = rule_for(rules, item.segments)
    fields: dict[str, Any] = {
        "unit": unit, "delta": None, "forecast_p50": None, "forecast_p80": None,
        "forecast_p90": None, "forecast_finish_p80": None,
        "effort_factor": _num(float(rule.params["p80"]), 2) if rule else None,
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
            parts.append(
                f"P80 for this item: {effort.p80:.1f} {unit} ({factor:.1f}x the estimate of "
                f"{item.planned_estimate:g})"
            )
            if effort.p95 and effort.p95 > 3 * effort.p50:
                parts.append(f"tail warning: 1 in 20 such items takes over {effort.p95:.0f} {unit}")
        if finish is not None:
            fields["forecast_finish_p80"] = from_days(finish.p80).date().isoformat()
            parts.append(f"80% chance to finish by {fields['forecast_finish_p80']}")
    if finding is not None:
        parts.append(finding.statement)
    if rule is not None and rule.hypothesis:
        parts.append(f"policy: {rule.hypothesis}")
    fields["insight"] = "; ".join(parts) if parts else None
    crossed = (
        item.status != "done" and effort is not None and item.planned_estimate
        and effort.p80 >= COMMENT_FACTOR * item.planned_estimate and finding is not None
    )
    if crossed:
        comment = "learnloop: " + "; ".join(parts)
    return ItemInsight(fields=fields, comment=comment)
