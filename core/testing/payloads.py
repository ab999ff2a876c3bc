"""A valid write-back payload per surface, as the learning run and the policy queue them.

The one place the kit builds payloads: when `core/contract.py` gains typed payloads, switch
`payload_for` to build them and every connector's conformance run follows.
"""

from __future__ import annotations

from typing import Any

from core.contract import COMMENT, FIELDS, INSIGHTS, LINK, NOTE, PROPERTY, TABLE, TEMPLATE

ITEM_SURFACES = frozenset({FIELDS, COMMENT, PROPERTY, LINK, NOTE, TABLE})
"""Surfaces written onto one item (their targets are pulled items' ids)."""

TEMPLATE_TASKS = (("Fix login bug", 8.0), ("Write release note", 1.0))
"""The tasks (name, estimate in hours) a harness seeds in its template; the TEMPLATE payload
plans the first one."""


def payload_for(surface: str, marker: str) -> dict[str, Any]:
    """A payload for `surface` whose text carries `marker`, shaped like the product's own:
    FIELDS/COMMENT/PROPERTY/LINK as `core.learning.run.queue_writeback` queues them, INSIGHTS as
    `queue_insights`, TEMPLATE as `core.policy.accept`; NOTE and TABLE have no producer yet and
    follow the issue's description (a note on a record; a table copy with learnloop's columns).

    Raises:
        ValueError: for a surface the contract does not define.
    """
    fields: dict[str, Any] = {
        "unit": "hours", "delta": None, "forecast_p50": 8.0, "forecast_p80": 9.5,
        "forecast_p90": 11.0, "forecast_finish_p80": "2025-03-20", "effort_factor": 1.25,
        "insight": f"P80 for this item: 9.5 hours (1.2x the estimate of 8) [{marker}]",
    }
    name, estimate = TEMPLATE_TASKS[0]
    payloads: dict[str, dict[str, Any]] = {
        FIELDS: fields,
        COMMENT: {"text": f"learnloop: P80 for this item: 9.5 hours [{marker}]"},
        PROPERTY: {**fields, "item_id": 1},
        LINK: {"url": "http://learnloop.local/items/1",
               "title": f"learnloop: forecast and evidence [{marker}]"},
        NOTE: {"title": "learnloop", "text": f"learnloop: this deal slipped 12 days [{marker}]",
               "status": "won"},
        TABLE: {"columns": ["forecast_p80", "insight"], "values": {
            "forecast_p80": 9.5, "insight": f"runs over [{marker}]"}},
        INSIGHTS: {"as_of": "2025-03-01T00:00:00+00:00",
                   "columns": ["finding", "n", "effect", "80% low", "80% high", "q"],
                   "rows": [[f"Type Bug items took 1.6x their estimate [{marker}]", 24, 1.6,
                             1.3, 2.0, 0.004]]},
        TEMPLATE: {"name": "bugfix", "version": 2, "kind": "project",
                   "rendered": [{"name": name, "estimate": estimate, "plan_p50": 10.0,
                                 "plan_p80": 12.0, "rule": "effort:issuetype=Bug"}],
                   "why": f"proposal #1 accepted by owner@example.com: bugs run long [{marker}]"},
    }
    if surface not in payloads:
        raise ValueError(f"no payload for surface {surface!r}; surfaces: {sorted(payloads)}")
    return payloads[surface]
