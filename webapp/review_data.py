"""Proposals under review: their evidence, diff, the write-backs they caused, and decisions."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import checklists, policy
from core.errors import ConfigError
from core.model import Activity, Finding, Proposal, User


def detail(session: Session, proposal_id: int) -> dict[str, Any]:
    """A proposal with its finding, diff lines, editable parameters, write-backs and trail."""
    proposal = policy.get_proposal(session, proposal_id)
    policy.settle(session, proposal)
    finding = session.get(Finding, proposal.finding_id) if proposal.finding_id else None
    new = proposal.change.get("new", {}) or {}
    editable = {k: v for k, v in new.items() if isinstance(v, (int, float)) and
                not isinstance(v, bool)}
    trail = session.scalars(select(Activity).where(
        Activity.subject_type == "proposal", Activity.subject_id == str(proposal_id))
        .order_by(Activity.at)).all()
    writes = policy.writes_of(session, proposal)
    lists = checklists.of_proposal(session, proposal)
    accepted = next((a for a in reversed(trail) if a.action == "accepted the proposal"), None)
    edited = (accepted.detail or {}).get("edited", {}) if accepted is not None else {}
    waiting = proposal.status == "accepted" and any(
        w.status not in policy.SETTLED for w in writes)
    return {"proposal": proposal, "finding": finding, "diff": diff_lines(proposal.diff),
            "editable": editable, "writes": writes, "trail": trail, "checklists": lists,
            "story": story(proposal, finding), "evidence": evidence_rows(proposal.evidence),
            "accepted_values": {k: fmt(v) for k, v in new.items()
                                if k != "n" and proposal.status != "pending"},
            "edited": {k: (fmt(e.get("proposed")), fmt(e.get("accepted")))
                       for k, e in edited.items() if isinstance(e, dict)},
            "progress": progress(proposal, writes, lists), "waiting": waiting}


DASH = "\u2013"  # an en dash between the ends of a range


def fmt(value: Any) -> str:
    """A number for people: two decimals (two significant digits below 1), thousands
    separated; never a repr."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == 0:
            return "0"
        if abs(value) < 0.001:  # a p- or q-value: its size, not its digits, is what counts
            return "<0.001" if value > 0 else "-0.000"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:  # two decimals, trailing zeros dropped: 1.49, 2.68, 1.5
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        digits = 1 - math.floor(math.log10(abs(value)))  # two significant digits: 0.0031
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return f"{fmt(value[0])}{DASH}{fmt(value[1])}"
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{str(k).replace('_', ' ')} {fmt(v)}" for k, v in value.items())
    return str(value)


SHARES = ("share", "chance", "coverage", "rate", "p_within", "lift")
NAMES = {"n": "items (n)", "effect": "median (actual ÷ estimate)",
         "spread_80": "middle 80% of the items", "median_ci_90": "90% confidence interval of "
         "the median", "rest": "median of the other items", "p": "p-value", "q": "q-value "
         "(false-discovery adjusted)", "tie_share": "logged exactly the estimate",
         "ci": "confidence interval"}


def evidence_rows(evidence: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The evidence as (label, formatted value) rows: shares as percentages, intervals as
    ranges, p and q to two significant digits."""
    rows = []
    for key, value in (evidence or {}).items():
        label = NAMES.get(key, key.replace("_", " "))
        if any(word in key for word in SHARES) and isinstance(value, (int, float, list, tuple)) \
                and not isinstance(value, bool):
            vals = value if isinstance(value, (list, tuple)) else [value]
            if all(isinstance(v, (int, float)) and abs(v) <= 10 for v in vals):
                shown = DASH.join(f"{100 * float(v):.0f}%" for v in vals)
                rows.append((label, shown))
                continue
        rows.append((label, fmt(value)))
    return rows


def story(proposal: Proposal, finding: Finding | None) -> str | None:
    """One sentence a non-statistician reads: what the typical item took (median with its
    interval), what to plan for (P80), and how sure we are (n, q)."""
    new = proposal.change.get("new", {}) or {}
    p80, p50, n = new.get("p80"), new.get("p50"), new.get("n")
    if not isinstance(p80, (int, float)):
        return None
    who = "items"
    if finding is not None and finding.measure == "effort" and finding.segment:
        who = " and ".join(f"{k} {v}" for k, v in sorted(finding.segment.items())) + " items"
    if finding is not None and finding.measure == "effort":
        level = f"{finding.interval_level:.0%}"
        typical = (f"The typical one of the {who} took {fmt(finding.effect)}x its estimate "
                   f"({level} confidence interval {fmt(finding.interval_low)}{DASH}"
                   f"{fmt(finding.interval_high)}x)")
        q = fmt(finding.q_value)
        sure = f"n={finding.n:,} finished items, q{'' if q.startswith('<') else '='}{q}"
    elif isinstance(p50, (int, float)):
        typical = f"The typical one of the {who} took {fmt(p50)}x its estimate"
        sure = f"n={n:,} finished items" if isinstance(n, int) else "n unknown"
    else:
        return None
    plan = f"plan for {fmt(p80)}x the estimate to finish 80% of them within it (P80)"
    if isinstance(p50, (int, float)) and finding is not None:
        plan += f"; the rule's own median is {fmt(p50)}x"
    return f"{typical}; {plan}. How sure: {sure}."


def progress(proposal: Proposal, writes: list[Any], lists: list[Any]) -> str | None:
    """Where an accepted proposal's write-back is, in words."""
    if proposal.status != "accepted":
        return None
    if not writes and not lists:
        return ("Accepted: the new policy is in effect here; no template in a tool is linked "
                "to this rule, so there is nothing to write back.")
    counts: dict[str, int] = {}
    for w in writes:
        counts[w.status] = counts.get(w.status, 0) + 1
    done = sum(counts.get(s, 0) for s in policy.SETTLED)
    text = f"Write-back: {done} of {len(writes)} done"
    rest = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k not in policy.SETTLED)
    if rest:
        text += f" ({rest}); the worker delivers queued writes, then this proposal is applied"
    if any(w.status == "checklist" for w in writes):
        text += "; a person checks off the steps below"
    return text + "."


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """Diff text as (css class, line): additions and removals marked for colour."""
    out = []
    for line in diff.splitlines():
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
            "del" if line.startswith("-") and not line.startswith("---") else ""
        out.append((cls, line))
    return out


def decide(session: Session, user: User, proposal_id: int, decision: str, note: str | None,
           params: dict[str, Any] | None = None) -> Proposal:
    """Accept (optionally with edited parameters) or reject, and log who decided what.

    Raises:
        LearnloopError: when the proposal is not pending; ConfigError for a bad decision.
    """
    note = (note or "").strip() or None
    if decision == "reject" and note is None \
            and policy.get_proposal(session, proposal_id).status == "pending":
        raise ConfigError("say why you reject it: the reason is kept with the proposal, so "
                          "whoever reads it later knows what was wrong")
    if decision == "accept":
        policy.accept(session, proposal_id, user.email, note, params or None)
    elif decision == "reject":
        policy.reject(session, proposal_id, user.email, note)
    else:
        raise ConfigError(f"unknown decision {decision!r} (accept or reject)")
    return policy.get_proposal(session, proposal_id)  # policy logged the decision


def edited_params(proposal: Proposal, form: dict[str, Any]) -> dict[str, Any]:
    """Parameters a template owner changed before accepting (numbers only).

    Raises:
        ConfigError: naming a value that is not a number.
    """
    new = proposal.change.get("new", {}) or {}
    edits: dict[str, Any] = {}
    for key, old in new.items():
        raw = form.get(f"param_{key}")
        if raw is None or isinstance(old, bool) or not isinstance(old, (int, float)):
            continue
        text = str(raw).strip()
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, not {text!r}")
        if value != old:
            edits[key] = value
    return edits


def effect_summary(proposal: Proposal, finding: Finding | None) -> str:
    """The proposal's effect and n in a few words, for the list: `P80 1.8x (median 1.5x,
    n=120)`."""
    new = proposal.change.get("new", {}) or {}
    p80, p50, n = new.get("p80"), new.get("p50"), new.get("n")
    parts = []
    if isinstance(p80, (int, float)) and not isinstance(p80, bool):
        parts.append(f"P80 {fmt(p80)}x")
    if finding is not None:
        parts.append(f"median {fmt(finding.effect)}x" if finding.measure == "effort"
                     else f"effect {fmt(finding.effect)}")
    elif isinstance(p50, (int, float)) and not isinstance(p50, bool):
        parts.append(f"median {fmt(p50)}x")
    count = finding.n if finding is not None else n
    if isinstance(count, int):
        parts.append(f"n={count:,}")
    return ", ".join(parts) or "-"
