"""Declare, list, stop and show process experiments (the CLI, the API and the web app call these)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ConfigError, NotFoundError
from core.model import Activity, Proposal
from core.model.process import ProcessExperiment
from core.process import measures as catalogue
from core.process import predicate
from core.secrets import redact

MAX_NAME = 200
MAX_TEXT = 4000


def parse_when(value: str | dt.date | dt.datetime | None, what: str) -> dt.datetime | None:
    """A date or time (ISO 8601 text, a date or a datetime) as aware UTC; None stays None.

    Raises:
        ConfigError: naming `what` when the text is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            when = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{what} {value!r} is not a date (use YYYY-MM-DD)") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _text(value: str | None, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ConfigError(f"{what} is empty: say it in a few words")
    if len(text) > limit:
        raise ConfigError(f"{what} has {len(text)} characters; at most {limit}")
    return text


def declare(session: Session, *, name: str, hypothesis: str,
            treated: str | Mapping[str, Any], start: str | dt.date | dt.datetime,
            measures: Iterable[str], min_effect: float, owner: str,
            comparison: str | Mapping[str, Any] | None = None, cluster: str | None = None,
            end: str | dt.date | dt.datetime | None = None, direction: str | None = None,
            extend_to: str | Mapping[str, Any] | None = None,
            epic: str | None = None) -> ProcessExperiment:
    """Declare a process experiment; it is judged on every learning run from then on.

    Args:
        session: the store session.
        name: the change in a few words (`2-week sprints`).
        hypothesis: what is expected, in words.
        treated: the treated group: `team=A` or {"team": ["A"]}.
        start: when the change began.
        measures: what it should move (core.process.measures.NAMES); the first decides.
        min_effect: the smallest effect on the first measure worth acting on, in its shown
            units (days, %, plan changes, items a week, points).
        owner: who declared it.
        comparison: the comparison group; default the comparable untreated items.
        cluster: the dimension items cluster by; default the treated predicate's first.
        end: when the change ended (None while it lasts).
        direction: `decrease` or `increase`; default the measure's usual improvement.
        extend_to: whom a change that worked is proposed for; default the comparison.
        epic: the tool-side id of the epic (or item) the verdict is written on.

    Raises:
        ConfigError: naming the first input that is wrong.
    """
    names = list(dict.fromkeys(catalogue.get(m).name for m in measures))
    if not names:
        raise ConfigError("measures: name at least one of " + ", ".join(catalogue.NAMES))
    first = catalogue.get(names[0])
    direction = (direction or first.better).strip().lower()
    if direction not in catalogue.DIRECTIONS:
        raise ConfigError(f"direction {direction!r}: use {' or '.join(catalogue.DIRECTIONS)}")
    if isinstance(min_effect, bool) or not isinstance(min_effect, int | float) \
            or not math.isfinite(min_effect) or min_effect < 0:
        raise ConfigError(f"minimum effect {min_effect!r}: give a number of 0 or more "
                          f"({first.unit} of {first.label})")
    began = parse_when(start, "start")
    if began is None:
        raise ConfigError("start is missing: when did the change begin (YYYY-MM-DD)?")
    ended = parse_when(end, "end")
    if ended is not None and ended <= began:
        raise ConfigError(f"end {ended.date()} is not after the start {began.date()}")
    treated_p = _predicate(treated, "treated")
    assert treated_p is not None
    cluster = (cluster or "").strip() or None
    if cluster is not None and len(cluster) > 100:
        raise ConfigError("cluster: a dimension name of at most 100 characters")
    row = ProcessExperiment(
        name=_text(name, "name", MAX_NAME), hypothesis=_text(hypothesis, "hypothesis", MAX_TEXT),
        treated=treated_p, comparison=_predicate(comparison, "comparison"), cluster=cluster,
        start=began, end=ended, measures=names, direction=direction,
        min_effect=float(min_effect), extend_to=_predicate(extend_to, "extend to"),
        epic=(epic or "").strip()[:200] or None, owner=owner[:254], status="running",
        evidence={})
    session.add(row)
    session.flush()
    session.add(Activity(actor=owner, action="declared a process experiment",
                         subject_type="process_experiment", subject_id=str(row.id),
                         detail={"name": row.name, "treated": predicate.text(row.treated)}))
    return row


def _predicate(value: str | Mapping[str, Any] | None, what: str) -> predicate.Predicate | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return predicate.parse(value, what)
    return predicate.check(value, what)


def get(session: Session, experiment_id: int) -> ProcessExperiment:
    """The process experiment with this id.

    Raises:
        NotFoundError: when there is none.
    """
    row = session.get(ProcessExperiment, experiment_id)
    if row is None:
        raise NotFoundError(f"no process experiment #{experiment_id} (see `learnloop "
                            "experiments list`)")
    return row


def listing(session: Session) -> list[ProcessExperiment]:
    """Every process experiment, newest first (failed ones too: negative results are kept)."""
    return list(session.scalars(select(ProcessExperiment).order_by(ProcessExperiment.id.desc())))


def stop(session: Session, experiment_id: int, by: str) -> ProcessExperiment:
    """Stop judging an experiment (it stays listed with its last verdict)."""
    row = get(session, experiment_id)
    row.status = "stopped"
    session.add(Activity(actor=by, action="stopped a process experiment",
                         subject_type="process_experiment", subject_id=str(row.id),
                         detail={"name": row.name}))
    return row


def _unit(names: list[str]) -> str | None:
    try:
        return catalogue.get(names[0]).unit if names else None
    except ConfigError:
        return None


def public(session: Session, row: ProcessExperiment) -> dict[str, Any]:
    """The experiment as JSON: the declaration, the latest verdict and its evidence."""
    proposal = session.get(Proposal, row.proposal_id) if row.proposal_id else None
    return {
        "id": row.id, "name": row.name, "hypothesis": redact(row.hypothesis),
        "treated": row.treated, "treated_text": predicate.text(row.treated),
        "comparison": row.comparison, "cluster": row.cluster,
        "start": row.start.date().isoformat(),
        "end": row.end.date().isoformat() if row.end else None,
        "measures": list(row.measures), "direction": row.direction,
        "min_effect": row.min_effect, "unit": _unit(row.measures), "extend_to": row.extend_to, "epic": row.epic,
        "owner": row.owner, "status": row.status, "verdict": row.verdict,
        "statement": row.statement, "evidence": row.evidence,
        "evaluated_at": row.evaluated_at.isoformat() if row.evaluated_at else None,
        "run_id": row.run_id, "finding_id": row.finding_id,
        "proposal": None if proposal is None else {
            "id": proposal.id, "title": proposal.title, "status": proposal.status,
            "policy_version": proposal.policy_version},
        "created_at": row.created_at.isoformat(),
    }


def treating(session: Session) -> list[tuple[predicate.Predicate, str]]:
    """(treated predicate, label) of every experiment being judged or judged, for writing
    onto the items it treats: `#3 2-week sprints: worked`."""
    rows = session.execute(select(ProcessExperiment.id, ProcessExperiment.name,
                                  ProcessExperiment.treated, ProcessExperiment.verdict)
                           .where(ProcessExperiment.status != "stopped")
                           .order_by(ProcessExperiment.id))
    return [(dict(t), f"#{i} {n}: {(v or 'not judged yet').replace('_', ' ')}")
            for i, n, t, v in rows]
