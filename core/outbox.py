"""The write-back outbox: intents keyed for upsert, claimed safely, delivered with retries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    bindparam,
    case,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from core import secrets
from core.contract import Connector, Delivery, Intent
from core.model import Connection, WriteIntent, utcnow
from core.model.base import JSONType, UTCDateTime
from core.store import unit_of_work

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_BACKOFF = 30.0  # seconds; doubled per attempt, capped at an hour
CLAIM_TIMEOUT = dt.timedelta(minutes=10)
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


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        (WriteIntent.status == "pending") & (WriteIntent.next_attempt_at <= now),
        _HELD & (WriteIntent.claimed_at < now - CLAIM_TIMEOUT),
    )


def claim(engine: Engine, limit: int = 100, connection_id: int | None = None,
          worker: str = WORKER_ID) -> list[int]:
    """Claim up to `limit` due intents for this worker (SKIP LOCKED where the database has it).

    The UPDATE repeats the due condition: without row locks (SQLite) another worker may have
    claimed a selected intent in between, and then this worker does not get it.
    """
    now = utcnow()
    with unit_of_work(engine) as s:
        query = (
            select(WriteIntent.id)
            .where(_due(now))
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
            .where(WriteIntent.id.in_(ids), _due(now))
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


def deliver(
    engine: Engine,
    connector_for: Callable[[Connection], Connector],
    limit: int = 500,
    connection_id: int | None = None,
) -> DeliveryReport:
    """Deliver due intents once: claim, hand them to each connection's connector, settle.

    An exception from a connector counts as a failed attempt of each intent of that call;
    the intents are retried later with backoff, never lost. Each connection's results are
    settled in bulk: one statement for the delivered, one for the failed (plus one for
    intents whose payload changed meanwhile), whatever their number; a delivery that became
    a checklist for a person is settled on its own.
    """
    report = DeliveryReport()
    ids = claim(engine, limit, connection_id)
    if not ids:
        return report
    with unit_of_work(engine) as s:
        rows = s.scalars(select(WriteIntent).where(WriteIntent.id.in_(ids))).all()
        groups: dict[int, list[WriteIntent]] = {}
        for row in rows:
            groups.setdefault(row.connection_id, []).append(row)
        conns = {c.id: c for c in s.scalars(select(Connection).where(Connection.id.in_(groups)))}
        snapshots = {
            cid: [Intent(r.id, r.target, r.surface, dict(r.payload), r.tool_ref) for r in group]
            for cid, group in groups.items()
        }
        sent = {r.id: r.payload_hash for r in rows}
    for cid, intents in snapshots.items():
        results: dict[int, Delivery] = {}
        error = None
        try:
            connector = connector_for(conns[cid])
            for res in connector.deliver(intents):
                results[res.intent_id] = res
        except Exception as exc:  # a connector bug or an outage: retry later, keep the intent
            error = f"{type(exc).__name__}: {exc}"
        token = conns[cid].secrets
        if error:
            error = secrets.redact_stored(error, token)
            log.warning("delivery to connection %s failed: %s", conns[cid].name, error)
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
    return report


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
    if inserts:
        session.execute(insert(WriteIntent), list(inserts.values()))
    _repoint(session, list(changes.values()))
    return len(inserts) + len(changes)
