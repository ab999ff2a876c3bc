"""Run connections: build their connectors from the registry, sync, learn, deliver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, select

from connectors import registry
from core import outbox, policy
from core.connections import build_connector, get_connection
from core.contract import Connector, Health, WriteTarget, declared_targets
from core.learning.run import RunReport, run_learning
from core.model import Connection
from core.secrets import redact_stored
from core.store import unit_of_work
from core.sync import SyncReport, run_sync


def connector_for(conn: Connection) -> Connector:
    """A connector instance for a stored connection."""
    return build_connector(conn, registry.get(conn.kind))


def capabilities() -> dict[str, frozenset[str]]:
    """Write-back surfaces per connector kind."""
    return {name: factory.capabilities for name, factory in registry.available().items()}


def targets() -> dict[str, tuple[WriteTarget, ...]]:
    """The write targets each connector kind declares: what the learning run fills."""
    return {name: declared_targets(factory) for name, factory in registry.available().items()}


def connection_names(engine: Engine) -> list[str]:
    """Every connection's name, in order."""
    with unit_of_work(engine) as s:
        return list(s.scalars(select(Connection.name).order_by(Connection.name)))


def test_connection(engine: Engine, name: str) -> Health:
    """Check a connection against its tool and record its health."""
    with unit_of_work(engine) as s:
        conn = get_connection(s, name)
        try:
            health = connector_for(conn).check()
        except Exception as exc:
            health = Health(ok=False, message=str(exc))
        # A tool may echo a credential in its error: never store or show it.
        health.message = redact_stored(health.message, conn.secrets)
        conn.health = "ok" if health.ok else "error"
        conn.last_error = None if health.ok else health.message
    return health


def sync(engine: Engine, name: str, progress: Callable[[int], None] | None = None) -> SyncReport:
    """Pull one connection into the store."""
    with unit_of_work(engine) as s:
        connector = connector_for(get_connection(s, name))
    return run_sync(engine, name, connector, progress)


def learn(engine: Engine, progress: Callable[[str], None] | None = None,
          as_of: dt.datetime | None = None) -> RunReport:
    """Run a learning cycle, queueing write-back for the targets each connector declares."""
    return run_learning(engine, targets(), progress, as_of)


def deliver(engine: Engine, rounds: int = 100) -> outbox.DeliveryReport:
    """Deliver every due write-back intent (several claims of up to 500 each)."""
    total = outbox.DeliveryReport()
    for _ in range(rounds):
        report = outbox.deliver(engine, connector_for)
        if not (report.delivered or report.retrying or report.dead):
            break
        total.delivered += report.delivered
        total.retrying += report.retrying
        total.dead += report.dead
    if total.delivered or total.dead:
        with unit_of_work(engine) as s:  # accepted proposals whose writes all arrived: applied
            policy.settle_accepted(s)
    return total
