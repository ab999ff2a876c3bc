"""Install learnloop's properties, and deliver: deal properties in batches, one note per deal
edited in place, and accepted playbooks as email drafts or sequence checklists."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.hubspot.client import CREATE, READ, WRITE, Hub, HubSpotError
from core.contract import Delivery, FieldsPayload, Intent, NotePayload

GROUP = "learnloop"
BATCH = 100
NOTE_TO_DEAL, TASK_TO_DEAL = 214, 216
NOTE_TO_CONTACT, NOTE_TO_COMPANY = 202, 190
TASK_TO_CONTACT, TASK_TO_COMPANY = 204, 192
NOTE_MARK = "[learnloop note]"
TYPES = {"deal": "deals", "contact": "contacts", "company": "companies"}

# payload key -> (property name, label, type, fieldType, options)
DEAL_PROPERTIES: dict[str, tuple[str, str, str, str, tuple[str, ...]]] = {
    "forecast_finish_p80": ("learnloop_p80_close_date", "learnloop P80 close date", "date",
                            "date", ()),
    "risk": ("learnloop_slip_risk", "learnloop slip risk", "enumeration", "select",
             ("low", "medium", "high")),
    "insight": ("learnloop_insight", "learnloop insight", "string", "textarea", ()),
    "delta": ("learnloop_close_slip_days", "learnloop close slip (days)", "number", "number",
              ()),
    "win_probability": ("learnloop_win_probability", "learnloop win probability (0-1)",
                        "number", "number", ()),
    "recommended_variant": ("learnloop_recommended_variant", "learnloop recommended variant",
                            "string", "text", ()),
}
PEOPLE_PROPERTIES = {k: DEAL_PROPERTIES[k] for k in ("insight", "recommended_variant")}
"""A contact's and a company's: the insight, and the variant to send to their segment."""
PROPERTIES = {"deals": DEAL_PROPERTIES, "contacts": PEOPLE_PROPERTIES,
              "companies": PEOPLE_PROPERTIES}


def split_target(target: str) -> tuple[str, str]:
    """`deal:101` -> ("deals", "101").

    Raises:
        ValueError: for a target that names no deal, contact or company.
    """
    prefix, _, rid = target.partition(":")
    if prefix not in TYPES or not rid.isdigit():
        raise ValueError(f"{target!r} is not a HubSpot deal, contact or company "
                         "(deal:<id>, contact:<id>, company:<id>)")
    return TYPES[prefix], rid


# -- install --------------------------------------------------------------------------------
def install(hub: Hub) -> tuple[list[str], list[str]]:
    """Create the `learnloop` property group and learnloop's properties on deals, contacts and
    companies where missing; a second run creates nothing.

    Raises:
        HubSpotError: one line naming a missing scope and what needs it.
    """
    groups = hub.api("crm.properties.groups_api")
    core = hub.api("crm.properties.core_api")
    created: list[str] = []
    existing: list[str] = []
    for otype, wanted in PROPERTIES.items():
        scope_hint = f"create learnloop's {otype[:-1] if otype != 'companies' else 'company'} " \
                     "properties"
        have_groups = {g.get("name") for g in (hub.json(
            f"read the {otype} property groups", groups.get_all, otype) or {}).get("results")
            or []}
        if GROUP in have_groups:
            existing.append(f"{otype} group {GROUP}")
        else:
            try:
                hub.json(scope_hint, groups.create, otype,
                         {"name": GROUP, "label": "learnloop", "displayOrder": -1}, kind=CREATE)
                created.append(f"{otype} group {GROUP}")
            except HubSpotError as exc:
                if exc.status != 409:
                    raise
                existing.append(f"{otype} group {GROUP}")
        have = {p.get("name") for p in (hub.json(
            f"read the {otype} properties", core.get_all, otype, archived=False) or {}).get(
            "results") or []}
        for name, label, ptype, field_type, options in wanted.values():
            if name in have:
                existing.append(f"{otype}.{name}")
                continue
            body: dict[str, Any] = {
                "name": name, "label": label, "type": ptype, "fieldType": field_type,
                "groupName": GROUP, "description": "Written by learnloop; edited by "
                "learnloop only."}
            if options:
                body["options"] = [{"label": o, "value": o, "displayOrder": n, "hidden": False}
                                   for n, o in enumerate(options)]
            try:
                hub.json(scope_hint, core.create, otype, body, kind=CREATE)
                created.append(f"{otype}.{name}")
            except HubSpotError as exc:
                if exc.status != 409:
                    raise
                existing.append(f"{otype}.{name}")
    return created, existing


def missing_properties(hub: Hub) -> list[str]:
    """learnloop's deal properties that do not exist (install creates them)."""
    have = {p.get("name") for p in (hub.json(
        "read the deal properties", hub.api("crm.properties.core_api").get_all, "deals",
        archived=False) or {}).get("results") or []}
    return [name for name, *_ in DEAL_PROPERTIES.values() if name not in have]


# -- fields ---------------------------------------------------------------------------------
def _value(ptype: str, value: Any) -> str:
    if value is None:
        return ""  # an empty value clears the property
    if ptype == "date":
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return str(int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
                       * 1000))
    if ptype == "number":
        return f"{float(value):g}"
    return str(value)


def properties_of(otype: str, payload: Mapping[str, Any]) -> dict[str, str]:
    """The HubSpot properties a FIELDS payload sets on an object of `otype`."""
    values = FieldsPayload.from_json(payload).to_json()
    out = {}
    for key, value in values.items():
        spec = PROPERTIES[otype].get(key)
        if spec is not None:
            out[spec[0]] = _value(spec[2], value)
    return out


def _failure(intent: Intent, exc: HubSpotError) -> Delivery:
    return Delivery(intent.id, ok=False, error=str(exc), retry_after=exc.retry_after,
                    permanent=exc.permanent)


VARIANT = DEAL_PROPERTIES["recommended_variant"][0]


def variant_label(hub: Hub, template_id: str, seen: dict[str, str]) -> str:
    """A recommended variant as a rep reads it: the sales template's name with its id
    ("roi (template 90123)"), read once per delivery with a user-level token; without one
    (a private app may not read sales templates), or when it cannot be read, "email
    template 90123". A variant that is not a template id is written as it is."""
    if not template_id.isdigit():
        return template_id
    if template_id not in seen:
        try:
            found = hub.sales_template(template_id) or {}
        except HubSpotError:  # a label is a courtesy: the id alone still says which
            found = {}
        name = str(found.get("name") or "").strip()
        seen[template_id] = (f"{name} (template {template_id})" if name
                             else f"email template {template_id}")
    return seen[template_id]


def deliver_fields(hub: Hub, intents: Sequence[Intent]) -> list[Delivery]:
    """Property values in batches of 100 per object type; the records a 207 names as failed
    are retried alone, so one bad record never fails the other 99. A recommended variant is
    written with its template's name (`variant_label`)."""
    results: list[Delivery] = []
    work: dict[str, list[tuple[Intent, str, dict[str, str]]]] = {}
    labels: dict[str, str] = {}
    for intent in intents:
        try:
            otype, rid = split_target(intent.target)
            props = properties_of(otype, intent.payload)
        except ValueError as exc:
            results.append(Delivery(intent.id, ok=False, permanent=True, error=str(exc)))
            continue
        if props.get(VARIANT):
            props[VARIANT] = variant_label(hub, props[VARIANT], labels)
        if not props:
            results.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
            continue
        work.setdefault(otype, []).append((intent, rid, props))
    batch_api = hub.api("crm.objects.batch_api")
    installed: list[bool] = []
    for otype, rows in work.items():
        while rows:
            part: list[tuple[Intent, str, dict[str, str]]] = []
            later: list[tuple[Intent, str, dict[str, str]]] = []
            ids: set[str] = set()
            for row in rows:  # one input per record in a request (HubSpot refuses duplicates)
                if row[1] in ids or len(part) >= BATCH:
                    later.append(row)
                else:
                    part.append(row)
                    ids.add(row[1])
            rows = later
            results += _update(hub, batch_api, otype, part, installed)
    return results


def _update(hub: Hub, batch_api: Any, otype: str,
            part: list[tuple[Intent, str, dict[str, str]]],
            installed: list[bool]) -> list[Delivery]:
    body = {"inputs": [{"id": rid, "properties": props} for _, rid, props in part]}
    what = f"write learnloop's {otype} properties"
    try:
        data = hub.json(what, batch_api.update, otype, body, kind=WRITE) or {}
    except HubSpotError as exc:
        if exc.missing_property and not installed:
            # A new connection's first write-back, or a property deleted or renamed under
            # us: provision learnloop's properties once, then write again.
            installed.append(True)
            try:
                install(hub)
            except HubSpotError as refused:
                return [_failure(i, refused) for i, _, _ in part]
            return _update(hub, batch_api, otype, part, installed)
        if len(part) > 1 and exc.status in (400, 404):
            return [d for row in part for d in _update(hub, batch_api, otype, [row], installed)]
        return [_failure(i, exc) for i, _, _ in part]
    failed: dict[str, str] = {}
    for err in data.get("errors") or []:
        for rid in ((err or {}).get("context") or {}).get("ids") or []:
            failed[str(rid)] = str(err.get("message") or err.get("category") or "failed")
    if failed and len(part) > 1:
        out = [Delivery(i.id, ok=True, tool_ref=i.target) for i, rid, _ in part
               if rid not in failed]
        for row in part:
            if row[1] in failed:
                out += _update(hub, batch_api, otype, [row], installed)  # alone: its own fate
        return out
    if failed:
        intent = part[0][0]
        message = next(iter(failed.values()))
        return [Delivery(intent.id, ok=False, permanent=True,
                         error=f"HubSpot refused {otype[:-1]} {part[0][1]}: {message}")]
    return [Delivery(i.id, ok=True, tool_ref=i.target) for i, _, _ in part]


# -- notes ----------------------------------------------------------------------------------
def note_html(payload: NotePayload) -> str:
    return (f"<p><strong>{html.escape(payload.subject)}</strong></p>"
            f"<p>{html.escape(payload.body)}</p><p>{NOTE_MARK}</p>")


def find_note(hub: Hub, otype: str, rid: str, kind: str) -> str | None:
    """The id of learnloop's note (or task) on a record, found by its marker."""
    to = "notes" if kind == "note" else "tasks"
    body_prop = "hs_note_body" if kind == "note" else "hs_task_body"
    ids: list[str] = []
    after = None
    basic = hub.api("crm.associations.v4.basic_api")
    while True:
        kwargs: dict[str, Any] = {"limit": 500}
        if after:
            kwargs["after"] = after
        page = hub.json(f"read the {to} of {otype[:-1]} {rid}", basic.get_page, otype, rid, to,
                        **kwargs) or {}
        ids += [str(r.get("toObjectId")) for r in page.get("results") or []]
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
    batch_api = hub.api("crm.objects.batch_api")
    for start in range(0, len(ids), BATCH):
        data = hub.json(f"read the {to} of {otype[:-1]} {rid}", batch_api.read, to,
                        {"inputs": [{"id": i} for i in ids[start:start + BATCH]],
                         "properties": [body_prop], "propertiesWithHistory": []},
                        archived=False, kind=READ) or {}
        for rec in sorted(data.get("results") or [], key=lambda r: int(r.get("id") or 0)):
            if NOTE_MARK in str((rec.get("properties") or {}).get(body_prop) or ""):
                return str(rec["id"])
    return None


def deliver_note(hub: Hub, intent: Intent) -> Delivery:
    """One note (a task for a high risk, when asked) per record: edited in place by its
    stored id or its marker, created only when there is none."""
    try:
        otype, rid = split_target(intent.target)
    except ValueError as exc:
        return Delivery(intent.id, ok=False, permanent=True, error=str(exc))
    payload = NotePayload.from_json(intent.payload)
    kind = payload.kind
    to = "notes" if kind == "note" else "tasks"
    now = str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    if kind == "note":
        props = {"hs_note_body": note_html(payload), "hs_timestamp": now}
    else:
        props = {"hs_task_subject": payload.subject, "hs_task_body": note_html(payload),
                 "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH",
                 "hs_timestamp": now}
    basic = hub.api("crm.objects.basic_api")
    ref = intent.tool_ref
    ref_kind, _, ref_id = (ref or "").rpartition(":")
    try:
        note_id = ref_id if ref and ref_kind == kind and ref_id.isdigit() else None
        if note_id is not None:
            try:
                hub.json(f"edit learnloop's {kind} on {intent.target}", basic.update, to,
                         note_id, {"properties": props}, kind=WRITE)
                return Delivery(intent.id, ok=True, tool_ref=f"{kind}:{note_id}")
            except HubSpotError as exc:
                if exc.status != 404:
                    raise
        note_id = find_note(hub, otype, rid, kind)
        if note_id is not None:
            hub.json(f"edit learnloop's {kind} on {intent.target}", basic.update, to, note_id,
                     {"properties": props}, kind=WRITE)
            return Delivery(intent.id, ok=True, tool_ref=f"{kind}:{note_id}")
        type_id = {("note", "deals"): NOTE_TO_DEAL, ("task", "deals"): TASK_TO_DEAL,
                   ("note", "contacts"): NOTE_TO_CONTACT, ("task", "contacts"): TASK_TO_CONTACT,
                   ("note", "companies"): NOTE_TO_COMPANY,
                   ("task", "companies"): TASK_TO_COMPANY}[(kind, otype)]
        made = hub.json(f"add learnloop's {kind} to {intent.target}", basic.create, to, {
            "properties": props, "associations": [{"to": {"id": rid}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]},
            kind=CREATE) or {}
        return Delivery(intent.id, ok=True, tool_ref=f"{kind}:{made['id']}")
    except HubSpotError as exc:
        return _failure(intent, exc)
