"""Typed write targets and payloads: what connectors declare, and JSON that round-trips."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from connectors import registry
from core.contract import (
    FIELD_TYPES,
    FIELDS,
    NOTE,
    PAYLOADS,
    SURFACES,
    CommentPayload,
    Delivery,
    FieldsPayload,
    InsightsPayload,
    Intent,
    LinkPayload,
    NotePayload,
    Payload,
    PayloadError,
    PropertyPayload,
    TemplatePayload,
    WriteTarget,
    declared_targets,
    parse_payload,
    resolve_targets,
    split_valid,
)
from tests.fakes import FakeConfig, FakeConnector, FakeTool

FACTORIES = {**registry.available(), "fake": FakeConnector}

EXAMPLES: list[Payload] = [
    FieldsPayload(unit="hours", delta=None, forecast_p50=4.0, forecast_p80=6.5, forecast_p90=8.0,
                  forecast_finish_p80=dt.date(2025, 3, 15), effort_factor=1.6, risk="high",
                  insight="P80 for this item: 6.5 hours"),
    FieldsPayload(forecast_p80=6.5),
    PropertyPayload(forecast_p80=6.5, risk="low", item_id=7),
    CommentPayload(text="learnloop: P80 for this item: 6.5 hours"),
    LinkPayload(url="https://learnloop.example/items/7", title="learnloop: forecast"),
    NotePayload(kind="task", reason="risk", status="open", risk="high",
                subject="learnloop: risk is high", body="PAY-7: risk is high"),
    TemplatePayload.model_validate({
        "name": "Sprint", "version": 3, "kind": "project", "why": "proposal #4 accepted",
        "rendered": [{"name": "fix", "estimate": 8, "plan_p50": 12.0, "plan_p80": 16.0,
                      "rule": "effort:type=Bug"}, {"name": "docs", "estimate": 2}]}),
    InsightsPayload(as_of=dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC),
                    columns=("finding", "n", "effect"),
                    rows=(("Bugs take 2x", 120, 0.69), ("Team B is on plan", 40, None))),
]


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_every_connector_declares_valid_targets_matching_its_capabilities(kind: str) -> None:
    factory = FACTORIES[kind]
    targets = declared_targets(factory)
    assert targets, f"{kind} declares no write targets"
    assert all(isinstance(t, WriteTarget) and t.surface in SURFACES for t in targets)
    assert factory.capabilities == {t.surface for t in targets}
    for t in targets:
        assert t.description, f"{kind}: target {t.name} has no description"
        if t.surface == FIELDS:
            assert FIELD_TYPES[t.name] == t.type
    names = [(t.surface, t.name) for t in targets]
    assert len(names) == len(set(names)), f"{kind} declares a target twice"


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: f"{p.surface}-{len(p.to_json())}")
def test_a_payload_round_trips_through_json(payload: Payload) -> None:
    stored = json.loads(json.dumps(payload.to_json()))  # what the outbox keeps
    back = type(payload).from_json(stored)
    assert back == payload and back.to_json() == stored
    assert parse_payload(payload.surface, stored) == payload
    assert PAYLOADS[payload.surface] is type(payload)


def test_a_fields_payload_restricted_to_targets_stays_restricted() -> None:
    full = EXAMPLES[0]
    assert isinstance(full, FieldsPayload)
    names = ["forecast_p80", "risk", "insight", "no_such_value"]
    only = full.only(names)
    assert only.to_json() == full.json_of(names) == {
        "forecast_p80": 6.5, "risk": "high", "insight": "P80 for this item: 6.5 hours"}
    assert FieldsPayload.from_json(only.to_json()).json_of(["delta", "risk"]) == {"risk": "high"}
    cleared = FieldsPayload.from_json({"delta": None, "forecast_p80": 2.0})
    assert cleared.to_json() == {"delta": None, "forecast_p80": 2.0}  # None clears; absent keeps
    assert FieldsPayload(unit="hours").learned() is False and cleared.learned()


@pytest.mark.parametrize(("surface", "data", "named"), [
    (FIELDS, {"forecast_p80": "lots"}, "forecast_p80"),
    (FIELDS, {"x": 1}, "x"),
    (FIELDS, {"risk": "extreme"}, "risk"),
    (NOTE, {"reason": "status", "status": "done", "subject": "s"}, "body"),
    ("comment", {"text": ""}, "text"),
    ("link", {"url": "javascript:alert(1)"}, "url"),
    ("template", {"version": 0}, "version"),
    ("table", {}, "table"),
])
def test_a_bad_payload_is_one_message_naming_the_field(surface: str, data: dict[str, Any],
                                                       named: str) -> None:
    with pytest.raises(PayloadError, match=named) as err:
        parse_payload(surface, data)
    assert "\n" not in str(err.value)


def test_a_connector_answers_a_bad_payload_with_a_permanent_failure() -> None:
    tool = FakeTool()
    connector = FakeConnector(FakeConfig(items=3), tool=tool)
    good = Intent(1, "F-1", FIELDS, {"forecast_p80": 3.0})
    bad = Intent(2, "F-2", FIELDS, {"forecast_p80": "lots"})
    valid, (failed,) = split_valid([good, bad])
    assert valid == [good] and isinstance(failed, Delivery)
    assert (failed.intent_id, failed.ok, failed.permanent) == (2, False, True)
    assert str(failed.error).startswith("fields payload: forecast_p80: ")
    results = {r.intent_id: r for r in connector.deliver([good, bad])}
    assert results[1].ok and not results[2].ok and results[2].permanent
    assert tool.fields == {"F-1": {"forecast_p80": 3.0}}


@pytest.mark.parametrize(("args", "message"), [
    (("forecast_p80", "number", "tabel"), "unknown surface"),
    (("forecast_p99", "number", FIELDS), "fields can be"),
    (("forecast_p80", "text", FIELDS), "not number"),
    (("note", "email", NOTE), "not note or task"),
])
def test_a_wrong_target_fails_when_the_connector_class_is_built(args: tuple[str, str, str],
                                                                message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WriteTarget(*args)


def test_a_bare_surface_stands_for_its_standard_targets() -> None:
    targets = resolve_targets(["fields", WriteTarget("comment", "text", "comment")])
    assert {t.name for t in targets if t.surface == FIELDS} == set(FIELD_TYPES)
    assert [t.surface for t in targets].count("comment") == 1


def test_a_template_checklist_names_every_change() -> None:
    payload = EXAMPLES[6]
    assert isinstance(payload, TemplatePayload)
    steps = payload.checklist("HubSpot")
    assert steps[0] == "Open the project template 'Sprint' in HubSpot."
    assert steps[1] == "Set the estimate of 'fix' from 8 to 16 (P80, P50 12; rule effort:type=Bug)."
    assert steps[-1] == "Save it as version 3, noting why: proposal #4 accepted"
    assert len(steps) == 3  # 'docs' has no new plan: no step for it
