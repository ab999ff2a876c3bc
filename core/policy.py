"""The versioned policy: rules, template rendering, proposals and their acceptance."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import bounds, outbox
from core.contract import TEMPLATE, TemplatePayload
from core.errors import ConfigError, LearnloopError, NotFoundError
from core.model import Activity, Policy, Proposal, Rule, Template, WriteIntent, utcnow
from core.secrets import redact, redact_value
from core.segments import within

GLOBAL_KEY = "effort:all"
CHANGE_THRESHOLD = 0.10  # relative move of the P80 multiplier that is worth a proposal
MAX_KEY = 300  # rules.key and proposals.dedupe_key
MAX_MULTIPLIER = 100.0
QUANTILES = ("p50", "p80", "p90")


def current_policy(session: Session) -> Policy:
    """The newest policy version; version 1 (empty) is created on first use."""
    newest = select(Policy).order_by(Policy.version.desc()).limit(1)
    policy = session.scalar(newest)
    if policy is None:  # two first learning runs at once make it once
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(Policy).values(
            version=1, created_by="learnloop", note="initial, empty policy",
            created_at=utcnow()).on_conflict_do_nothing(index_elements=[Policy.version]))
        policy = session.scalars(newest).one()
    return policy


def active_rules(session: Session) -> dict[str, Rule]:
    """The current policy's active rules by key."""
    return {r.key: r for r in current_policy(session).rules if r.status == "active"}


def rule_for(rules: Mapping[str, Rule], segments: Mapping[str, Any],
             kind: str = "effort") -> Rule | None:
    """The most specific active rule whose selector matches `segments` (`core.segments.within`):
    more dimensions first, then a selector that names the item's values exactly before one
    that names one of a comma-joined value (a rule learned on `api,integration` items before
    one on `integration` items), then the better evidenced."""
    best: Rule | None = None
    best_rank: tuple[int, bool, Any] = (0, False, 0)
    for rule in rules.values():
        if not rule.key.startswith(kind + ":"):
            continue
        sel = rule.selector
        exact = all(str(segments.get(k)) == str(v) for k, v in sel.items())
        if not exact and not within(sel, segments):
            continue
        rank = (len(sel), exact, rule.evidence.get("n", 0))
        if best is None or rank > best_rank:
            best, best_rank = rule, rank
    return best


def render_template(template: Template, rules: Mapping[str, Rule]) -> list[dict[str, Any]]:
    """A template rendered from the policy: a project template's tasks with the estimate to
    plan for (P50 and P80); a sequence template's variant per segment (playbook rules)."""
    if template.kind == "sequence":
        prefix = f"playbook:{template.body.get('test', template.name)}:"
        return [{"name": f"segment {','.join(f'{k}={v}' for k, v in sorted(r.selector.items()) if k != 'test') or 'all'}",
                 "estimate": None, "variant": r.params.get("variant"), "rule": r.key}
                for r in sorted(rules.values(), key=lambda r: r.key) if r.key.startswith(prefix)]
    out = []
    for task in template.body.get("tasks", []):
        estimate = task.get("estimate")
        rule = rule_for(rules, task.get("segments", {}))
        row = {"name": task.get("name", ""), "estimate": estimate}
        if rule is not None and isinstance(estimate, int | float):
            row["plan_p50"] = round(estimate * float(rule.params["p50"]), 1)
            row["plan_p80"] = round(estimate * float(rule.params["p80"]), 1)
            row["rule"] = rule.key
        out.append(row)
    return out


def _render_text(rendered: list[dict[str, Any]]) -> list[str]:
    lines = []
    for t in rendered:
        if "variant" in t:
            lines.append(f"{t['name']}: send variant {t['variant']} ({t['rule']})")
            continue
        lines.append(f"{t['name']}: estimate {t['estimate']}" + (
            f", plan P50 {t['plan_p50']}, P80 {t['plan_p80']} ({t['rule']})" if "rule" in t else ""))
    return lines


def latest_templates(session: Session) -> list[Template]:
    """The newest version of every template."""
    newest = (
        select(Template.name, func.max(Template.version).label("v")).group_by(Template.name)
    ).subquery()
    return list(session.scalars(
        select(Template).join(newest, (Template.name == newest.c.name)
                              & (Template.version == newest.c.v)).order_by(Template.name)
    ))


class _Draft:
    """A rule that is not stored: what a proposal would make active."""

    def __init__(self, key: str, selector: dict[str, Any], params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
        self.key, self.selector, self.params, self.evidence = key, selector, params, evidence
        self.status = "active"


def _with_change(rules: Mapping[str, Rule], change: Mapping[str, Any]) -> dict[str, Rule]:
    new = dict(rules)
    draft = _Draft(change["rule_key"], change["selector"], change["new"], change.get("evidence", {}))
    new[change["rule_key"]] = draft  # type: ignore[assignment]
    return new


def change_diff(session: Session, change: Mapping[str, Any]) -> str:
    """The old -> new diff of the rule and of every template it changes, as unified text."""
    old_rule = change.get("old")
    lines = [
        f"rule {change['rule_key']}: {change.get('hypothesis', '')}",
        f"- {json.dumps(old_rule, sort_keys=True) if old_rule else '(no rule)'}",
        f"+ {json.dumps(change['new'], sort_keys=True)}",
    ]
    rules = active_rules(session)
    after = _with_change(rules, change)
    for template in latest_templates(session):
        before_text = _render_text(render_template(template, rules))
        after_text = _render_text(render_template(template, after))
        if before_text != after_text:
            lines += list(difflib.unified_diff(
                before_text, after_text, f"template {template.name} v{template.version}",
                f"template {template.name} v{template.version + 1}", lineterm="",
            ))
    return "\n".join(lines)


def propose(session: Session, *, key: str, selector: dict[str, Any], params: dict[str, Any],
            hypothesis: str, evidence: dict[str, Any], title: str,
            run_id: int | None = None, finding_id: int | None = None) -> Proposal | None:
    """Propose a rule change when it moves the P80 beyond the threshold (or adds a rule).

    A pending proposal for the same rule is superseded by a newer one, not piled up.

    Returns:
        The new proposal, or None when there is nothing new to propose (the change is too
        small, or the same change is already pending).
    """
    key = bounds.shorten(key, MAX_KEY)
    rule = active_rules(session).get(key)
    if rule is not None and "p80" in params:
        old_p80 = float(rule.params.get("p80", 0) or 0)
        if old_p80 > 0 and abs(float(params["p80"]) / old_p80 - 1) < CHANGE_THRESHOLD:
            return None
    if rule is not None and "variant" in params and rule.params.get("variant") == params["variant"]:
        return None
    change = {"rule_key": key, "selector": selector, "old": rule.params if rule else None,
              "new": params, "hypothesis": hypothesis, "evidence": evidence}
    values = {"run_id": run_id, "finding_id": finding_id, "kind": "rule", "dedupe_key": key,
              "title": title, "rationale": hypothesis, "change": change, "evidence": evidence,
              "diff": change_diff(session, change), "status": "pending", "created_at": utcnow()}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for _ in range(3):
        pending = session.scalars(select(Proposal).where(
            Proposal.dedupe_key == key, Proposal.status == "pending"
        ).execution_options(populate_existing=True)).all()
        if any(old.change.get("new") == params for old in pending):
            return None
        for old in pending:
            old.status = "superseded"
        session.flush()
        # One pending proposal per key (a partial unique index): a learning run overlapping
        # this one may have proposed for the same rule a moment ago; then its proposal is
        # read and decided on like any other pending one.
        made = session.scalar(
            dialect.insert(Proposal).values(**values)
            .on_conflict_do_nothing(index_elements=[Proposal.dedupe_key],
                                    index_where=text("status = 'pending'"))
            .returning(Proposal.id))
        if made is not None:
            return session.get_one(Proposal, made)
    return None


def get_proposal(session: Session, proposal_id: int) -> Proposal:
    """The proposal with this id.

    Raises:
        NotFoundError: if there is none.
    """
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFoundError(f"no proposal #{proposal_id}")
    return proposal


def _decidable(proposal: Proposal) -> None:
    if proposal.status != "pending":
        raise LearnloopError(f"proposal #{proposal.id} is {proposal.status}, not pending")


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse rule parameters the tools must not be sent: the P50/P80/P90 multipliers must be
    finite numbers with 0 < p50 <= p80 <= p90 < 100 (those present; the others as given).

    Raises:
        ConfigError: naming what is wrong, in one line.
    """
    wanted = {k: params[k] for k in QUANTILES if k in params}
    rule = f"0 < p50 <= p80 <= p90 < {MAX_MULTIPLIER:g}"
    for name, value in wanted.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number ({rule}), not {value!r}")
        if not math.isfinite(value) or not 0 < value < MAX_MULTIPLIER:
            raise ConfigError(f"{name} is {value:g}: multipliers must be finite with {rule}")
    values = [float(v) for v in wanted.values()]
    if values != sorted(values):
        shown = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        raise ConfigError(f"{shown} are out of order: multipliers must have {rule}")


def accept(session: Session, proposal_id: int, by: str, note: str | None = None,
           params: dict[str, Any] | None = None) -> Policy:
    """Accept a pending proposal (optionally with edited parameters): a new policy version.

    Templates the change affects get a new version rendered from the new policy.

    Raises:
        NotFoundError: for an unknown proposal.
        LearnloopError: when the proposal is not pending.
        ConfigError: when a multiplier is not a finite number with
            0 < p50 <= p80 <= p90 < 100 (`check_params`).
    """
    proposal = get_proposal(session, proposal_id)
    _decidable(proposal)
    change = dict(proposal.change)
    if params is not None:
        change["new"] = {**change["new"], **params}
    if not change["rule_key"].startswith("playbook:"):
        check_params(change["new"])
    edited = {k: {"proposed": proposal.change["new"].get(k), "accepted": v}
              for k, v in (params or {}).items() if proposal.change["new"].get(k) != v}
    if params is not None:
        proposal.change = change
        if edited:  # the diff shows what was accepted, not what was first proposed
            proposal.diff = change_diff(session, change)
    old = current_policy(session)
    before = active_rules(session)
    new = Policy(version=old.version + 1, created_by=by,
                 note=f"proposal #{proposal.id}: {proposal.title}")
    for rule in old.rules:
        if rule.key != change["rule_key"]:
            new.rules.append(Rule(key=rule.key, kind=rule.kind, hypothesis=rule.hypothesis,
                                  selector=rule.selector, params=rule.params,
                                  evidence=rule.evidence, owner=rule.owner, status=rule.status))
    params_new = dict(change["new"])
    if change["rule_key"].startswith("playbook:"):
        params_new["since"] = utcnow().isoformat()  # new evidence is counted from here
        change["new"] = params_new
    new.rules.append(Rule(key=change["rule_key"], kind=rule_kind(change["rule_key"]),
                          hypothesis=change.get("hypothesis", ""), selector=change["selector"],
                          params=params_new, evidence=change.get("evidence", {}), owner=by))
    session.add(new)
    session.flush()
    after = {r.key: r for r in new.rules if r.status == "active"}
    for template in latest_templates(session):
        rendered_before = render_template(template, before)
        rendered_after = render_template(template, after)
        if rendered_before != rendered_after:
            body = {**template.body, "rendered": rendered_after,
                    "changed_by": f"proposal #{proposal.id}"}
            session.add(Template(
                name=template.name, version=template.version + 1, kind=template.kind,
                connection_id=template.connection_id, external_id=template.external_id,
                body=body, policy_version=new.version,
            ))
            if template.connection_id is not None:
                # The tool shows what changed and why, once the outbox delivers it.
                payload = TemplatePayload.model_validate({
                    "name": template.name, "version": template.version + 1,
                    "kind": template.kind, "rendered": rendered_after,
                    "why": f"proposal #{proposal.id} accepted by {by}: {proposal.rationale}"})
                outbox.enqueue(session, template.connection_id,
                               template.external_id or template.name, TEMPLATE,
                               payload.to_json(),
                               key=template_write_key(template.connection_id, template.name,
                                                      template.version + 1))
    proposal.status, proposal.decided_by, proposal.decided_at = "accepted", by, utcnow()
    proposal.decision_note, proposal.policy_version = note, new.version
    record_decision(session, proposal, "accepted", by, note, edited=edited)
    session.flush()
    return new


RULE_KINDS = {"playbook:": "playbook", "process:": "process"}
"""Rule key prefix -> rule kind; every other key is an estimation rule."""


def rule_kind(key: str) -> str:
    """The kind of the rule with this key: playbook, process (a practice a process experiment
    proved) or estimation."""
    return next((kind for prefix, kind in RULE_KINDS.items() if key.startswith(prefix)),
                "estimation")


def record_decision(session: Session, proposal: Proposal, decision: str, by: str,
                    note: str | None, **detail: Any) -> None:
    """The decision in the activity trail, wherever it was made (web, CLI, demo)."""
    session.add(Activity(actor=by, action=f"{decision} the proposal", subject_type="proposal",
                         subject_id=str(proposal.id),
                         note=None if note is None else redact(note),
                         detail=redact_value({"title": proposal.title,
                                              "policy_version": proposal.policy_version,
                                              **detail})))


def template_write_key(connection_id: int, name: str, version: int) -> str:
    """The outbox key of one template version written into its tool."""
    return f"{connection_id}:template:{name}:v{version}"


def writes_of(session: Session, proposal: Proposal) -> list[WriteIntent]:
    """The template write-backs an accepted proposal queued (one per template it changed)."""
    if proposal.policy_version is None:
        return []
    keys = [template_write_key(t.connection_id, t.name, t.version) for t in session.scalars(
        select(Template).where(Template.policy_version == proposal.policy_version,
                               Template.connection_id.is_not(None))) if t.connection_id]
    if not keys:
        return []
    return list(session.scalars(select(WriteIntent).where(WriteIntent.idempotency_key.in_(keys))))


SETTLED = ("delivered", "checked")
"""Write statuses that count as done: written by the connector, or checked off by a person."""


def settle(session: Session, proposal: Proposal) -> None:
    """An accepted proposal becomes applied once each of its write-backs arrived or its
    checklist was checked off; failed if one died. An open checklist keeps it accepted."""
    if proposal.status != "accepted":
        return
    writes = writes_of(session, proposal)
    if writes and all(w.status in SETTLED for w in writes):
        proposal.status = "applied"
    elif any(w.status == "dead" for w in writes):
        proposal.status = "failed"


def settle_accepted(session: Session) -> None:
    """Settle every accepted proposal (after the outbox delivered something)."""
    for proposal in session.scalars(select(Proposal).where(Proposal.status == "accepted")):
        settle(session, proposal)


def reject(session: Session, proposal_id: int, by: str, note: str | None = None) -> Proposal:
    """Reject a pending proposal, recording who and why."""
    proposal = get_proposal(session, proposal_id)
    _decidable(proposal)
    proposal.status, proposal.decided_by, proposal.decided_at = "rejected", by, utcnow()
    proposal.decision_note = note
    record_decision(session, proposal, "rejected", by, note)
    return proposal
