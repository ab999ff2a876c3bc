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

from sqlalchemy import Engine, bindparam, case, insert, or_, select, update
from sqlalchemy.orm import Session

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
# A new payload for an existing intent. Whether it goes back to pending is decided by the
# database on the row as it is when the UPDATE runs: a worker may be settling the intent at
# that moment, and a status read earlier would let its "delivered" hide the new payload.
_REPOINT = (
    update(WriteIntent)
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
    .execution_options(synchronize_session=False)
)


def _repoint(session: Session, changes: list[tuple[int, dict[str, Any], str]]) -> None:
    """Point intents (id, payload, hash) at new payloads, in id order (a stable lock order)."""
    if changes:
        now = utcnow()
        session.connection().execute(_REPOINT, [
            {"b_id": i, "b_payload": payload, "b_hash": digest, "b_now": now}
            for i, payload, digest in sorted(changes, key=lambda c: c[0])])


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

    def as_dict(self) -> dict[str, int]:
        """A JSON-friendly summary."""
        return {"delivered": self.delivered, "retrying": self.retrying, "dead": self.dead}


def claim(engine: Engine, limit: int = 100, connection_id: int | None = None,
          worker: str = WORKER_ID) -> list[int]:
    """Claim up to `limit` due intents for this worker (SKIP LOCKED where the database has it)."""
    now = utcnow()
    with unit_of_work(engine) as s:
        query = (
            select(WriteIntent)
            .where(
                or_(
                    (WriteIntent.status == "pending") & (WriteIntent.next_attempt_at <= now),
                    (WriteIntent.status == "delivering")
                    & (WriteIntent.claimed_at < now - CLAIM_TIMEOUT),
                )
            )
            .order_by(WriteIntent.connection_id, WriteIntent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if connection_id is not None:
            query = query.where(WriteIntent.connection_id == connection_id)
        rows = s.scalars(query).all()
        for row in rows:
            row.status, row.claimed_by, row.claimed_at = "delivering", worker, now
        return [r.id for r in rows]


def _settle(row: WriteIntent, result: Delivery | None, error: str | None, sent_hash: str) -> str:
    row.attempts += 1
    row.claimed_by = None
    if result is not None and result.ok:
        if result.tool_ref:
            row.tool_ref = result.tool_ref
        if row.payload_hash != sent_hash:
            # A newer payload arrived while this one was being written: write that one too.
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
            return "retrying"
        row.status, row.delivered_at, row.last_error = "delivered", utcnow(), None
        return "delivered"
    row.last_error = (result.error if result else error) or "unknown error"
    if (result is not None and result.permanent) or row.attempts >= MAX_ATTEMPTS:
        row.status = "dead"
        return "dead"
    wait = min(BASE_BACKOFF * 2 ** (row.attempts - 1), 3600.0)
    if result is not None and result.retry_after is not None:
        wait = max(result.retry_after, 0.0)
    row.status, row.next_attempt_at = "pending", utcnow() + dt.timedelta(seconds=wait)
    return "retrying"


def deliver(
    engine: Engine,
    connector_for: Callable[[Connection], Connector],
    limit: int = 500,
    connection_id: int | None = None,
) -> DeliveryReport:
    """Deliver due intents once: claim, hand them to each connection's connector, settle.

    An exception from a connector counts as a failed attempt of each intent of that call;
    the intents are retried later with backoff, never lost.
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
            log.warning("delivery to connection %s failed: %s", conns[cid].name, error)
        with unit_of_work(engine) as s:
            for intent in intents:
                # Locked, so a payload enqueued meanwhile is seen (and kept pending) here.
                row = s.get_one(WriteIntent, intent.id, with_for_update=True)
                got = results.get(intent.id)
                outcome = _settle(row, got, error or ("no result returned" if got is None else None),
                                  sent[intent.id])
                setattr(report, outcome, getattr(report, outcome) + 1)
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
    updates: list[tuple[int, dict[str, Any], str]] = []
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
            updates.append((found[0], payload, digest))
    if inserts:
        session.execute(insert(WriteIntent), list(inserts.values()))
    _repoint(session, updates)
    return len(inserts) + len(updates)
