"""A valid write-back payload per surface, as the learning run and the policy queue them.

The one place the kit builds payloads, from the typed payloads of `core.contract`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.contract import (
    COMMENT,
    FIELDS,
    INSIGHTS,
    LINK,
    NOTE,
    PROPERTY,
    TEMPLATE,
    CommentPayload,
    FieldsPayload,
    InsightsPayload,
    LinkPayload,
    NotePayload,
    Payload,
    PropertyPayload,
    TemplatePayload,
    TemplateRow,
)

ITEM_SURFACES = frozenset({FIELDS, COMMENT, PROPERTY, LINK, NOTE})
"""Surfaces written onto one item (their targets are pulled items' ids)."""

TEMPLATE_TASKS = (("Fix login bug", 8.0), ("Write release note", 1.0))
"""The tasks (name, estimate in hours) a harness seeds in its template; the TEMPLATE payload
plans the first one."""


def payload_for(surface: str, marker: str) -> dict[str, Any]:
    """A payload for `surface` whose text carries `marker`, built from the surface's typed
    payload (`core.contract.PAYLOADS`) and stored as the outbox stores it (`to_json()`).

    Raises:
        ValueError: for a surface the contract does not define.
    """
    fields = FieldsPayload(
        unit="hours", delta=None, forecast_p50=8.0, forecast_p80=9.5, forecast_p90=11.0,
        forecast_finish_p80=dt.date(2025, 3, 20), effort_factor=1.25, risk="medium",
        insight=f"P80 for this item: 9.5 hours (1.2x the estimate of 8) [{marker}]")
    name, estimate = TEMPLATE_TASKS[0]
    payloads: dict[str, Payload] = {
        FIELDS: fields,
        COMMENT: CommentPayload(text=f"learnloop: P80 for this item: 9.5 hours [{marker}]"),
        PROPERTY: PropertyPayload(**fields.model_dump(exclude_unset=True), item_id=1),
        LINK: LinkPayload(url="http://learnloop.local/items/1",
                          title=f"learnloop: forecast and evidence [{marker}]"),
        NOTE: NotePayload(reason="status", status="won", subject=f"learnloop [{marker}]",
                          body=f"learnloop: this deal slipped 12 days [{marker}]"),
        INSIGHTS: InsightsPayload(
            as_of=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
            columns=("finding", "n", "effect", "90% CI low", "90% CI high", "q"),
            rows=((f"Type Bug items took 1.6x their estimate [{marker}]", 24, 1.6, 1.3, 2.0,
                   0.004),)),
        TEMPLATE: TemplatePayload(
            name="bugfix", version=2, kind="project",
            rendered=(TemplateRow(name=name, estimate=estimate, plan_p50=10.0, plan_p80=12.0,
                                  rule="effort:issuetype=Bug"),),
            why=f"proposal #1 accepted by owner@example.com: bugs run long [{marker}]"),
    }
    if surface not in payloads:
        raise ValueError(f"no payload for surface {surface!r}; surfaces: {sorted(payloads)}")
    return payloads[surface].to_json()
