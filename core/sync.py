"""Run a connector's pull into the store: upserts, events, quarantine, deletions, cursor."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Engine, insert, inspect, select, update
from sqlalchemy.orm import Session

from core import bounds, deviations, links, plans, runs, secrets
from core.contract import Batch, Connector, EventRecord, ItemRecord, Problem
from core.errors import LearnloopError
from core.lessons import store as lesson_store
from core.model import Connection, Event, Item, JobRun, QuarantinedRow, utcnow
from core.store import unit_of_work

ITEM_FIELDS = [f.name for f in dataclasses.fields(ItemRecord) if f.name != "external_id"]
CHUNK = 500


@dataclass
class SyncReport:
    """What one sync did, counted; `problems` lists every quarantined row."""

    connection: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    adjusted: list[Problem] = field(default_factory=list)
    """Rows kept with a value shortened or dropped to fit the store, and why."""
    batches: int = 0

    @property
    def quarantined(self) -> int:
        """How many input rows were quarantined."""
        return len(self.problems)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "connection": self.connection,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "events": self.events,
            "quarantined": self.quarantined,
            "problems": [{"where": p.locator, "reason": p.reason} for p in self.problems],
            "adjusted": [{"where": p.locator, "reason": p.reason} for p in self.adjusted],
        }


def _apply_item(item: Item, rec: ItemRecord) -> bool:
    changed = False
    for name in ITEM_FIELDS:
        value = getattr(rec, name)
        if getattr(item, name) != value:
            setattr(item, name, value)
            changed = True
    if item.deleted:
        item.deleted = False
        changed = True
    if changed:
        item.planned_at = item.plan_time()
    return changed


NUL = "\x00"
NUL_REASON = ("text contains a NUL character (shown as \\0), which the store cannot hold "
              "(PostgreSQL refuses it); remove it in the tool")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def _visible(value: Any) -> Any:
    """`value` with every NUL written as the two characters \\0, so it can be stored."""
    if isinstance(value, str):
        return value.replace(NUL, "\\0")
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_visible(v) for v in value]
    return value


def _record_has_nul(record: ItemRecord | EventRecord) -> bool:
    # repr() runs in C and shows every NUL as \x00: only a hit needs the exact walk.
    return "\\x00" in repr(record) and any(
        _has_nul(getattr(record, f.name)) for f in dataclasses.fields(record))


def _split_nul(batch: Batch, seen: set[str]) -> tuple[Batch, list[Problem]]:
    """The batch without records carrying a NUL, and those records as problems.

    An item quarantined this way still counts as seen, so a snapshot does not mark it deleted.
    """
    problems = list(batch.problems)
    items = []
    for rec in batch.items:
        if _record_has_nul(rec):
            seen.add(rec.external_id)
            problems.append(Problem(_visible(rec.external_id), NUL_REASON, _visible(rec.raw)))
        else:
            items.append(rec)
    events = []
    for ev in batch.events:
        if _record_has_nul(ev):
            problems.append(Problem(_visible(ev.external_id), NUL_REASON,
                                    _visible(ev.attributes)))
        else:
            events.append(ev)
    return dataclasses.replace(batch, items=items, events=events, problems=[]), problems


def _split_bounds(batch: Batch, seen: set[str], report: SyncReport) -> tuple[Batch, list[Problem]]:
    """The batch with every record made storable (`core.bounds`), and the quarantined ones.

    An item quarantined this way still counts as seen, so a snapshot does not mark it deleted.
    """
    problems: list[Problem] = []
    items = []
    for rec in batch.items:
        fixed, problem, notes = bounds.check_item(rec)
        if fixed is None or problem is not None:
            seen.add(rec.external_id)
            problems += [problem] if problem else []
            continue
        if notes:
            report.adjusted.append(Problem(bounds.locator(fixed.external_id), "; ".join(notes)))
        items.append(fixed)
    events = []
    for ev in batch.events:
        checked, problem = bounds.check_event(ev)
        if checked is None or problem is not None:
            problems += [problem] if problem else []
        else:
            events.append(checked)
    return dataclasses.replace(batch, items=items, events=events), problems


def _store_batch(session: Session, conn: Connection, batch: Batch, report: SyncReport,
                 seen: set[str]) -> None:
    batch, problems = _split_nul(batch, seen)
    batch, out_of_bounds = _split_bounds(batch, seen, report)
    problems += out_of_bounds
    by_ext: dict[str, Item] = {}
    records = {r.external_id: r for r in batch.items}  # the last record of an id wins
    ext_ids = list(records) + [e.item_external_id for e in batch.events] + list(batch.deleted)
    for start in range(0, len(ext_ids), CHUNK):
        chunk = ext_ids[start:start + CHUNK]
        for item in session.scalars(
            select(Item).where(Item.connection_id == conn.id, Item.external_id.in_(chunk))
        ):
            by_ext[item.external_id] = item
    batch.events.extend(_replanning(by_ext, records, batch.events))
    touched: list[Item] = []
    new: list[Item] = []
    for ext, rec in records.items():
        seen.add(ext)
        existing = by_ext.get(ext)
        if existing is None:
            item = Item(connection_id=conn.id, external_id=ext)
            _apply_item(item, rec)
            new.append(item)
            report.created += 1
        elif _apply_item(existing, rec):
            report.updated += 1
            touched.append(existing)
        else:
            report.unchanged += 1
    for ext in batch.deleted:
        gone = by_ext.get(ext)
        if gone is not None and not gone.deleted:
            gone.deleted = True
            report.deleted += 1
            touched.append(gone)
    plans.refresh(session, conn, [*touched, *new], batch.events)  # new: inserted with theirs
    session.flush()
    for item in _insert_items(session, new):
        by_ext[item.external_id] = item
        touched.append(item)
    _store_events(session, conn, batch, by_ext, report)
    problems.extend(_store_relations(session, conn, batch, by_ext))
    if batch.lessons:
        lesson_store.import_records(session, conn, batch.lessons)
    for problem in problems:
        _quarantine(session, conn, problem)
        report.problems.append(problem)
    deviations.refresh(session, touched)


def _replanning(by_ext: dict[str, Item], records: dict[str, ItemRecord],
                events: list[EventRecord]) -> list[EventRecord]:
    """Plan changes the connector did not report itself: each stored item against its new row
    (how snapshot sources, which have no history, get their re-planning events)."""
    covered = plans.covered_fields(events)
    now = utcnow()
    out: list[EventRecord] = []
    for ext, rec in records.items():
        item = by_ext.get(ext)
        if item is not None:
            out.extend(plans.snapshot_changes(item, rec, now, covered.get(ext, ())))
    return out


_ITEM_COLUMNS = [a.key for a in inspect(Item).column_attrs if a.key != "id"]
# Columns that are NULL when not set, given as NULL (`render_nulls`) so most rows get one
# shape; JSON columns are left out (None there would store JSON null, not SQL NULL).
_ITEM_NULLS = dict.fromkeys(c.key for c in Item.__table__.columns
                            if c.nullable and c.default is None and c.server_default is None
                            and not isinstance(c.type, JSON))


def _insert_items(session: Session, new: list[Item]) -> list[Item]:
    """Insert new items with batched multi-row INSERTs, returned as persistent objects.

    `session.add()` would INSERT them one at a time on SQLite: the ORM needs each row's id
    and SQLite does not promise a multi-row INSERT returns them in order. Here the order is
    not needed (the rows come back as whole items), so both backends batch. Each row carries
    what `_apply_item` set; the columns' defaults fill the rest, as with `add()`. Rows that
    set the same columns go together (one INSERT serves only consecutive rows of one shape).
    """
    if not new:
        return []
    rows = [{**_ITEM_NULLS, **{k: item.__dict__[k] for k in _ITEM_COLUMNS if k in item.__dict__}}
            for item in new]
    rows.sort(key=lambda row: tuple(row))
    return list(session.scalars(
        insert(Item).returning(Item).execution_options(render_nulls=True), rows))


def _store_events(session: Session, conn: Connection, batch: Batch, by_ext: dict[str, Item],
                  report: SyncReport) -> None:
    wanted = {e.external_id: e for e in batch.events}
    if not wanted:
        return
    known: set[str] = set()
    keys = list(wanted)
    for start in range(0, len(keys), CHUNK):
        known.update(session.scalars(
            select(Event.external_id).where(
                Event.connection_id == conn.id, Event.external_id.in_(keys[start:start + CHUNK])
            )
        ))
    rows = []
    for ext, ev in wanted.items():
        item = by_ext.get(ev.item_external_id)
        if ext in known:
            continue
        if item is None:
            report.problems.append(Problem(ext, f"event for unknown item {ev.item_external_id}"))
            continue
        rows.append({
            "connection_id": conn.id, "item_id": item.id, "external_id": ext,
            "occurred_at": ev.occurred_at, "kind": ev.kind, "actor": ev.actor,
            "actor_kind": ev.actor_kind, "attributes": ev.attributes,
        })
        report.events += 1
    if rows:  # one executemany (SQLite) or multi-row INSERTs (PostgreSQL), not one per event
        session.execute(insert(Event), rows)


def _store_relations(session: Session, conn: Connection, batch: Batch,
                     by_ext: dict[str, Item]) -> list[Problem]:
    """Store the batch's links and enrollments; resolve links waiting for its items."""
    problems = links.store_links(session, conn.id, batch.links, by_ext) if batch.links else []
    if batch.items:
        links.resolve_pending(session, conn.id)
    if batch.enrollments:
        problems += links.store_enrollments(session, conn.id, batch.enrollments, by_ext)
    return problems


def _quarantine(session: Session, conn: Connection, problem: Problem) -> None:
    problem = dataclasses.replace(problem, locator=bounds.locator(_visible(problem.locator)))
    row = session.scalar(select(QuarantinedRow).where(
        QuarantinedRow.connection_id == conn.id, QuarantinedRow.locator == problem.locator
    ))
    reason, raw = _visible(problem.reason), bounds.finite_json(_visible(problem.raw))
    if row is None:
        session.add(QuarantinedRow(connection_id=conn.id, locator=problem.locator,
                                   reason=reason, raw=raw))
    else:
        row.reason, row.raw, row.last_seen_at = reason, raw, utcnow()


def run_sync(
    engine: Engine,
    connection_name: str,
    connector: Connector,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Pull from `connector` into the store, one transaction per batch (resumable).

    A non-snapshot batch is stored with its cursor; a snapshot batch's cursor is stored with
    the transaction after it, the last one's with the snapshot's deletions.

    Args:
        engine: the store.
        connection_name: the stored connection the connector was built for.
        connector: a built connector.
        progress: called with the number of items stored after each batch.

    Returns:
        The counts of what changed and every quarantined problem.

    Raises:
        LearnloopError: when the tool or the input cannot be read at all; batches stored
            before the failure stay stored and the cursor points after them.
    """
    with unit_of_work(engine) as s:
        conn = s.scalar(select(Connection).where(Connection.name == connection_name))
        if conn is None:
            raise LearnloopError(f"unknown connection {connection_name!r}")
        conn_id, cursor = conn.id, conn.cursor
        runs.close_abandoned(s)
        run = JobRun(job="sync", connection_id=conn_id, stats=runs.owner())
        s.add(run)
        s.flush()
        run_id = run.id
    report = SyncReport(connection_name)
    seen: set[str] = set()
    snapshot = False
    started = utcnow()
    # A snapshot batch's cursor is stored with the next transaction: the next batch's, or,
    # for the last batch, the one marking what the snapshot no longer lists deleted. A crash
    # before that leaves the cursor before the batch, so the next sync reads it again and the
    # deletions are never skipped (a file's cursor is its hash: saved early, it would say
    # "unchanged" for good).
    pending: list[dict[str, Any]] = []
    try:
        for batch in connector.pull(cursor):
            snapshot = snapshot or batch.snapshot
            with unit_of_work(engine) as s:
                conn = s.get_one(Connection, conn_id)
                _store_batch(s, conn, batch, report, seen)
                if pending:
                    conn.cursor = pending.pop()
                if batch.cursor is not None:
                    if batch.snapshot:
                        pending.append(batch.cursor)
                    else:
                        conn.cursor = batch.cursor
            report.batches += 1
            if progress:
                progress(len(batch.items))
        with unit_of_work(engine) as s:
            conn = s.get_one(Connection, conn_id)
            if snapshot:
                _reconcile_snapshot(s, conn, seen, started, report)
            if pending:
                conn.cursor = pending.pop()
            conn.last_sync_at, conn.health, conn.last_error = utcnow(), "ok", None
            _finish(s, run_id, "ok", report, None)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, LearnloopError) else f"{type(exc).__name__}: {exc}"
        with unit_of_work(engine) as s:
            if not isinstance(exc, Exception):  # Ctrl-C, SystemExit: the tool was fine
                _finish(s, run_id, runs.INTERRUPTED, report, f"interrupted ({message})")
                raise
            conn = s.get_one(Connection, conn_id)
            message = secrets.redact_stored(message, conn.secrets)  # a tool may echo a token
            conn.health, conn.last_error = "error", message
            _finish(s, run_id, "error", report, message)
        raise
    return report


def _reconcile_snapshot(s: Session, conn: Connection, seen: set[str], started: dt.datetime,
                        report: SyncReport) -> None:
    live = s.scalars(select(Item).where(Item.connection_id == conn.id, Item.deleted.is_(False)))
    gone = [i for i in live if i.external_id not in seen]
    for item in gone:
        item.deleted = True
    report.deleted += len(gone)
    deviations.refresh(s, gone)
    # Quarantined rows not reported again by a full snapshot have been fixed at the source.
    stale = s.scalars(select(QuarantinedRow).where(
        QuarantinedRow.connection_id == conn.id, QuarantinedRow.last_seen_at < started
    )).all()
    for row in stale:
        s.delete(row)


def _finish(s: Session, run_id: int, status: str, report: SyncReport, error: str | None) -> None:
    s.execute(update(JobRun).where(JobRun.id == run_id).values(
        status=status, finished_at=utcnow(), stats=report.as_dict(), error=error
    ))
