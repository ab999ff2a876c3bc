"""A lesson's status where people work: one line on each item it concerns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import measures
from core.contract import FIELDS, FieldsPayload, TargetSpec, resolve_targets
from core.lessons.parse import matches, prediction_words
from core.model import Connection, Item, Lesson

MAX_LINES = 2
"""At most this many lessons are named on one item (the best-evidenced first)."""


def line(lesson: Lesson) -> str:
    """`a lesson applies here: integration tasks take 1.5x their estimate; held for 9 of the
    last 12` (or why it is not tested yet)."""
    ev = lesson.evidence or {}
    words = prediction_words(lesson.segment, lesson.kind, lesson.measure, lesson.multiplier,
                             lesson.direction)
    head = f"a lesson applies here (#{lesson.id}): {words}"
    if "holds" in ev:
        tail = f"held for {ev['held_recent']} of the last {ev['recent']}"
        if not ev["holds"]:
            tail += ", no longer holds"
        return f"{head}; {tail}"
    return f"{head}; not tested yet ({ev.get('n_after', 0)} finished since " \
           f"{lesson.created_at.date().isoformat()})"


def own_writes(session: Session, targets: TargetSpec,
               ) -> list[tuple[int, str, str, dict[str, Any], int | None]]:
    """The verdict of every imported lesson whose own record takes it (a post-mortem issue),
    as the insight field, where the connector declares one: `learnloop: this lesson holds:
    since 2026-03-02, ...`. Written quietly, like every field."""
    kinds = {kind for kind, spec in targets.items()
             if any(t.surface == FIELDS and t.name == "insight" for t in resolve_targets(spec))}
    if not kinds:
        return []
    conns = {c.id for c in session.scalars(select(Connection).where(Connection.kind.in_(kinds)))}
    out: list[tuple[int, str, str, dict[str, Any], int | None]] = []
    for lesson in session.scalars(select(Lesson).where(Lesson.writable.is_(True),
                                                       Lesson.connection_id.in_(conns))):
        said = (lesson.evidence or {}).get("verdict") or lesson.reason or "not tested yet"
        text = f"learnloop: this lesson {said}" if "holds" in (lesson.evidence or {}) else \
            f"learnloop: {'could not read this lesson: ' if lesson.status == 'unparsed' else ''}" \
            f"{said}"
        payload = FieldsPayload.model_validate({"insight": text})
        assert lesson.connection_id is not None and lesson.external_id is not None
        out.append((lesson.connection_id, lesson.external_id, FIELDS,
                    payload.json_of(("insight",)), None))
    return out


class LessonIndex:
    """The readable lessons, looked up by an item's kind family and segments."""

    def __init__(self, lessons: Sequence[Lesson]) -> None:
        self.lessons = sorted((x for x in lessons if x.measure is not None),
                              key=lambda x: (-(x.evidence or {}).get("n_after", 0), x.id))
        self.lines = {x.id: line(x) for x in self.lessons}

    @classmethod
    def load(cls, session: Session) -> LessonIndex:
        """Every readable lesson in the store."""
        return cls(list(session.scalars(select(Lesson).where(Lesson.measure.is_not(None)))))

    def for_item(self, item: Item, kinds: Mapping[str, str] | None = None) -> list[str]:
        """The status lines of the lessons whose segment holds the item (`kinds`: its
        connection's kind map, read from the item when not given)."""
        if not self.lessons:
            return []
        fam = measures.family(item.kind, measures.item_kind_map(item) if kinds is None
                              else kinds)
        got = [self.lines[x.id] for x in self.lessons
               if x.kind == fam and matches(x.segment, item.segments or {})]
        return got[:MAX_LINES]


def evidence_lines(ev: dict[str, Any]) -> list[str]:
    """The latest test's numbers, one readable line each (rounded, with n and interval)."""
    lines = []
    change = ev.get("change")
    if change:
        what = "ratio" if "ratio" in change else "difference"
        lines.append(f"deviation before {change['median_before']:g} (n={change['n_before']}), "
                     f"since {change['median_after']:g} (n={change['n_after']}): {what} "
                     f"{change[what]:g}, 90% interval {change['interval'][0]:g} to "
                     f"{change['interval'][1]:g}; "
                     + ("shrunk" if change["shrunk"] else "not shrunk"))
    est = ev.get("estimates")
    if est:
        lines.append(f"estimates: median {est['median_before']:g} before (n={est['n_before']}), "
                     f"{est['median_after']:g} since (n={est['n_after']}); "
                     + ("rising" if est["rising"] else "not rising"))
    pol = ev.get("policy")
    if pol:
        lines.append(f"policy: rule {pol['rule']} plans P80 {pol['p80']:g}x" + (
            " (what the lesson asks for)" if pol["in_policy"] else " (not what it asks for)")
            if pol["rule"] else "policy: no rule covers this segment")
    rec = ev.get("recurrence")
    if rec and rec["of"]:
        failed = ", ".join(g["name"] for g in rec["groups"] if g["failed"]) or "none"
        lines.append(f"failed again in {rec['failed']} of {rec['of']} projects since: {failed}")
    return lines
