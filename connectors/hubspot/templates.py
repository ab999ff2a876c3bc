"""Accepted playbooks written back for their owner to review.

- `marketing-email:<id>`: the email's **draft** is updated (never the live email, never
  published: the owner reviews and publishes). A row for every segment whose variant names a
  marketing email copies that email's subject and body into the draft; a row for one segment
  becomes an A/B variation of the email (created once, then its draft edited) carrying the
  variant's content. The draft's internal name says which learnloop version changed it and why.
- `sequence:<id>`: with a user-level OAuth token, the sequence's steps are updated through
  HubSpot's `2026-09-beta` sequences API (each step's template set to the variant's template
  id); with a private-app token (which cannot edit sequences) the delivery is a checklist with
  the exact steps for the sequence's owner.
"""

from __future__ import annotations

import copy
import html
import re
from typing import Any

from connectors.hubspot.client import (
    CREATE,
    READ,
    SEQUENCES,
    WRITE,
    Hub,
    HubSpotError,
)
from core.contract import Delivery, Intent, TemplatePayload, TemplateRow

MARK = " (learnloop v"
NAME_LIMIT = 250


def split_target(target: str) -> tuple[str, str]:
    kind, _, rid = target.partition(":")
    if kind not in ("marketing-email", "sequence") or not rid.isdigit():
        raise ValueError(f"{target!r} is not a HubSpot template target (marketing-email:<id> "
                         "or sequence:<id>)")
    return kind, rid


def labelled(name: str, payload: TemplatePayload) -> str:
    """The email's internal name with learnloop's version and reason (replacing an older one)."""
    base = name.split(MARK, 1)[0].strip() or payload.name or "email"
    text = f"{base}{MARK}{payload.version}: {' '.join(payload.why.split())})"
    return text if len(text) <= NAME_LIMIT else text[:NAME_LIMIT - 4] + "...)"


def _everyone(row: TemplateRow) -> bool:
    return row.name in ("segment all", "all", "") or row.name.endswith("=all")


def deliver_template(hub: Hub, intent: Intent) -> Delivery:
    """Write one accepted template version (see the module docstring)."""
    payload = TemplatePayload.from_json(intent.payload)
    try:
        kind, rid = split_target(intent.target)
    except ValueError as exc:
        return Delivery(intent.id, ok=False, permanent=True, error=str(exc))
    try:
        if kind == "marketing-email":
            return Delivery(intent.id, ok=True, tool_ref=marketing_draft(hub, rid, payload))
        return sequence(hub, intent, rid, payload)
    except HubSpotError as exc:
        return Delivery(intent.id, ok=False, error=str(exc), retry_after=exc.retry_after,
                        permanent=exc.permanent)


def _api(hub: Hub) -> Any:
    return hub.api("marketing.emails.marketing_emails_api")


def _email(hub: Hub, eid: str, what: str) -> dict[str, Any]:
    return dict(hub.json(what, _api(hub).get_by_id, eid) or {})


def _draft(hub: Hub, eid: str, body: dict[str, Any], what: str) -> None:
    hub.json(what, _api(hub).upsert_draft, eid, body, kind=WRITE)


def _variant_content(hub: Hub, variant: str | None, email: dict[str, Any]) -> dict[str, Any]:
    """Subject and content of the marketing email a variant names (by id); else, with a
    user-level token, of the sales template it names (a sequence step's A/B arm), poured into
    `email`'s own layout; else nothing."""
    if not variant or not str(variant).isdigit():
        return {}
    try:
        source = _email(hub, str(variant), f"read the variant email {variant}")
    except HubSpotError as exc:
        if exc.status == 404:
            return _template_content(hub, str(variant), email)
        raise
    out: dict[str, Any] = {}
    if source.get("subject"):
        out["subject"] = source["subject"]
    if isinstance(source.get("content"), dict):
        out["content"] = {k: copy.deepcopy(v) for k, v in source["content"].items()
                          if k in ("widgets", "plainTextVersion", "flexAreas")}
    return out


def _template_content(hub: Hub, template_id: str, email: dict[str, Any]) -> dict[str, Any]:
    """A sales template's subject and body as a marketing email draft's: the body goes into
    the email's primary rich-text widget (the rest of its layout is kept). Only a user-level
    token may read sales templates; nothing without one or when there is no such template."""
    tpl = hub.sales_template(template_id) or {}
    out: dict[str, Any] = {}
    if tpl.get("subject"):
        out["subject"] = str(tpl["subject"])
    body = str(tpl.get("body") or "")
    widgets = copy.deepcopy((email.get("content") or {}).get("widgets") or {})
    rich = next((w for name, w in sorted(widgets.items()) if "rich_text" in name
                 and isinstance(w, dict)), None)
    if body and rich is not None:
        rich.setdefault("body", {})["html"] = body
        out["content"] = {"widgets": widgets, "plainTextVersion": _plain(body)}
    return out


def _plain(html_text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_text)).split())


def marketing_draft(hub: Hub, eid: str, payload: TemplatePayload) -> str:
    """Update the email's draft (and its A/B variation for a segment's variant); returns the
    tool ref `marketing-email:<id>[+<variation id>]`."""
    email = _email(hub, eid, f"read marketing email {eid}")
    everyone = [r for r in payload.rendered if r.variant is not None and _everyone(r)]
    segment = [r for r in payload.rendered if r.variant is not None and not _everyone(r)]
    body: dict[str, Any] = {"name": labelled(str(email.get("name") or ""), payload)}
    if everyone:
        body.update(_variant_content(hub, everyone[0].variant, email))
    _draft(hub, eid, body, f"update the draft of marketing email {eid}")
    ref = f"marketing-email:{eid}"
    if segment:
        row = segment[0]
        name = f"{row.variant} for {row.name.removeprefix('segment ')}"
        variation = _variation(hub, eid, email, labelled(name, payload))
        content = _variant_content(hub, row.variant, email)
        _draft(hub, variation, {"name": labelled(name, payload), **content},
               f"update the A/B variation of marketing email {eid}")
        ref += f"+{variation}"
    return ref


def _variation(hub: Hub, eid: str, email: dict[str, Any], name: str) -> str:
    """The email's A/B variation: the existing one, else a new one (a draft)."""
    if (email.get("testing") or {}).get("abStatus") in ("master", "variant"):
        found = hub.json(f"read the A/B variation of marketing email {eid}",
                         _api(hub).get_ab_test_variation, eid) or {}
        return str(found["id"])
    made = hub.json(f"create an A/B variation of marketing email {eid}",
                    _api(hub).create_ab_test_variation,
                    {"contentId": eid, "variationName": name}, kind=CREATE) or {}
    return str(made["id"])


def sequence(hub: Hub, intent: Intent, sid: str, payload: TemplatePayload) -> Delivery:
    """Sequence steps through the beta API with a user-level token, else a checklist."""
    if not hub.config.oauth:
        return Delivery(intent.id, ok=True, checklist=checklist(payload, sid))
    try:
        seq = dict(hub.request(f"read sequence {sid}", "GET", f"{SEQUENCES}/{sid}", kind=READ) or {})
    except HubSpotError as exc:
        if exc.status in (401, 403):  # the app is not user-level after all
            return Delivery(intent.id, ok=True, checklist=checklist(payload, sid))
        raise
    templates = [r.variant for r in payload.rendered if r.variant and str(r.variant).isdigit()]
    steps = [s for s in seq.get("steps") or [] if s.get("actionType") == "EMAIL"]
    if not templates or not steps:
        return Delivery(intent.id, ok=True, checklist=checklist(payload, sid, seq.get("name")))
    body = {k: seq[k] for k in ("name", "settings", "dependencies", "dynamic", "folderId",
                                "userId") if k in seq}
    body["steps"] = [_step(s, str(templates[0])) for s in seq.get("steps") or []]
    hub.request(f"update sequence {sid}", "PUT", f"{SEQUENCES}/{sid}", body=body, kind=WRITE)
    return Delivery(intent.id, ok=True, tool_ref=f"sequence:{sid}")


def _step(step: dict[str, Any], template: str) -> dict[str, Any]:
    """A step as `PublicSequenceStep` takes it, its email (and variants) sending `template`."""
    out: dict[str, Any] = {"actionType": step.get("actionType"),
                           "delayMillis": int(step.get("delayMillis") or 0),
                           "stepOrder": step.get("stepOrder")}
    if step.get("actionType") == "EMAIL":
        out["emailPattern"] = {"templateId": template}
        out["variants"] = [{"activated": bool(v.get("activated")),
                            "variantOrdinal": v.get("variantOrdinal"),
                            "emailPattern": {"templateId": str(
                                (v.get("emailPattern") or {}).get("templateId"))}}
                           for v in step.get("variants") or []]
    elif step.get("taskPattern"):
        task = step["taskPattern"]
        out["taskPattern"] = {k: task[k] for k in ("taskPriority", "taskType", "subject")
                              if k in task}
    return out


def checklist(payload: TemplatePayload, sid: str, name: str | None = None) -> list[str]:
    """The exact steps for the sequence's owner (a private app cannot edit sequences)."""
    where = f"HubSpot > Automation > Sequences > '{name or payload.name}' (sequence {sid})"
    steps = [f"Open {where} and click Edit."]
    for row in payload.rendered:
        if row.variant is not None:
            segment = row.name.removeprefix("segment ")
            steps.append(f"In sequence '{name or payload.name}', for {segment}: use template "
                         f"'{row.variant}' in its email steps (rule {row.rule}).")
    steps.append(f"Save the sequence; this is learnloop version {payload.version}, because: "
                 f"{payload.why}")
    return steps
