"""The Salesforce connector: opportunities, accounts, activities, campaigns and cadences in;
custom fields, completed Tasks, email templates and cadence splits out."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.salesforce import sync, templates, writeback
from connectors.salesforce.client import Org, SalesforceError
from connectors.salesforce.config import JWT, PASSWORD, RETIREMENT, SalesforceConfig
from connectors.salesforce.mapping import MAPPING_FIELDS
from core.contract import (
    FIELD_TYPES,
    FIELDS,
    NOTE,
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


class SalesforceConnector:
    """Salesforce through `simple-salesforce`, signed in with JWT bearer (or client
    credentials)."""

    name: ClassVar[str] = "salesforce"
    title: ClassVar[str] = "Salesforce"
    config_model: ClassVar[type[BaseModel]] = SalesforceConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        *(WriteTarget(key, FIELD_TYPES[key], FIELDS, f"Opportunity field {name}")
          for key, (name, *_) in writeback.WRITTEN.items()),
        WriteTarget("task", "task", NOTE, "one completed Task on the opportunity per status "
                    "or risk-band change, edited in place on redelivery"),
        WriteTarget("template", "sequence", TEMPLATE, "an accepted playbook: an EmailTemplate's "
                    "subject and body, or a cadence step's variant split percentages; a "
                    "checklist where Salesforce does not allow the change"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        assert isinstance(config, SalesforceConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        self._org: Org | None = None
        self._lock = threading.Lock()

    @property
    def org(self) -> Org:
        """The org's session, client and call wrapper, kept for the connector's life."""
        with self._lock:
            if self._org is None:
                self._org = Org(self.config)
            return self._org

    def check(self) -> Health:
        """Signed in, opportunities readable, learnloop's fields visible and writable."""
        try:
            count = self.org.call("count the opportunities", lambda sf: sf.query(
                "SELECT COUNT() FROM Opportunity"))["totalSize"]
            missing = writeback.missing_fields(self.org)
        except SalesforceError as exc:
            return Health(ok=False, message=str(exc))
        how = {JWT: "JWT bearer", PASSWORD: "username and password"}.get(
            self.config.auth, "client credentials")
        note = f"; run install to create {', '.join(missing)}" if missing else ""
        warn = f"; {RETIREMENT}" if self.config.auth == PASSWORD else ""
        return Health(ok=True, message=f"signed in to {self.config.domain} with {how}; "
                      f"{count:,} opportunit{'y' if count == 1 else 'ies'} readable{note}{warn}")

    def install(self) -> InstallReport:
        """Custom fields on Opportunity, a permission set granting them, its assignment."""
        created, existing, problems = writeback.install(self.org, self.config.username)
        return InstallReport(created=created, existing=existing, problems=problems)

    def uninstall(self) -> InstallReport:
        """Fields are left in place (deleting a custom field drops its values)."""
        return InstallReport(problems=["learnloop's custom fields and the permission set "
                                       f"{writeback.PERMISSION_SET} are left in Salesforce; an "
                                       "admin can delete them under Setup > Object Manager > "
                                       "Opportunity > Fields & Relationships"])

    def discover_fields(self) -> list[FieldInfo]:
        """Every Opportunity field the integration user sees, for the mapping editor."""
        described = self.org.call("describe Opportunity", lambda sf: sf.Opportunity.describe())
        return [FieldInfo(str(f["name"]), str(f.get("label") or f["name"]),
                          str(f.get("type") or "string"))
                for f in described.get("fields") or []]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Every stream changed since the cursor, page by page."""
        return sync.pull(self.config, self.mapping, cursor, self.org)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Fields (200 a call), completed Tasks, and accepted playbooks."""
        intents, results = split_valid(intents)
        fields = [i for i in intents if i.surface == FIELDS]
        results += writeback.deliver_fields(self.org, fields) if fields else []
        for intent in intents:
            if intent.surface == NOTE:
                results.append(writeback.deliver_task(self.org, intent))
            elif intent.surface == TEMPLATE:
                results.append(templates.deliver_template(self.org, intent))
            elif intent.surface != FIELDS:
                results.append(Delivery(intent.id, ok=False, permanent=True,
                                        error=f"salesforce cannot write {intent.surface}"))
        return results


__all__ = ["SalesforceConfig", "SalesforceConnector"]
