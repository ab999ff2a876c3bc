"""Checklists: changes a tool's API cannot make, done by a person and checked off by them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import policy
from core.errors import LearnloopError, NotFoundError
from core.model import Connection, Proposal, Template, WriteIntent, utcnow

OPEN = "checklist"
CHECKED = "checked"


@dataclass(frozen=True)
class Checklist:
    """One checklist with where it goes and the proposal it carries out, if any."""

    intent: WriteIntent
    connection: str
    proposal: Proposal | None


def proposal_of(session: Session, intent: WriteIntent) -> Proposal | None:
    prefix = policy.template_write_key(intent.connection_id, "", 0).removesuffix(":v0")
    name, _, version = intent.idempotency_key.removeprefix(prefix).rpartition(":v")
    if not intent.idempotency_key.startswith(prefix) or not version.isdigit():
        return None
    policy_version = session.scalar(select(Template.policy_version).where(
        Template.connection_id == intent.connection_id, Template.name == name,
        Template.version == int(version)))
    if policy_version is None:
        return None
    return session.scalar(select(Proposal).where(Proposal.policy_version == policy_version))


def _listed(session: Session, rows: list[WriteIntent],
            proposal: Proposal | None = None) -> list[Checklist]:
    names: dict[int, str] = {i: n for i, n in session.execute(select(Connection.id, Connection.name))}
    return [Checklist(r, names.get(r.connection_id, "?"), proposal or proposal_of(session, r))
            for r in rows]


def open_checklists(session: Session, limit: int = 200) -> list[Checklist]:
    """Checklists waiting for a person, oldest first."""
    rows = session.scalars(select(WriteIntent).where(WriteIntent.status == OPEN)
                           .order_by(WriteIntent.id).limit(limit)).all()
    return _listed(session, list(rows))


def of_proposal(session: Session, proposal: Proposal) -> list[Checklist]:
    """The checklists (open or checked off) among a proposal's write-backs."""
    rows = [w for w in policy.writes_of(session, proposal) if w.checklist is not None]
    return _listed(session, rows, proposal)


def mark_done(session: Session, intent_id: int, by: str) -> Checklist:
    """Record that `by` carried out the steps; the proposal is settled (applied if this was
    its last open write).

    Raises:
        NotFoundError: when there is no checklist with this id.
        LearnloopError: when it was already checked off.
    """
    row = session.get(WriteIntent, intent_id, with_for_update=True)
    if row is None or row.checklist is None:
        raise NotFoundError(f"no checklist #{intent_id}")
    if row.status == CHECKED:
        raise LearnloopError(f"checklist #{intent_id} was already checked off by "
                             f"{row.checked_by}")
    if row.status != OPEN:
        raise LearnloopError(f"checklist #{intent_id} is {row.status}: it is being written "
                             "again, reload the page")
    row.status, row.checked_by, row.checked_at = CHECKED, by, utcnow()
    session.flush()
    found = proposal_of(session, row)
    if found is not None:
        policy.settle(session, found)
    (listed,) = _listed(session, [row])
    return listed
