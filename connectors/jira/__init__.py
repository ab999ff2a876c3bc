"""The Jira connector: plans, actuals and re-planning history in; forecasts and insights out."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.jira import sync, writeback
from connectors.jira.client import explain, reader, writer
from connectors.jira.config import JiraConfig
from connectors.jira.mapping import MAPPING_FIELDS
from core.contract import (
    COMMENT,
    FIELD_TYPES,
    FIELDS,
    LINK,
    PROPERTY,
    TEMPLATE,
    Batch,
    Delivery,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    MappingField,
    WriteTarget,
    split_valid,
    surfaces_of,
)
from core.errors import LearnloopError


class JiraConnector:
    """Jira Cloud through `jira` (reads) and `atlassian-python-api` (writes, changelog pages)."""

    name: ClassVar[str] = "jira"
    title: ClassVar[str] = "Jira Cloud"
    config_model: ClassVar[type[BaseModel]] = JiraConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        *(WriteTarget(key, FIELD_TYPES[key], FIELDS, f"custom field '{name}'")
          for key, (name, _, _) in writeback.OUR_FIELDS.items()),
        WriteTarget("comment", "text", COMMENT, "one learnloop comment, edited in place"),
        WriteTarget(writeback.PROPERTY_KEY, "json", PROPERTY,
                    "issue property with the item's values as JSON"),
        WriteTarget("remote link", "url", LINK, "a remote link to the item's learnloop page"),
        WriteTarget("template issue", "project", TEMPLATE, "a template issue: its children's "
                    "original estimates and one comment saying why"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        assert isinstance(config, JiraConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        # Clients kept for the connector's life (the runtime keeps one connector per
        # connection): the reader's start-up costs 2 requests, and one writer serves every
        # delivery.
        self._reader: Any = None
        self._writer: Any = None
        self._account: list[str | None] = []
        self._lock = threading.Lock()

    def check(self) -> Health:
        """The site answers, the token works, and learnloop's fields exist."""
        try:
            me = self._client().myself()
            missing = [name for key, (name, _, _) in writeback.OUR_FIELDS.items()
                       if key not in writeback.field_ids(self.config, self._write_client())]
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc))
        except Exception as exc:
            return Health(ok=False, message=str(explain(exc, self.config)))
        note = f"; run install to create {', '.join(missing)}" if missing else ""
        return Health(ok=True, message=f"signed in as {me.get('displayName', self.config.email)}"
                      f" ({me.get('timeZone', 'UTC')}){note}")

    def install(self) -> InstallReport:
        """Create learnloop's custom fields if missing and put them on the default screen."""
        try:
            created, existing = writeback.install(self.config, self._write_client())
        except Exception as exc:
            raise explain(exc, self.config) from exc
        return InstallReport(created=created, existing=existing)

    def uninstall(self) -> InstallReport:
        """Custom fields are left in place (deleting them loses their history in Jira)."""
        return InstallReport(problems=["learnloop's custom fields are left in Jira; an admin "
                                       "can trash them under Settings > Issues > Custom fields"])

    def discover_fields(self) -> list[FieldInfo]:
        """Every field of the site, for the mapping editor."""
        fields = self._client().fields()
        return [FieldInfo(str(f["id"]), str(f.get("name", f["id"])),
                          str((f.get("schema") or {}).get("type", "string"))) for f in fields]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Issues changed since the cursor, page by page."""
        return sync.pull(self.config, self.mapping, cursor, self._client(),
                         self._write_client(), self._own_account)

    def _client(self) -> Any:
        with self._lock:
            if self._reader is None:
                self._reader = reader(self.config)
            return self._reader

    def _write_client(self) -> Any:
        with self._lock:
            if self._writer is None:
                self._writer = writer(self.config)
            return self._writer

    def _own_account(self) -> str | None:
        """learnloop's account id on the site (asked once): its changes are not changes."""
        if not self._account:
            try:
                me = self._client().myself()
            except Exception as exc:
                raise explain(exc, self.config) from exc
            self._account.append(str(me.get("accountId") or "") or None)
        return self._account[0]

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Field values, the learnloop comment, the issue property and the remote link."""
        intents, results = split_valid(intents)
        fields = [i for i in intents if i.surface == FIELDS]
        client = self._write_client()
        results += writeback.deliver(self.config, fields, client) if fields else []
        results += [writeback.deliver_template(self.config, i, self._client(), client)
                    if i.surface == TEMPLATE
                    else writeback.deliver_other(self.config, i, client)
                    for i in intents if i.surface != FIELDS]
        return results


__all__ = ["JiraConfig", "JiraConnector"]
