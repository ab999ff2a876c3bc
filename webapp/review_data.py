"""Proposals under review: their evidence, diff, the write-backs they caused, and decisions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import policy
from core.model import Activity, Finding, Proposal, Template, User, WriteIntent
from webapp import services


def writes_of(session: Session, proposal: Proposal) -> list[WriteIntent]:
    """The template write-backs an accepted proposal queued (one per template it changed)."""
    if proposal.policy_version is None:
        return []
    keys = [f"{t.connection_id}:template:{t.name}:v{t.version}" for t in session.scalars(
        select(Template).where(Template.policy_version == proposal.policy_version,
                               Template.connection_id.is_not(None)))]
    if not keys:
        return []
    return list(session.scalars(select(WriteIntent).where(WriteIntent.idempotency_key.in_(keys))))


def settle(session: Session, proposal: Proposal) -> None:
    """An accepted proposal becomes applied once its write-backs arrived, failed if one died."""
    if proposal.status != "accepted":
        return
    writes = writes_of(session, proposal)
    if writes and all(w.status == "delivered" for w in writes):
        proposal.status = "applied"
    elif any(w.status == "dead" for w in writes):
        proposal.status = "failed"


def detail(session: Session, proposal_id: int) -> dict[str, Any]:
    """A proposal with its finding, diff lines, editable parameters, write-backs and trail."""
    proposal = policy.get_proposal(session, proposal_id)
    settle(session, proposal)
    finding = session.get(Finding, proposal.finding_id) if proposal.finding_id else None
    new = proposal.change.get("new", {}) or {}
    editable = {k: v for k, v in new.items() if isinstance(v, (int, float)) and
                not isinstance(v, bool)}
    trail = session.scalars(select(Activity).where(
        Activity.subject_type == "proposal", Activity.subject_id == str(proposal_id))
        .order_by(Activity.at)).all()
    return {"proposal": proposal, "finding": finding, "diff": diff_lines(proposal.diff),
            "editable": editable, "writes": writes_of(session, proposal), "trail": trail}


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
    from core.errors import ConfigError

    note = (note or "").strip() or None
    if decision == "accept":
        policy.accept(session, proposal_id, user.email, note, params or None)
    elif decision == "reject":
        policy.reject(session, proposal_id, user.email, note)
    else:
        raise ConfigError(f"unknown decision {decision!r} (accept or reject)")
    proposal = policy.get_proposal(session, proposal_id)
    services.log(session, user, f"{decision}ed the proposal", "proposal", proposal_id, note=note,
                 title=proposal.title, edited=params or {}, policy_version=proposal.policy_version)
    return proposal


def edited_params(proposal: Proposal, form: dict[str, Any]) -> dict[str, Any]:
    """Parameters a template owner changed before accepting (numbers only).

    Raises:
        ConfigError: naming a value that is not a number.
    """
    from core.errors import ConfigError

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
        if value != old:
            edits[key] = value
    return edits
