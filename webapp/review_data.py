"""Proposals under review: their evidence, diff, the write-backs they caused, and decisions."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import checklists, policy
from core.errors import ConfigError
from core.model import Activity, Finding, Proposal, User
from webapp import services


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
    return {"proposal": proposal, "finding": finding, "diff": diff_lines(proposal.diff),
            "editable": editable, "writes": policy.writes_of(session, proposal), "trail": trail,
            "checklists": checklists.of_proposal(session, proposal)}


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
    proposal = policy.get_proposal(session, proposal_id)
    services.log(session, user, f"{decision}ed the proposal", "proposal", proposal_id, note=note,
                 title=proposal.title, edited=params or {}, policy_version=proposal.policy_version)
    return proposal


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
