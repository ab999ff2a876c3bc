"""The HubSpot connector: deals, contacts, companies and emails in; deal properties, notes and
email drafts out."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.hubspot import sync, templates, writeback
from connectors.hubspot.client import Hub, HubSpotError
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.mapping import MAPPING_FIELDS
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
from core.errors import LearnloopError


class HubSpotConnector:
    """HubSpot CRM through `hubspot-api-client`, with a private-app token or OAuth."""

    name: ClassVar[str] = "hubspot"
    title: ClassVar[str] = "HubSpot"
    config_model: ClassVar[type[BaseModel]] = HubSpotConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        *(WriteTarget(key, FIELD_TYPES[key], FIELDS, f"deal property '{name}'")
          for key, (name, *_) in writeback.DEAL_PROPERTIES.items()),
        WriteTarget("note", "note", NOTE, "one learnloop note per deal, edited in place when "
                    "its risk band or outcome changes"),
        WriteTarget("template", "sequence", TEMPLATE, "an accepted playbook: the marketing "
                    "email's draft (or an A/B variation) for its owner to publish; a sequence "
                    "through the beta API with a user-level token, else a checklist"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        assert isinstance(config, HubSpotConfig)
        self.config = config
        self.mapping = dict(mapping or {})
        self._hub: Hub | None = None
        self._lock = threading.Lock()

    @property
    def hub(self) -> Hub:
        """The account's client and backoff wrapper, kept for the connector's life."""
        with self._lock:
            if self._hub is None:
                self._hub = Hub(self.config)
            return self._hub

    def check(self) -> Health:
        """The token works, the deal pipelines are readable, and learnloop's properties exist."""
        try:
            pipes = self.hub.json("read the deal pipelines",
                                  self.hub.api("crm.pipelines.pipelines_api").get_all, "deals")
            missing = writeback.missing_properties(self.hub)
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc),
                          missing_permissions=_scopes(exc))
        n = len((pipes or {}).get("results") or [])
        note = f"; run install to create {', '.join(missing)}" if missing else ""
        how = "OAuth (user-level)" if self.config.oauth else "private app token"
        return Health(ok=True, message=f"signed in with a {how}; {n} deal pipeline"
                      f"{'s' if n != 1 else ''} readable{note}")

    def install(self) -> InstallReport:
        """Create the learnloop property group and properties on deals, contacts, companies."""
        created, existing = writeback.install(self.hub)
        return InstallReport(created=created, existing=existing)

    def uninstall(self) -> InstallReport:
        """Properties are left in place (archiving them drops their values in HubSpot)."""
        return InstallReport(problems=["learnloop's properties are left in HubSpot; an admin "
                                       "can archive the 'learnloop' group's properties under "
                                       "Settings > Properties"])

    def discover_fields(self) -> list[FieldInfo]:
        """Every deal property, for the mapping editor."""
        data = self.hub.json("read the deal properties",
                             self.hub.api("crm.properties.core_api").get_all, "deals",
                             archived=False) or {}
        return [FieldInfo(str(p["name"]), str(p.get("label") or p["name"]),
                          str(p.get("type") or "string")) for p in data.get("results") or []]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Deals, contacts, companies and emails changed since the cursor, page by page."""
        return sync.pull(self.config, self.mapping, cursor, self.hub)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Deal properties (batches of 100), notes, and accepted playbooks."""
        intents, results = split_valid(intents)
        fields = [i for i in intents if i.surface == FIELDS]
        results += writeback.deliver_fields(self.hub, fields) if fields else []
        for intent in intents:
            if intent.surface == NOTE:
                results.append(writeback.deliver_note(self.hub, intent))
            elif intent.surface == TEMPLATE:
                results.append(templates.deliver_template(self.hub, intent))
            elif intent.surface != FIELDS:
                results.append(Delivery(intent.id, ok=False, permanent=True,
                                        error=f"hubspot cannot write {intent.surface}"))
        return results


def _scopes(exc: Exception) -> list[str]:
    if isinstance(exc, HubSpotError) and exc.status == 403 and "scope " in str(exc):
        return [str(exc).split("scope ", 1)[1].split(",")[0].split()[0]]
    return []


__all__ = ["HubSpotConfig", "HubSpotConnector"]
