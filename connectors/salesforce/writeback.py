"""Install learnloop's custom fields (Metadata API) and their field-level security (a permission
set assigned to the integration user), and deliver: field values through sObject collections
(200 a call, a failed record retried alone) and one completed Task per status or risk-band
change, edited in place on redelivery."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.salesforce.client import (
    CREATE,
    WRITE,
    Org,
    SalesforceError,
    quote,
    soql,
)
from connectors.salesforce.mapping import LEARNLOOP_TASK
from core.contract import FIELD_TYPES, Delivery, FieldsPayload, Intent, NotePayload

BATCH = 200
PERMISSION_SET = "Learnloop_Writeback"
TASK_MARK = "[learnloop task "
SOBJECT = {"opportunity": "Opportunity", "account": "Account", "contact": "Contact"}
# payload value -> (custom field on Opportunity, label, Metadata API type and its attributes)
FIELDS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "forecast_finish_p80": ("Learnloop_P80_Close_Date__c", "learnloop P80 close date", "Date",
                            {}),
    "win_probability": ("Learnloop_Win_Probability__c", "learnloop win probability",
                        "Percent", {"precision": 5, "scale": 2}),
    "risk": ("Learnloop_Slip_Risk__c", "learnloop slip risk", "Text", {"length": 10}),
    "insight": ("Learnloop_Insight__c", "learnloop insight", "LongTextArea",
                {"length": 4000, "visibleLines": 3}),
}
RETRYABLE = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG",
             "UNKNOWN_EXCEPTION"}
MISSING_FIELD = {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"}
NO_ACCESS = ("INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "API_DISABLED_FOR_ORG")


WRITTEN: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    k: v for k, v in FIELDS.items() if k in FIELD_TYPES}
"""The fields learnloop writes: those whose payload value core's FieldsPayload has."""


def split_target(target: str) -> tuple[str, str]:
    """`opportunity:006...` -> ("Opportunity", "006...").

    Raises:
        ValueError: for a target that names no opportunity, account or contact.
    """
    prefix, _, rid = target.partition(":")
    if prefix not in SOBJECT or not rid.isalnum() or len(rid) not in (15, 18):
        raise ValueError(f"{target!r} is not a Salesforce record (opportunity:<Id>, "
                         "account:<Id>, contact:<Id>)")
    return SOBJECT[prefix], rid


# -- install --------------------------------------------------------------------------------
def _listed(found: Any) -> list[Any]:
    if found is None:
        return []
    return [f for f in (found if isinstance(found, list) else [found])
            if getattr(f, "fullName", None)]


def no_access(exc: SalesforceError, what: str) -> SalesforceError:
    """A refusal for lack of permission, as one plain line."""
    if exc.code in NO_ACCESS or "INSUFFICIENT_ACCESS" in str(exc):
        return SalesforceError(f"the Salesforce user learnloop signs in as lacks the "
                               f"permission to {what} (it needs Modify Metadata or Customize "
                               "Application, and Assign Permission Sets; see the connector's "
                               "README)", exc.status, exc.code, permanent=True)
    return exc


def install(org: Org, username: str) -> tuple[list[str], list[str], list[str]]:
    """Create learnloop's custom fields on Opportunity, the permission set granting them and
    its assignment to the integration user where missing (a second run creates nothing).

    Returns:
        (created, existing, problems).

    Raises:
        SalesforceError: one line naming the permission that is missing.
    """
    created: list[str] = []
    existing: list[str] = []
    problems: list[str] = []
    names = {f"Opportunity.{name}": (name, label, typ, extra)
             for name, label, typ, extra in FIELDS.values()}
    try:
        found = org.call("read learnloop's custom fields", lambda sf: org.mdapi(
            sf).CustomField.read(list(names)))
        have = {f.fullName for f in _listed(found)}
        missing = [full for full in names if full not in have]
        existing += [full for full in names if full in have]
        if missing:
            def create(sf: Any) -> None:
                md = org.mdapi(sf)
                md.CustomField.create([md.CustomField(
                    fullName=full, label=names[full][1], type=md.FieldType(names[full][2]),
                    description="Written by learnloop; edited by learnloop only.",
                    **names[full][3]) for full in missing])
            org.call("create learnloop's custom fields on Opportunity", create, kind=CREATE)
            created += missing
        # readMetadata of a permission set that does not exist answers nothing at all
        # (simple-salesforce then fails on it): ask SOQL first.
        ps_ids = _permission_set_ids(org)
        ps = _listed(org.call("read learnloop's permission set", lambda sf: org.mdapi(
            sf).PermissionSet.read([PERMISSION_SET]))) if ps_ids else []
        granted = {p.field for p in (ps[0].fieldPermissions or []) if p.editable} if ps else set()
        if set(names) - granted:
            def grant(sf: Any) -> None:
                md = org.mdapi(sf)
                md.PermissionSet.upsert([md.PermissionSet(
                    fullName=PERMISSION_SET, label="learnloop write-back",
                    description="Read and edit learnloop's fields", fieldPermissions=[
                        md.PermissionSetFieldPermissions(field=full, readable=True,
                                                         editable=True) for full in names])])
            org.call("grant field-level security on learnloop's fields", grant, kind=WRITE)
            created.append(f"permission set {PERMISSION_SET}")
        else:
            existing.append(f"permission set {PERMISSION_SET}")
        assigned = assign(org, username, ps_ids)  # made just now: asked again
        if assigned is None:
            problems.append(f"assign the permission set {PERMISSION_SET} to the connected "
                            "app's Run As user (Setup > Permission Sets), or give username")
        else:
            (created if assigned else existing).append(
                f"permission set assignment to {username}")
    except SalesforceError as exc:
        raise no_access(exc, "create custom fields and grant them to itself") from None
    return created, existing, problems


def _permission_set_ids(org: Org) -> list[str]:
    """The Id of learnloop's permission set ([] before it is made)."""
    return [str(r["Id"]) for r in org.call("find learnloop's permission set", lambda sf: sf.query(
        soql(["Id"], "PermissionSet", f"Name = {quote(PERMISSION_SET)}")))["records"]]


def assign(org: Org, username: str, sets: list[str] | None = None) -> bool | None:
    """Assign the permission set to the user; True when made now, None without a user.

    `sets`: the permission set's Id as the caller already found it ([] or None: asked).
    """
    if not username:
        return None
    users = org.call("find the integration user", lambda sf: sf.query(soql(
        ["Id"], "User", f"Username = {quote(username)}")))["records"]
    sets = sets or _permission_set_ids(org)
    if not users or not sets:
        return None
    user, ps = str(users[0]["Id"]), sets[0]
    have = org.call("read the permission set assignment", lambda sf: sf.query(soql(
        ["Id"], "PermissionSetAssignment",
        f"AssigneeId = {quote(user)} AND PermissionSetId = {quote(ps)}")))["totalSize"]
    if have:
        return False
    org.call("assign learnloop's permission set", lambda sf: sf.PermissionSetAssignment.create(
        {"AssigneeId": user, "PermissionSetId": ps}), kind=CREATE)
    return True


def missing_fields(org: Org) -> list[str]:
    """learnloop's Opportunity fields the integration user cannot see (install makes them)."""
    described = org.call("describe Opportunity", lambda sf: sf.Opportunity.describe())
    have = {f["name"] for f in described.get("fields") or [] if f.get("updateable")}
    return [name for name, *_ in WRITTEN.values() if name not in have]


# -- fields ---------------------------------------------------------------------------------
def field_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The custom field values a FIELDS payload sets (None clears a field)."""
    values = FieldsPayload.from_json(payload).to_json()
    out: dict[str, Any] = {}
    for key, (name, _, typ, _) in WRITTEN.items():
        if key not in values:
            continue
        value = values[key]
        if value is not None and typ == "Percent":
            value = round(float(value) * 100, 2)
        elif value is not None and typ == "LongTextArea":
            value = str(value)[:4000]
        out[name] = value
    return out


def deliver_fields(org: Org, intents: Sequence[Intent]) -> list[Delivery]:
    """Field values through composite sObject collections, 200 records a call; a record the
    answer names as failed is retried alone (after re-provisioning when a field is gone)."""
    results: list[Delivery] = []
    rows: list[tuple[Intent, str, str, dict[str, Any]]] = []
    for intent in intents:
        try:
            sobject, rid = split_target(intent.target)
            values = field_values(intent.payload)
        except ValueError as exc:
            results.append(Delivery(intent.id, ok=False, permanent=True, error=str(exc)))
            continue
        if sobject != "Opportunity":
            results.append(Delivery(intent.id, ok=False, permanent=True, error=(
                f"learnloop writes fields on opportunities only, not {intent.target}")))
        elif not values:
            results.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
        else:
            rows.append((intent, sobject, rid, values))
    state = {"installed": False}
    pending = rows
    while pending:
        part: list[tuple[Intent, str, str, dict[str, Any]]] = []
        later: list[tuple[Intent, str, str, dict[str, Any]]] = []
        ids: set[str] = set()
        for row in pending:  # one record once per call
            (later if row[2] in ids or len(part) >= BATCH else part).append(row)
            ids.add(row[2])
        pending = later
        results += _collection(org, part, state)
    return results


def _collection(org: Org, part: list[tuple[Intent, str, str, dict[str, Any]]],
                state: dict[str, bool], alone: bool = False) -> list[Delivery]:
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": sobject}, "id": rid, **values}
        for _, sobject, rid, values in part]}
    try:
        answer = org.call("write learnloop's fields", lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json=body), kind=WRITE) or []
    except SalesforceError as exc:  # a paused quota is not permanent: retried next slot
        return [Delivery(i.id, ok=False, error=str(exc), retry_after=exc.retry_after,
                         permanent=exc.permanent) for i, *_ in part]
    out: list[Delivery] = []
    for row, result in zip(part, answer, strict=False):
        intent = row[0]
        if result.get("success"):
            out.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
            continue
        errors = result.get("errors") or [{}]
        code = str(errors[0].get("statusCode") or "")
        message = f"Salesforce refused {intent.target}: {code}: {errors[0].get('message')}"
        if code in MISSING_FIELD and not state["installed"]:
            # A field deleted under us, or its field-level security removed: provision
            # learnloop's fields again, once per delivery run, and write the record again.
            state["installed"] = True
            try:
                install(org, org.config.username)
            except SalesforceError as exc:
                out.append(Delivery(intent.id, ok=False, error=str(exc), permanent=True))
                continue
            out += _collection(org, [row], state, alone=True)
        elif not alone and (code in RETRYABLE or code in MISSING_FIELD):
            out += _collection(org, [row], state, alone=True)
        else:
            out.append(Delivery(intent.id, ok=False, error=message,
                                permanent=code not in RETRYABLE))
    for row in part[len(answer):]:  # an answer shorter than the request: try again later
        out.append(Delivery(row[0].id, ok=False, error="Salesforce answered no result for "
                            f"{row[0].target}"))
    return out


# -- completed Tasks ------------------------------------------------------------------------
def change_key(payload: NotePayload) -> str:
    """Which change a Task records (its reason, status and risk band): one Task per change."""
    seed = f"{payload.reason}|{payload.status}|{payload.risk or ''}"
    return hashlib.sha256(seed.encode()).hexdigest()[:10]


def task_fields(payload: NotePayload, key: str) -> dict[str, Any]:
    subject = payload.subject if payload.subject.startswith(LEARNLOOP_TASK) else \
        f"{LEARNLOOP_TASK} {payload.subject}"
    return {"Subject": subject[:255], "Status": "Completed",
            "ActivityDate": dt.datetime.now(dt.UTC).date().isoformat(),
            "Description": f"{payload.body}\n\n{TASK_MARK}{key}]"}


def deliver_task(org: Org, intent: Intent) -> Delivery:
    """One completed Task per status or risk-band change on the record: found by the stored
    id, else by its marker; created only when there is none."""
    try:
        sobject, rid = split_target(intent.target)
    except ValueError as exc:
        return Delivery(intent.id, ok=False, permanent=True, error=str(exc))
    payload = NotePayload.from_json(intent.payload)
    key = change_key(payload)
    values = task_fields(payload, key)
    ref = (intent.tool_ref or "").split(":")
    try:
        if len(ref) == 3 and ref[0] == "task" and ref[2] == key:
            try:
                org.call(f"edit learnloop's Task on {intent.target}",
                         lambda sf: sf.Task.update(ref[1], values), kind=WRITE)
                return Delivery(intent.id, ok=True, tool_ref=f"task:{ref[1]}:{key}")
            except SalesforceError as exc:
                if exc.status != 404:
                    raise
        found = find_task(org, sobject, rid, key)
        if found is not None:
            org.call(f"edit learnloop's Task on {intent.target}",
                     lambda sf: sf.Task.update(found, values), kind=WRITE)
            return Delivery(intent.id, ok=True, tool_ref=f"task:{found}:{key}")
        on = {"WhoId" if sobject == "Contact" else "WhatId": rid}
        made = org.call(f"add learnloop's completed Task to {intent.target}",
                        lambda sf: sf.Task.create({**values, **on}), kind=CREATE)
        return Delivery(intent.id, ok=True, tool_ref=f"task:{made['id']}:{key}")
    except SalesforceError as exc:
        return Delivery(intent.id, ok=False, error=str(exc), retry_after=exc.retry_after,
                        permanent=exc.permanent)


def find_task(org: Org, sobject: str, rid: str, key: str) -> str | None:
    """learnloop's Task for this change on the record, by the marker in its description."""
    on = "WhoId" if sobject == "Contact" else "WhatId"
    rows = org.call("look for learnloop's Task", lambda sf: sf.query_all(soql(
        ["Id", "Description"], "Task",
        f"{on} = {quote(rid)} AND Subject LIKE {quote(LEARNLOOP_TASK + '%')}",
        "CreatedDate, Id")))["records"]
    mark = f"{TASK_MARK}{key}]"
    return next((str(r["Id"]) for r in rows if mark in str(r.get("Description") or "")), None)
