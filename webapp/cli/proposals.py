"""`learnloop proposals list|show|accept|reject`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from sqlalchemy import select

from connectors.runtime import deliver, targets
from core import policy
from core.errors import InputError
from core.learning.run import queue_writeback
from core.model import Proposal
from core.store import unit_of_work
from webapp.cli.common import JSON_HELP, default_user, emit_json, out, parse_pairs, store

app = typer.Typer(help="Review proposed rule and template changes.", no_args_is_help=True)


def public(p: Proposal) -> dict[str, Any]:
    """A proposal as shown to people and scripts."""
    return {
        "id": p.id, "title": p.title, "status": p.status, "kind": p.kind,
        "rule": p.change.get("rule_key"), "hypothesis": p.rationale,
        "old": p.change.get("old"), "new": p.change.get("new"), "evidence": p.evidence,
        "diff": p.diff, "created_at": p.created_at, "decided_by": p.decided_by,
        "decided_at": p.decided_at, "note": p.decision_note, "policy_version": p.policy_version,
    }


@app.command("list")
def list_(
    status: Annotated[str, typer.Option(help="pending, accepted, rejected, superseded or all.")]
    = "pending",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List proposals (pending ones by default)."""
    with unit_of_work(store()) as s:
        query = select(Proposal).order_by(Proposal.id)
        if status != "all":
            query = query.where(Proposal.status == status)
        rows = [public(p) for p in s.scalars(query)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print(f"no {status} proposals" if status != "all" else "no proposals yet")
    for r in rows:
        out.print(f"#{r['id']} [{r['status']}] {r['title']}\n    {r['hypothesis']}")


@app.command("show")
def show(
    proposal_id: int,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show one proposal with its evidence and the old -> new diff."""
    with unit_of_work(store()) as s:
        row = public(policy.get_proposal(s, proposal_id))
    if as_json:
        emit_json(row)
        return
    out.print(f"#{row['id']} [{row['status']}] {row['title']}")
    out.print(f"hypothesis: {row['hypothesis']}")
    out.print("evidence:")
    for line in json.dumps(row["evidence"], indent=2, sort_keys=True, default=str).splitlines():
        out.print(f"  {line}")
    out.print("what changes:")
    for line in str(row["diff"]).splitlines():
        out.print(f"  {line}")
    if row["decided_by"]:
        out.print(f"decided by {row['decided_by']} at {row['decided_at']}: {row['note'] or ''}")


EDITABLE = ("p50", "p80", "p90")


def _edits(pairs: dict[str, str]) -> dict[str, float]:
    """`--set` values as numbers, for the parameters a person may edit.

    Raises:
        InputError: naming an unknown parameter or a value that is not a number.
    """
    out = {}
    for key, raw in pairs.items():
        if key not in EDITABLE:
            raise InputError(f"--set {key}: only {', '.join(EDITABLE)} can be edited")
        try:
            out[key] = float(raw)
        except ValueError:
            raise InputError(f"--set {key}={raw}: not a number") from None
    return out


@app.command("accept")
def accept(
    proposal_id: int,
    by: Annotated[str | None, typer.Option(help="Who decides (default: you).")] = None,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Edit a parameter before accepting, e.g. p80=1.5.")] = None,
    no_deliver: Annotated[bool, typer.Option("--no-deliver", help="Only queue the write-back.")]
    = False,
) -> None:
    """Accept a proposal: a new policy version, templates re-rendered, write-back queued."""
    edits = _edits(parse_pairs(set_, "--set")) if set_ else None
    engine = store()
    with unit_of_work(engine) as s:
        new = policy.accept(s, proposal_id, by or default_user(), note, edits)
        queued = queue_writeback(s, targets())
        version = new.version
    out.print(f"accepted #{proposal_id}: policy is now version {version}; {queued} writes queued")
    if not no_deliver and queued:
        report = deliver(engine)
        out.print(f"write-back: {report.delivered} delivered, {report.retrying} to retry, "
                  f"{report.dead} failed")


@app.command("reject")
def reject(
    proposal_id: int,
    by: Annotated[str | None, typer.Option(help="Who decides (default: you).")] = None,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Reject a proposal, recording who and why."""
    with unit_of_work(store()) as s:
        policy.reject(s, proposal_id, by or default_user(), note)
    out.print(f"rejected #{proposal_id}")
