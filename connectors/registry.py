"""The connector registry: the built-ins in one tuple, plus third-party entry points."""

from __future__ import annotations

import importlib
import logging
import warnings
from importlib.metadata import entry_points

from core.contract import ConnectorFactory
from core.errors import ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "learnloop.connectors"

# Import strings keep `import connectors.registry` cheap: a connector package is imported only
# when asked for, and it never imports its tool's SDK at import time either.
BUILTINS: tuple[str, ...] = (
    "connectors.file:FileConnector",
    "connectors.gsheets:GSheetsConnector",
    "connectors.hubspot:HubSpotConnector",
    "connectors.jira:JiraConnector",
    "connectors.salesforce:SalesforceConnector",
)


def _load(target: str) -> ConnectorFactory:
    module, _, attr = target.partition(":")
    factory: ConnectorFactory = getattr(importlib.import_module(module), attr)
    return factory


def available() -> dict[str, ConnectorFactory]:
    """Every connector by name: built-ins first, then plugins (a broken plugin only warns)."""
    found: dict[str, ConnectorFactory] = {}
    for target in BUILTINS:
        factory = _load(target)
        found[factory.name] = factory
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = ep.load()
            name = factory.name
        except Exception as exc:
            warnings.warn(f"connector plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if name in found:
            warnings.warn(f"connector plugin {ep.name!r} reuses the name {name!r}; ignored",
                          stacklevel=2)
            continue
        found[name] = factory
    return found


def get(kind: str) -> ConnectorFactory:
    """The connector called `kind`.

    Raises:
        ConfigError: naming the connectors that exist.
    """
    found = available()
    if kind not in found:
        raise ConfigError(f"unknown connector {kind!r} (available: {', '.join(sorted(found))})")
    return found[kind]
