"""Accepted playbooks written back for their owner.

- `email-template:<Id>`: the EmailTemplate's subject and bodies are set from the variant the
  playbook recommends (an EmailTemplate named by Id, Name or DeveloperName), and its name
  carries learnloop's version (the HTML body a comment with the reason) -- where `describe()`
  says those fields are updateable and the template is not builder content; otherwise a
  checklist with the exact steps.
- `cadence-step:<ActionCadenceStepId>`: the step's variants' split percentages: the
  recommended variant gets `100 - HOLDOUT`, the others share the holdout (so the sample-ratio
  check and the comparison go on); only where variant testing is on (`SplitPercentage`
  updateable), else a checklist.
"""

from __future__ import annotations

import html
import re
from typing import Any

from connectors.salesforce.client import WRITE, Org, SalesforceError, quote, soql
from core.contract import Delivery, Intent, TemplatePayload, TemplateRow

HOLDOUT = 10  # percent kept on the other variants of a step
MARK = " (learnloop v"
NAME_LIMIT = 80  # EmailTemplate.Name
ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


def split_target(target: str) -> tuple[str, str]:
    kind, _, rid = target.partition(":")
    if kind not in ("email-template", "cadence-step") or not ID.match(rid):
        raise ValueError(f"{target!r} is not a Salesforce template target "
                         "(email-template:<Id> or cadence-step:<Id>)")
    return kind, rid


def _everyone(row: TemplateRow) -> bool:
    return row.name in ("segment all", "all", "") or row.name.endswith("=all")


def recommended(payload: TemplatePayload) -> str | None:
    """The variant the playbook recommends for everyone (else for its first segment)."""
    rows = [r for r in payload.rendered if r.variant]
    best = next((r for r in rows if _everyone(r)), rows[0] if rows else None)
    return best.variant if best else None


def labelled(name: str, version: int) -> str:
    base = name.split(MARK, 1)[0].strip() or "template"
    suffix = f"{MARK}{version})"
    return base[:NAME_LIMIT - len(suffix)] + suffix


def updateable(org: Org, sobject: str) -> set[str]:
    described = org.call(f"describe {sobject}", lambda sf: getattr(sf, sobject).describe())
    return {f["name"] for f in described.get("fields") or [] if f.get("updateable")}


def deliver_template(org: Org, intent: Intent) -> Delivery:
    """Write one accepted template version (see the module docstring)."""
    payload = TemplatePayload.from_json(intent.payload)
    try:
        kind, rid = split_target(intent.target)
    except ValueError as exc:
        return Delivery(intent.id, ok=False, permanent=True, error=str(exc))
    try:
        if kind == "email-template":
            return email_template(org, intent, rid, payload)
        return cadence_step(org, intent, rid, payload)
    except SalesforceError as exc:
        return Delivery(intent.id, ok=False, error=str(exc), retry_after=exc.retry_after,
                        permanent=exc.permanent)


def _template_by(org: Org, variant: str) -> dict[str, Any] | None:
    if ID.match(variant) and variant.startswith("00X"):
        where = f"Id = {quote(variant)}"
    else:
        where = f"Name = {quote(variant)} OR DeveloperName = {quote(variant)}"
    fields = ["Id", "Name", "Subject", "Body", "HtmlValue"]
    rows = org.call("read the recommended email template", lambda sf: sf.query(soql(
        fields, "EmailTemplate", where)))["records"]
    if rows or where.startswith("Id"):
        return rows[0] if rows else None
    try:  # a cadence step variant's name: the email template it sends
        used = org.call("read the recommended cadence variant", lambda sf: sf.query(soql(
            ["TemplateId"], "ActionCadenceStepVariant",
            f"Name = {quote(variant)} AND TemplateId != null")))["records"]
    except SalesforceError as exc:
        if exc.code in ("INVALID_TYPE", "NOT_FOUND"):  # no Sales Engagement in this org
            return None
        raise
    if not used:
        return None
    tid = str(used[0]["TemplateId"])
    rows = org.call("read the recommended email template", lambda sf: sf.query(soql(
        fields, "EmailTemplate", f"Id = {quote(tid)}")))["records"]
    return rows[0] if rows else None


def email_template(org: Org, intent: Intent, rid: str, payload: TemplatePayload) -> Delivery:
    current = org.call(f"read email template {rid}", lambda sf: sf.EmailTemplate.get(rid))
    can = updateable(org, "EmailTemplate")
    name = str(current.get("Name") or payload.name)
    if current.get("IsBuilderContent") or not {"Name", "Subject", "Body"} <= can:
        return Delivery(intent.id, ok=True, checklist=email_checklist(payload, name))
    variant = recommended(payload)
    source = _template_by(org, variant) if variant else None
    values: dict[str, Any] = {"Name": labelled(name, payload.version)}
    if source is not None and source.get("Id") != current.get("Id"):
        values["Subject"] = source.get("Subject")
        values["Body"] = source.get("Body")
        if "HtmlValue" in can and source.get("HtmlValue"):
            values["HtmlValue"] = source.get("HtmlValue")
    why = " ".join(payload.why.split())
    if "HtmlValue" in can:
        body = str(values.get("HtmlValue") or current.get("HtmlValue") or "")
        body = re.sub(r"\s*<!-- learnloop v\d+:.*?-->", "", body, flags=re.S)
        values["HtmlValue"] = f"{body}\n<!-- learnloop v{payload.version}: " \
                              f"{html.escape(why).replace('--', '- -')} -->"
    org.call(f"update email template {rid}", lambda sf: sf.EmailTemplate.update(rid, values),
             kind=WRITE)
    return Delivery(intent.id, ok=True, tool_ref=f"email-template:{rid}")


def email_checklist(payload: TemplatePayload, name: str) -> list[str]:
    where = f"Salesforce > App Launcher > Email Templates > '{name}'"
    steps = [f"Open {where} and click Edit."]
    variant = recommended(payload)
    if variant:
        steps.append(f"Copy the subject and body of the email template '{variant}' into it.")
    steps.append(f"Save it; this is learnloop version {payload.version}, because: "
                 f"{payload.why}")
    return steps


def splits(variants: list[dict[str, Any]], winner: str) -> dict[str, int] | None:
    """Variant id -> split percentage: the winner 100 - HOLDOUT, the others the holdout."""
    best = next((v for v in variants if winner in (v.get("Name"), v.get("Id"))), None)
    if best is None:
        return None
    others = [v for v in variants if v is not best]
    if not others:
        return {str(best["Id"]): 100}
    share, left = divmod(HOLDOUT, len(others))
    out = {str(v["Id"]): share + (1 if n < left else 0) for n, v in enumerate(others)}
    out[str(best["Id"])] = 100 - sum(out.values())
    return out


def cadence_step(org: Org, intent: Intent, rid: str, payload: TemplatePayload) -> Delivery:
    variants = org.call(f"read the variants of cadence step {rid}", lambda sf: sf.query(soql(
        ["Id", "Name", "SplitPercentage"], "ActionCadenceStepVariant",
        f"ActionCadenceStepId = {quote(rid)}", "Name")))["records"]
    winner = recommended(payload)
    wanted = splits(variants, winner) if winner else None
    if wanted is None or "SplitPercentage" not in updateable(org, "ActionCadenceStepVariant"):
        return Delivery(intent.id, ok=True, checklist=cadence_checklist(
            payload, rid, variants, wanted))
    now = {str(v["Id"]): int(v.get("SplitPercentage") or 0) for v in variants}
    # Lowered splits first: a step's variants may never total more than 100 on the way.
    order = sorted(wanted, key=lambda vid: wanted[vid] - now.get(vid, 0))
    records = [{"attributes": {"type": "ActionCadenceStepVariant"}, "id": vid,
                "SplitPercentage": wanted[vid]} for vid in order if wanted[vid] != now.get(vid)]
    if records:
        answer = org.call(f"set the split percentages of cadence step {rid}",
                          lambda sf: sf.restful("composite/sobjects", method="PATCH",
                                                json={"allOrNone": True,
                                                      "records": records}), kind=WRITE) or []
        failed = [r for r in answer if not r.get("success")]
        if failed:
            error = (failed[0].get("errors") or [{}])[0]
            return Delivery(intent.id, ok=False, permanent=True, error=(
                f"Salesforce refused the split of cadence step {rid}: "
                f"{error.get('statusCode')}: {error.get('message')}"))
    return Delivery(intent.id, ok=True, tool_ref=f"cadence-step:{rid}")


def cadence_checklist(payload: TemplatePayload, rid: str, variants: list[dict[str, Any]],
                      wanted: dict[str, int] | None) -> list[str]:
    where = f"Salesforce > Sales Engagement > Cadences, step {rid}"
    steps = [f"Open {where} and click Edit."]
    if wanted:
        names = {str(v["Id"]): str(v.get("Name") or v["Id"]) for v in variants}
        parts = ", ".join(f"variant '{names[vid]}' to {share}%" for vid, share in
                          sorted(wanted.items(), key=lambda kv: -kv[1]))
        steps.append(f"Turn on variant testing if it is off, and set {parts}.")
    else:
        for row in payload.rendered:
            if row.variant:
                steps.append(f"For {row.name.removeprefix('segment ')}: send variant "
                             f"'{row.variant}' (rule {row.rule}).")
    steps.append(f"Save the cadence; this is learnloop version {payload.version}, because: "
                 f"{payload.why}")
    return steps
