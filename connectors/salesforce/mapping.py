"""Salesforce records (flattened: `Owner.Name`, as REST JSON and Bulk CSV both become) ->
learnloop items, events, links and enrollments.

Opportunities are items of kind `opportunity`: the close date, amount and probability as they
stand are the plan; every `OpportunityHistory` row that changed the stage is a
`status_changed` event (stage names, so `commit_on: stage:<StageName>` commits the plan when
the opportunity entered that stage) and every close-date, amount and probability change a
`plan_changed` event, so core.plans reads the committed plan from the history. Accounts and
contacts are items linked to their opportunities; Tasks and Events are `activity` events on
the record they are about; CampaignMembers and cadence step trackers are enrollments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.contract import EnrollmentRecord, EventRecord, ItemRecord, LinkRecord, MappingField
from core.segments import employee_band

MAPPING_FIELDS = (
    MappingField("id", "Record id (always the Salesforce Id)", required=False),
    MappingField("planned_due", "Opportunity close date field (default CloseDate)"),
    MappingField("planned_amount", "Opportunity amount field (default Amount)"),
    MappingField("planned_probability", "Opportunity probability field, in percent "
                 "(default Probability)"),
)
DEFAULTS = {"planned_due": "CloseDate", "planned_amount": "Amount",
            "planned_probability": "Probability"}
STATUS_CHANGED, PLAN_CHANGED, ACTIVITY = "status_changed", "plan_changed", "activity"
PREFIXES = {"006": "opportunity", "001": "account", "003": "contact", "00Q": "lead"}
LEARNLOOP_TASK = "learnloop:"  # the subject learnloop's own completed Tasks start with

OPPORTUNITY = ("Id", "Name", "AccountId", "OwnerId", "Owner.Name", "StageName", "Type",
               "LeadSource", "ForecastCategoryName", "IsClosed", "IsWon", "CreatedDate",
               "SystemModstamp")
HISTORY = ("Id", "OpportunityId", "StageName", "Amount", "CloseDate", "Probability",
           "CreatedDate", "CreatedById")
ACCOUNT = ("Id", "Name", "Industry", "NumberOfEmployees", "BillingCountry", "CreatedDate",
           "SystemModstamp")
CONTACT = ("Id", "Name", "AccountId", "Title", "LeadSource", "CreatedDate", "SystemModstamp")
TASK = ("Id", "Subject", "Status", "Type", "TaskSubtype", "ActivityDate", "WhatId", "WhoId",
        "OwnerId", "CompletedDateTime", "CreatedDate", "SystemModstamp")
EVENT = ("Id", "Subject", "Type", "StartDateTime", "EndDateTime", "WhatId", "WhoId",
         "OwnerId", "CreatedDate", "SystemModstamp")
MEMBER = ("Id", "CampaignId", "Campaign.Name", "Campaign.Type", "ContactId", "LeadId",
          "Status", "HasResponded", "FirstRespondedDate", "CreatedDate", "SystemModstamp")
TRACKER = ("Id", "ActionCadenceId", "ActionCadenceName", "ActionCadenceStepId",
           "ActionCadenceStepVariantId", "TargetId", "State", "StepType", "StepTitle",
           "CompletionReason", "CompletionDate", "CreatedDate", "SystemModstamp")
VARIANT = ("Id", "ActionCadenceStepId", "Name", "SplitPercentage", "TemplateId")


def chosen_fields(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {**DEFAULTS, **{k: str(v) for k, v in mapping.items() if k in DEFAULTS}}


def opportunity_fields(mapping: Mapping[str, Any]) -> list[str]:
    """The Opportunity fields a sync reads (the mapped plan fields and extra segments too)."""
    extra = [*chosen_fields(mapping).values(), *(str(s) for s in mapping.get("segments", []))]
    out = list(OPPORTUNITY)
    for name in extra:
        if name.lower() not in {f.lower() for f in out}:
            out.append(name)
    return out


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A REST record as `{"Owner.Name": ...}` (attributes dropped), like a Bulk CSV row."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse_time(value: Any) -> dt.datetime | None:
    """Salesforce datetimes (`2026-01-05T09:00:00.000+0000`) and dates, as aware UTC."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        text = text.replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


def number(value: Any) -> float | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None


def truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def ext_of(record_id: Any) -> str | None:
    """The item id of the record a WhatId/WhoId points at (opportunity, account, contact)."""
    rid = text(record_id)
    kind = PREFIXES.get(rid[:3]) if rid else None
    return f"{kind}:{rid}" if kind and kind != "lead" else None




def _plan_value(name: str, raw: Any) -> str | float | None:
    if name == "planned_due":
        when = parse_time(raw)
        return when.isoformat() if when else None
    value = number(raw)
    if name == "planned_probability" and value is not None:
        return value / 100
    return value


HISTORY_PLAN = (("CloseDate", "planned_due"), ("Amount", "planned_amount"),
                ("Probability", "planned_probability"))


def history_events(ext: str, rows: Iterable[Mapping[str, Any]]) -> list[EventRecord]:
    """Stage changes and plan changes from an opportunity's OpportunityHistory rows (each row
    carries the values after a change: compare each with the row before it)."""
    ordered = sorted(rows, key=lambda r: (str(r.get("CreatedDate") or ""), str(r.get("Id"))))
    events: list[EventRecord] = []
    previous: Mapping[str, Any] | None = None
    for row in ordered:
        when = parse_time(row.get("CreatedDate"))
        hid = text(row.get("Id"))
        if when is None or hid is None:
            continue
        actor = text(row.get("CreatedById"))
        stage = text(row.get("StageName"))
        before = text(previous.get("StageName")) if previous is not None else None
        if stage is not None and (previous is None or stage != before):
            events.append(EventRecord(ext, f"{ext}:history:{hid}:stage", when, STATUS_CHANGED,
                                      actor=actor, attributes={
                                          "from": before, "to": stage,
                                          "source": "salesforce OpportunityHistory"}))
        if previous is not None:
            for field, name in HISTORY_PLAN:
                old, new = _plan_value(name, previous.get(field)), _plan_value(name, row.get(
                    field))
                if old != new:
                    events.append(EventRecord(
                        ext, f"{ext}:history:{hid}:{field}", when, PLAN_CHANGED, actor=actor,
                        attributes={"field": name, "from": old, "to": new,
                                    "source": "salesforce OpportunityHistory"}))
        previous = row
    return events


def opportunity_item(r: Mapping[str, Any], mapping: Mapping[str, Any],
                     history: Iterable[Mapping[str, Any]] = ()
                     ) -> tuple[ItemRecord, list[EventRecord], list[LinkRecord]]:
    """One opportunity (flattened), with the events of its history rows and its account link.

    Raises:
        KeyError, ValueError: for a record without an id (quarantined by the caller).
    """
    rid = str(r["Id"])
    if not rid.strip():
        raise ValueError("the opportunity has an empty Id")
    chosen = chosen_fields(mapping)
    ext = f"opportunity:{rid}"
    closed, won = truthy(r.get("IsClosed")), truthy(r.get("IsWon"))
    close = parse_time(r.get(chosen["planned_due"]))
    if r.get(chosen["planned_due"]) not in (None, "") and close is None:
        raise ValueError(f"unreadable close date {r.get(chosen['planned_due'])!r}")
    amount = number(r.get(chosen["planned_amount"]))
    probability = number(r.get(chosen["planned_probability"]))
    events = history_events(ext, history)
    segments: dict[str, str] = {}
    for key, field in (("type", "Type"), ("lead_source", "LeadSource"),
                       ("forecast_category", "ForecastCategoryName")):
        if text(r.get(field)):
            segments[key] = str(r[field])
    owner = text(r.get("Owner.Name")) or text(r.get("OwnerId"))
    if owner:
        segments["owner"] = owner
    for name in mapping.get("segments", []):
        if text(r.get(str(name))):
            segments[str(name)] = str(r[str(name)])
    created = parse_time(r.get("CreatedDate"))
    item = ItemRecord(
        external_id=ext, title=str(r.get("Name") or ""), kind="opportunity", unit="days",
        segments=segments, status="done" if closed else "open", planned_due=close,
        planned_amount=amount if amount is not None and amount > 0 else None,
        planned_probability=probability / 100 if probability is not None
        and 0 <= probability <= 100 else None,
        estimated_at=created, actual_start=created,
        actual_end=close if closed else None,
        actual_amount=amount if closed and won else None,
        outcome=("won" if won else "lost") if closed else None,
        source_updated_at=parse_time(r.get("SystemModstamp")),
        raw={"id": rid, "stage": r.get("StageName")})
    links = [LinkRecord(ext, f"account:{r['AccountId']}", "company")
             if text(r.get("AccountId")) else LinkRecord.cleared(ext, "company")]
    return item, events, links


def account_item(r: Mapping[str, Any]) -> ItemRecord:
    """An account: industry, employee band and billing country as segments."""
    rid = str(r["Id"])
    segments = {}
    if text(r.get("Industry")):
        segments["industry"] = str(r["Industry"]).lower()
    band = employee_band(number(r.get("NumberOfEmployees")))
    if band:
        segments["employee_band"] = band
    if text(r.get("BillingCountry")):
        segments["billing_country"] = str(r["BillingCountry"])
    return ItemRecord(external_id=f"account:{rid}", title=str(r.get("Name") or rid),
                      kind="account", segments=segments,
                      estimated_at=parse_time(r.get("CreatedDate")),
                      source_updated_at=parse_time(r.get("SystemModstamp")), raw={"id": rid})


def contact_item(r: Mapping[str, Any]) -> tuple[ItemRecord, list[LinkRecord]]:
    """A contact (lead source as a segment) and its link to its account."""
    rid = str(r["Id"])
    ext = f"contact:{rid}"
    segments = {"lead_source": str(r["LeadSource"])} if text(r.get("LeadSource")) else {}
    item = ItemRecord(external_id=ext, title=str(r.get("Name") or rid), kind="contact",
                      segments=segments, estimated_at=parse_time(r.get("CreatedDate")),
                      source_updated_at=parse_time(r.get("SystemModstamp")), raw={"id": rid})
    links = [LinkRecord(ext, f"account:{r['AccountId']}", "company")
             if text(r.get("AccountId")) else LinkRecord.cleared(ext, "company")]
    return item, links


def activity_event(r: Mapping[str, Any], sobject: str) -> EventRecord | None:
    """A Task or Event as an `activity` event on the opportunity, account or contact it is
    about (learnloop's own Tasks and activities on other records: None)."""
    subject = str(r.get("Subject") or "")
    if subject.startswith(LEARNLOOP_TASK):
        return None
    on = ext_of(r.get("WhatId")) or ext_of(r.get("WhoId"))
    if on is None:
        return None
    when = parse_time(r.get("CompletedDateTime") or r.get("StartDateTime")
                      or r.get("ActivityDate") or r.get("CreatedDate"))
    if when is None:
        raise ValueError(f"the {sobject} has no date")
    attrs = {"object": sobject, "subject": subject[:200], "type": text(r.get("Type")),
             "subtype": text(r.get("TaskSubtype")), "status": text(r.get("Status")),
             "contact": ext_of(r.get("WhoId"))}
    return EventRecord(on, f"{sobject.lower()}:{r['Id']}", when, ACTIVITY,
                       actor=text(r.get("OwnerId")),
                       attributes={k: v for k, v in attrs.items() if v is not None})


def member_records(r: Mapping[str, Any]) -> tuple[ItemRecord, EnrollmentRecord, list[LinkRecord]]:
    """A CampaignMember as an enrollment: the campaign is the test, the status the outcome."""
    rid = str(r["Id"])
    ext = f"campaign-member:{rid}"
    campaign = text(r.get("Campaign.Name")) or str(r.get("CampaignId"))
    status = text(r.get("Status"))
    responded = truthy(r.get("HasResponded"))
    created = parse_time(r.get("CreatedDate"))
    test = f"campaign {campaign}"[:200]
    segments = {"test": test[:100]}
    if text(r.get("Campaign.Type")):
        segments["campaign_type"] = str(r["Campaign.Type"])
    item = ItemRecord(
        external_id=ext, title=f"{campaign}: {status or 'member'}", kind="enrollment",
        segments=segments, status="done" if responded else "open",
        planned_start=created, actual_start=created, estimated_at=created,
        actual_end=(parse_time(r.get("FirstRespondedDate")) or created) if responded else None,
        outcome=(status or "responded").lower() if responded else None,
        source_updated_at=parse_time(r.get("SystemModstamp")), raw={"id": rid, "status": status})
    contact = text(r.get("ContactId"))
    unit = f"contact:{contact}" if contact else None
    links = [LinkRecord(ext, unit, "enrollment_of")] if unit else []
    return item, EnrollmentRecord(ext, test, "default", unit=unit, assigned_at=created), links


def tracker_records(r: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                    steps: Mapping[str, Sequence[Mapping[str, Any]]]
                    ) -> tuple[ItemRecord, EnrollmentRecord, list[LinkRecord]]:
    """A cadence step tracker as an enrollment: the cadence's step is the test, the step
    variant the arm (its split percentage the expected split), completion the outcome."""
    rid = str(r["Id"])
    ext = f"step-tracker:{rid}"
    cadence = text(r.get("ActionCadenceName")) or str(r.get("ActionCadenceId"))
    step_id = str(r.get("ActionCadenceStepId") or "")
    title = text(r.get("StepTitle")) or step_id
    test = f"cadence {cadence} step {title}"[:200]
    variant = variants.get(str(r.get("ActionCadenceStepVariantId") or ""))
    arm = str(variant.get("Name") or variant.get("Id")) if variant else "default"
    siblings = steps.get(step_id, [])
    split = {str(v.get("Name") or v.get("Id")): (number(v.get("SplitPercentage")) or 0) / 100
             for v in siblings} if len(siblings) > 1 else None
    state = text(r.get("State")) or ""
    done = state.lower() == "completed" or text(r.get("CompletionDate")) is not None
    created = parse_time(r.get("CreatedDate"))
    target = text(r.get("TargetId"))
    unit = ext_of(target)
    item = ItemRecord(
        external_id=ext, title=test, kind="enrollment", segments={"test": test[:100]},
        status="done" if done else "open", planned_start=created, actual_start=created,
        estimated_at=created,
        actual_end=(parse_time(r.get("CompletionDate")) or created) if done else None,
        outcome=(text(r.get("CompletionReason")) or "completed").lower() if done else None,
        source_updated_at=parse_time(r.get("SystemModstamp")),
        raw={"id": rid, "variant": variant.get("Id") if variant else None})
    links = [LinkRecord(ext, unit, "enrollment_of")] if unit else []
    enrollment = EnrollmentRecord(ext, test, arm[:200], unit=unit, assigned_at=created,
                                  random=split is not None, expected_split=split)
    return item, enrollment, links
