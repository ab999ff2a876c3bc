"""The write-back outbox: intents keyed for upsert, claimed safely, delivered with retries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    bindparam,
    case,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from core import secrets
from core.bulk import insert_rows
from core.contract import Connector, Delivery, Intent
from core.model import Connection, WriteIntent, utcnow
from core.model.base import JSONType, UTCDateTime
from core.settings import claim_timeout
from core.store import unit_of_work

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_BACKOFF = 30.0  # seconds; doubled per attempt, capped at an hour
CLAIM_TIMEOUT = dt.timedelta(seconds=60)  # the default; LEARNLOOP_CLAIM_TIMEOUT sets it
FIRST_CHUNK = 20  # intents handed to a connector before the first settle
CHUNK_SECONDS = 1.0  # later chunks are sized so each takes about this long to write
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def payload_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a payload, to tell a changed write from a repeated one."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


_HELD = WriteIntent.status == "delivering"
# Point an intent at a new payload. Whether it goes back to pending is decided by the database
# on the row as it is when the UPDATE runs: a worker may be settling it at this very moment, and
# a status read earlier would let that worker's "delivered" hide the new payload.
_REPOINT = (
    update(WriteIntent.__table__)  # type: ignore[arg-type]
    .where(WriteIntent.id == bindparam("b_id"))
    .values(
        payload=bindparam("b_payload", type_=JSONType),
        payload_hash=bindparam("b_hash"),
        last_error=None,
        status=case((_HELD, WriteIntent.status), else_="pending"),
        attempts=case((_HELD, WriteIntent.attempts), else_=0),
        next_attempt_at=case((_HELD, WriteIntent.next_attempt_at),
                             else_=bindparam("b_now", type_=UTCDateTime())),
    )
)


def _repoint(session: Session, changes: list[tuple[int, dict[str, Any], str]]) -> None:
    """Run `_REPOINT` for (id, payload, hash) rows, in id order (a stable lock order)."""
    if not changes:
        return
    now = utcnow()
    session.connection().execute(_REPOINT, [
        {"b_id": i, "b_payload": payload, "b_hash": digest, "b_now": now}
        for i, payload, digest in sorted(changes, key=lambda c: c[0])
    ])


def enqueue(
    session: Session,
    connection_id: int,
    target: str,
    surface: str,
    payload: dict[str, Any],
    item_id: int | None = None,
    key: str | None = None,
) -> WriteIntent:
    """Record that `payload` must be written to `target`'s `surface`.

    The key defaults to connection/target/surface, so a newer payload for the same surface
    replaces an older one (and keeps the tool-side id: the comment is edited, not re-posted);
    an unchanged payload that was already delivered is not written again.
    """
    key = key or f"{connection_id}:{target}:{surface}"
    digest = payload_hash(payload)
    row = session.scalar(select(WriteIntent).where(WriteIntent.idempotency_key == key))
    if row is None:
        row = WriteIntent(connection_id=connection_id, item_id=item_id, target=target,
                          surface=surface, idempotency_key=key, payload=payload,
                          payload_hash=digest, status="pending", next_attempt_at=utcnow())
        session.add(row)
    elif row.payload_hash != digest or row.status == "dead":
        _repoint(session, [(row.id, payload, digest)])
        session.expire(row)
    return row


@dataclass
class DeliveryReport:
    """Counts of one outbox pass."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    checklist: int = 0

    def as_dict(self) -> dict[str, int]:
        """A JSON-friendly summary; `checklist` only when a delivery became one."""
        out = {"delivered": self.delivered, "retrying": self.retrying, "dead": self.dead}
        return out | ({"checklist": self.checklist} if self.checklist else {})


def _due(now: dt.datetime, timeout: dt.timedelta) -> ColumnElement[bool]:
    return or_(
        (WriteIntent.status == "pending") & (WriteIntent.next_attempt_at <= now),
        _HELD & (WriteIntent.claimed_at < now - timeout),
    )


def claim(engine: Engine, limit: int = 100, connection_id: int | None = None,
          worker: str = WORKER_ID, timeout: dt.timedelta | None = None) -> list[int]:
    """Claim up to `limit` due intents for this worker (SKIP LOCKED where the database has it).

    Due are pending intents whose retry time has come and intents held by a worker that has
    not renewed its claim for `timeout` (default `claim_timeout()`): it died.
    The UPDATE repeats the due condition: without row locks (SQLite) another worker may have
    claimed a selected intent in between, and then this worker does not get it.
    """
    now, timeout = utcnow(), timeout or claim_timeout()
    with unit_of_work(engine) as s:
        query = (
            select(WriteIntent.id)
            .where(_due(now, timeout))
            .order_by(WriteIntent.connection_id, WriteIntent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if connection_id is not None:
            query = query.where(WriteIntent.connection_id == connection_id)
        ids = list(s.scalars(query))
        if not ids:
            return []
        got = set(s.scalars(
            update(WriteIntent)
            .where(WriteIntent.id.in_(ids), _due(now, timeout))
            .values(status="delivering", claimed_by=worker, claimed_at=now)
            .returning(WriteIntent.id)
            .execution_options(synchronize_session=False)
        ))
        return [i for i in ids if i in got]


def _settle_ok(s: Session, done: dict[int, tuple[str | None, str]]) -> tuple[int, int]:
    """Mark delivered, in one UPDATE, the intents that still hold the payload that was sent.

    `done` maps intent id -> (tool-side id, hash of the payload sent). The hashes are compared
    inside the UPDATE, so a payload enqueued while its predecessor was being written (even one
    committed a moment ago) stays pending and is written next time: a second UPDATE puts those
    back to pending, keeping the tool-side id so the rewrite edits what was just made.

    Returns:
        How many were delivered and how many must be written again.
    """
    if not done:
        return 0, 0
    refs = {i: ref for i, (ref, _) in done.items() if ref}
    ref = {"tool_ref": case(refs, value=WriteIntent.id, else_=WriteIntent.tool_ref)} \
        if refs else {}
    delivered = set(s.scalars(
        update(WriteIntent)
        .where(tuple_(WriteIntent.id, WriteIntent.payload_hash).in_(
            [(i, digest) for i, (_, digest) in done.items()]))
        .values(status="delivered", delivered_at=utcnow(), last_error=None, claimed_by=None,
                attempts=WriteIntent.attempts + 1, **ref)
        .returning(WriteIntent.id)
        .execution_options(synchronize_session=False)
    ))
    again = sorted(set(done) - delivered)
    if again:
        s.execute(
            update(WriteIntent).where(WriteIntent.id.in_(again))
            .values(status="pending", attempts=0, next_attempt_at=utcnow(), claimed_by=None,
                    **ref)
            .execution_options(synchronize_session=False)
        )
    return len(delivered), len(again)


def _settle_checklist(s: Session, intent_id: int, steps: list[str], tool_ref: str | None,
                      sent_hash: str) -> str:
    """Store the steps a person must take instead, if the row still holds the payload sent.

    A checklist that was already checked off stays checked: a redelivery (a retaken claim)
    returns the same steps and must not reopen it. A payload changed meanwhile goes back to
    pending, as in `_settle_ok`.
    """
    ref = {"tool_ref": tool_ref} if tool_ref else {}
    same = (WriteIntent.id == intent_id) & (WriteIntent.payload_hash == sent_hash)
    opened = s.scalar(
        update(WriteIntent).where(same, WriteIntent.status != "checked")
        .values(status="checklist", checklist=list(steps), checked_by=None, checked_at=None,
                last_error=None, claimed_by=None, attempts=WriteIntent.attempts + 1, **ref)
        .returning(WriteIntent.id)
        .execution_options(synchronize_session=False)
    )
    if opened is not None or s.scalar(select(WriteIntent.id).where(same)) is not None:
        return "checklist"
    s.execute(
        update(WriteIntent).where(WriteIntent.id == intent_id)
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), claimed_by=None, **ref)
        .execution_options(synchronize_session=False)
    )
    return "retrying"


_SETTLE_FAILED = (
    update(WriteIntent.__table__)  # type: ignore[arg-type]
    .where(WriteIntent.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), claimed_by=None,
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_next", type_=UTCDateTime()))
)


def _settle_failed(s: Session, failed: dict[int, tuple[Delivery | None, str]],
                   attempts: dict[int, int]) -> tuple[int, int]:
    """Count a failed attempt of each intent (id -> (result, error)), in one executemany:
    dead when the tool said the failure is permanent or after MAX_ATTEMPTS, else pending
    again after a backoff (the tool's Retry-After when it sent one).

    Returns:
        How many will be retried and how many were given up.
    """
    now, rows, dead = utcnow(), [], 0
    for intent_id, (result, error) in sorted(failed.items()):
        tried = attempts[intent_id] + 1
        next_at, status = now, "dead"
        if not ((result is not None and result.permanent) or tried >= MAX_ATTEMPTS):
            wait = min(BASE_BACKOFF * 2 ** (tried - 1), 3600.0)
            if result is not None and result.retry_after is not None:
                wait = max(result.retry_after, 0.0)
            next_at, status = now + dt.timedelta(seconds=wait), "pending"
        dead += status == "dead"
        rows.append({"b_id": intent_id, "b_status": status, "b_attempts": tried,
                     "b_error": error, "b_next": next_at})
    if rows:
        s.connection().execute(_SETTLE_FAILED, rows)
    return len(rows) - dead, dead


class _Heartbeat:
    """Renews the claim of the intents still being delivered, every third of the timeout.

    Runs in a thread while a claim is delivered, so a long batch (or a tool that stalls) keeps
    its rows however long it takes, and the rows of a worker that died return after one
    timeout. An intent whose claim was lost anyway (the renewal did not run for a whole
    timeout and another worker took it) is reported in `lost` and not delivered by this one.
    """

    def __init__(self, engine: Engine, ids: list[int], worker: str,
                 timeout: dt.timedelta) -> None:
        self.engine, self.worker, self.every = engine, worker, timeout.total_seconds() / 3
        self.held = set(ids)
        self.lost: set[int] = set()
        self.beats = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-heartbeat", daemon=True)

    def settled(self, ids: list[int]) -> None:
        """Stop renewing these (they are settled)."""
        with self._lock:
            self.held.difference_update(ids)

    def renew(self) -> None:
        """Move `claimed_at` of the held intents to now; note those no longer ours."""
        with self._lock:
            ids = sorted(self.held)
        if not ids:
            return
        with unit_of_work(self.engine) as s:
            kept = set(s.scalars(
                update(WriteIntent)
                .where(WriteIntent.id.in_(ids), _HELD, WriteIntent.claimed_by == self.worker)
                .values(claimed_at=utcnow())
                .returning(WriteIntent.id)
                .execution_options(synchronize_session=False)))
        self.beats += 1
        with self._lock:
            gone = set(ids) - kept
            self.lost |= gone & self.held
            self.held -= gone

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.renew()
            except Exception as exc:  # the database went away for a moment: try again
                log.warning("cannot renew the outbox claim: %s: %s", type(exc).__name__, exc)

    @contextmanager
    def running(self) -> Iterator[_Heartbeat]:
        """Renew in the background for the duration of the block."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def next_chunk(size: int, seconds: float, limit: int) -> int:
    """The next chunk's size: what writes in about CHUNK_SECONDS at the pace just seen, at
    most twice the last one, at least one."""
    pace = size * CHUNK_SECONDS / max(seconds, 1e-6)
    return max(1, min(2 * size, limit, int(pace)))


def deliver(
    engine: Engine,
    connector_for: Callable[[Connection], Connector],
    limit: int = 500,
    connection_id: int | None = None,
    chunk: int = FIRST_CHUNK,
) -> DeliveryReport:
    """Deliver due intents once: claim, hand them to each connection's connector, settle.

    The claimed intents go to the connector in chunks, each settled as soon as the connector
    returns: the first of `chunk` intents, the next ones sized to take about CHUNK_SECONDS, so
    a worker that dies loses at most about a second of settled-but-unrecorded writes (which
    the next delivery repeats as upserts). While the chunks are written, a heartbeat renews
    the claim of the rest; a dead worker's intents return after one claim timeout.

    An exception from a connector counts as a failed attempt of each intent of that call;
    the intents are retried later with backoff, never lost. Each chunk's results are settled
    in bulk: one statement for the delivered, one for the failed (plus one for intents whose
    payload changed meanwhile), whatever their number; a delivery that became a checklist for
    a person is settled on its own.
    """
    report = DeliveryReport()
    timeout = claim_timeout()
    worker = f"{WORKER_ID}:{uuid.uuid4().hex[:8]}"[-100:]
    ids = claim(engine, limit, connection_id, worker, timeout)
    if not ids:
        return report
    with unit_of_work(engine) as s:
        rows = s.scalars(select(WriteIntent).where(WriteIntent.id.in_(ids))
                         .order_by(WriteIntent.id)).all()
        groups: dict[int, list[WriteIntent]] = {}
        for row in rows:
            groups.setdefault(row.connection_id, []).append(row)
        conns = {c.id: c for c in s.scalars(select(Connection).where(Connection.id.in_(groups)))}
        snapshots = {
            cid: [Intent(r.id, r.target, r.surface, dict(r.payload), r.tool_ref) for r in group]
            for cid, group in groups.items()
        }
        sent = {r.id: r.payload_hash for r in rows}
    with _Heartbeat(engine, ids, worker, timeout).running() as beat:
        size = max(1, chunk)
        for cid, intents in snapshots.items():
            start = 0
            while start < len(intents):
                part = [i for i in intents[start:start + size] if i.id not in beat.lost]
                start += size
                began = time.monotonic()
                if part:
                    _deliver_part(engine, conns[cid], connector_for, part, sent, report)
                    beat.settled([i.id for i in part])
                size = next_chunk(size, time.monotonic() - began, limit)
    return report


def _deliver_part(engine: Engine, conn: Connection,
                  connector_for: Callable[[Connection], Connector], intents: list[Intent],
                  sent: dict[int, str], report: DeliveryReport) -> None:
    """Hand `intents` of one connection to its connector and settle the results in bulk."""
    results: dict[int, Delivery] = {}
    error = None
    try:
        connector = connector_for(conn)
        for res in connector.deliver(intents):
            results[res.intent_id] = res
    except Exception as exc:  # a connector bug or an outage: retry later, keep the intent
        error = f"{type(exc).__name__}: {exc}"
    token = conn.secrets
    if error:
        error = secrets.redact_stored(error, token)
        log.warning("delivery to connection %s failed: %s", conn.name, error)
    with unit_of_work(engine) as s:
        # Lock the rows in id order first (a stable lock order against enqueue_many's
        # repoints); an intent whose connection was removed meanwhile is gone here.
        attempts: dict[int, int] = {row_id: tried for row_id, tried in s.execute(
            select(WriteIntent.id, WriteIntent.attempts)
            .where(WriteIntent.id.in_([i.id for i in intents]))
            .order_by(WriteIntent.id).with_for_update())}
        done: dict[int, tuple[str | None, str]] = {}
        failed: dict[int, tuple[Delivery | None, str]] = {}
        for intent in intents:
            got = results.get(intent.id)
            if intent.id not in attempts:
                continue
            if got is not None and got.ok and got.checklist:  # rare: one row at a time
                outcome = _settle_checklist(s, intent.id, got.checklist, got.tool_ref,
                                            sent[intent.id])
                setattr(report, outcome, getattr(report, outcome) + 1)
            elif got is not None and got.ok:
                done[intent.id] = (got.tool_ref, sent[intent.id])
            else:
                why = (got.error or "unknown error") if got else (error or "no result returned")
                failed[intent.id] = (got, secrets.redact_stored(why, token))
        delivered, again = _settle_ok(s, done)
        retrying, dead = _settle_failed(s, failed, attempts)
    report.delivered += delivered
    report.retrying += again + retrying
    report.dead += dead


def enqueue_many(session: Session, writes: list[tuple[int, str, str, dict[str, Any], int | None]],
                 ) -> int:
    """Enqueue many (connection_id, target, surface, payload, item_id) writes at once.

    Same semantics as `enqueue`, in bulk statements (a learning run queues thousands);
    returns how many intents must now be written because of this call.
    """
    keys = [f"{c}:{t}:{s}" for c, t, s, _, _ in writes]
    existing: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(keys), 1000):
        for row in session.execute(
            select(WriteIntent.idempotency_key, WriteIntent.id, WriteIntent.payload_hash,
                   WriteIntent.status)
            .where(WriteIntent.idempotency_key.in_(keys[start:start + 1000]))
        ):
            existing[row[0]] = (row[1], row[2], row[3])
    now = utcnow()
    inserts: dict[str, dict[str, Any]] = {}
    changes: dict[int, tuple[int, dict[str, Any], str]] = {}
    for key, (conn_id, target, surface, payload, item_id) in zip(keys, writes, strict=True):
        digest = payload_hash(payload)
        found = existing.get(key)
        if found is None:
            inserts[key] = {
                "connection_id": conn_id, "item_id": item_id, "target": target,
                "surface": surface, "idempotency_key": key, "payload": payload,
                "payload_hash": digest, "status": "pending", "attempts": 0,
                "next_attempt_at": now, "created_at": now}
        elif found[1] != digest or found[2] == "dead":
            changes[found[0]] = (found[0], payload, digest)
    if inserts:  # a plain executemany: the ORM's bulk path costs as much again as the insert
        insert_rows(session.connection(), cast(Table, WriteIntent.__table__),
                    list(inserts.values()))
    _repoint(session, list(changes.values()))
    return len(inserts) + len(changes)
