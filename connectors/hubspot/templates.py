"""Accepted playbooks written back: marketing email drafts, sequences, or checklists."""

from __future__ import annotations

from connectors.hubspot.client import Hub
from core.contract import Delivery, Intent, TemplatePayload


def deliver_template(hub: Hub, intent: Intent) -> Delivery:
    """A sequence playbook as a checklist: a private-app token cannot edit sequences."""
    payload = TemplatePayload.from_json(intent.payload)
    return Delivery(intent.id, ok=True, checklist=payload.checklist(
        f"HubSpot (Automation > Sequences, sequence {intent.target})"))
