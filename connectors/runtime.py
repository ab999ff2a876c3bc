"""Run connections: build their connectors from the registry, sync, learn, deliver.

Each store keeps one connector per connection (`ConnectorCache`), rebuilt only when what it is
built from changes: a connector keeps its clients between jobs, so a Jira reader's start-up
requests are paid once per process, not once per sync or delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, select

from connectors import registry
from core import outbox, policy
from core.connections import build_connector, env_overrides, get_connection
from core.contract import Connector, ConnectorFactory, Health, WriteTarget, declared_targets
from core.learning.run import RunReport, run_learning
from core.model import Connection
from core.secrets import redact_stored
from core.store import unit_of_work
from core.sync import SyncReport, run_sync


def fingerprint(conn: Connection, factory: ConnectorFactory) -> str:
    """A digest of everything a connection's connector is built from.

    Kind and factory, config, the encrypted secrets, mapping, scope and the environment
    overrides of its kind: when any of them changes, the connector must be rebuilt.
    """
    parts = {"kind": conn.kind, "factory": f"{factory.__module__}:{id(factory)}",
             "config": conn.config, "secrets": conn.secrets, "mapping": conn.mapping,
             "scope": conn.scope, "env": env_overrides(conn.kind)}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ConnectorCache:
    """One connector per connection id, rebuilt when the connection's fingerprint changes.

    Thread-safe: the worker's jobs run in a thread pool and the web app serves requests in
    several threads; all of them get the same connector for the same configuration.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[int, tuple[str, Connector]] = {}
        self.builds = 0  # how many connectors were built, for tests and benchmarks

    def get(self, conn: Connection) -> Connector:
        """The connector for `conn`, built now if none exists for its current configuration."""
        factory = registry.get(conn.kind)
        digest = fingerprint(conn, factory)
        with self._lock:
            hit = self._built.get(conn.id)
            if hit is not None and hit[0] == digest:
                return hit[1]
            connector = build_connector(conn, factory)
            self._built[conn.id] = (digest, connector)
            self.builds += 1
            return connector

    def forget(self, conn_id: int) -> None:
        """Drop the connector of a removed connection."""
        with self._lock:
            self._built.pop(conn_id, None)


_caches: weakref.WeakKeyDictionary[Engine, ConnectorCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def connectors(engine: Engine) -> ConnectorCache:
    """The connector cache of a store (one per engine, gone with it)."""
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = ConnectorCache()
        return cache


def connector_for(conn: Connection, engine: Engine | None = None) -> Connector:
    """The connector of a stored connection: the store's cached one when `engine` is given,
    else a new instance."""
    if engine is not None:
        return connectors(engine).get(conn)
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
            health = connector_for(conn, engine).check()
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
        connector = connector_for(get_connection(s, name), engine)
    return run_sync(engine, name, connector, progress)


def learn(engine: Engine, progress: Callable[[str], None] | None = None,
          as_of: dt.datetime | None = None) -> RunReport:
    """Run a learning cycle, queueing write-back for the targets each connector declares."""
    return run_learning(engine, targets(), progress, as_of)


def deliver(engine: Engine, rounds: int = 100) -> outbox.DeliveryReport:
    """Deliver every due write-back intent (several claims of up to 500 each)."""
    total = outbox.DeliveryReport()
    for _ in range(rounds):
        report = outbox.deliver(engine, connectors(engine).get)
        if not (report.delivered or report.retrying or report.dead):
            break
        total.delivered += report.delivered
        total.retrying += report.retrying
        total.dead += report.dead
    if total.delivered or total.dead:
        with unit_of_work(engine) as s:  # accepted proposals whose writes all arrived: applied
            policy.settle_accepted(s)
    return total
