"""Write learnloop's fields onto issues: quietly when allowed, else with Jira's notifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from connectors.jira.client import explain, reader, retry_after, status_of, writer
from connectors.jira.config import JiraConfig
from core.contract import (
    CommentPayload,
    Delivery,
    FieldsPayload,
    Intent,
    LinkPayload,
    PropertyPayload,
    TemplatePayload,
)

if TYPE_CHECKING:
    import atlassian
    import jira

FIELD_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:"
OUR_FIELDS = {  # payload key -> (field name, type, searcher)
    "forecast_p80": ("learnloop Forecast P80", "float", "exactnumber"),
    "effort_factor": ("learnloop Effort factor", "float", "exactnumber"),
    "forecast_finish_p80": ("learnloop Forecast P80 date", "textfield", "textsearcher"),
    "insight": ("learnloop Learning insight", "textarea", "textsearcher"),
}


def field_ids(config: JiraConfig, client: atlassian.Jira | None = None) -> dict[str, str]:
    """Payload key -> custom field id of learnloop's fields that exist."""
    by_name = {f.get("name"): f.get("id")
               for f in (client or writer(config)).get_all_fields() or []}
    return {k: str(by_name[name]) for k, (name, _, _) in OUR_FIELDS.items() if name in by_name}


def install(config: JiraConfig, client: atlassian.Jira | None = None,
            ) -> tuple[list[str], list[str]]:
    """Create learnloop's custom fields (idempotent) and put them on the default screen."""
    client = client or writer(config)
    existing = field_ids(config, client)
    created = []
    for key, (name, kind, searcher) in OUR_FIELDS.items():
        if key in existing:
            continue
        field = client.create_custom_field(name, FIELD_TYPE + kind, FIELD_TYPE + searcher,
                                           "Written by learnloop; edited by learnloop only.")
        if not field:
            raise ValueError(f"Jira created {name!r} but returned no field")
        existing[key] = str(field["id"])
        created.append(name)
    for fid in existing.values():
        client.post(f"rest/api/3/screens/addToDefault/{fid}")
    return created, [OUR_FIELDS[k][0] for k in existing if OUR_FIELDS[k][0] not in created]


def _value(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("forecast_p80", "effort_factor"):
        return float(value)
    return str(value)


def deliver(config: JiraConfig, intents: Sequence[Intent],
            client: atlassian.Jira | None = None) -> list[Delivery]:
    """One PUT per issue with all its fields; `notifyUsers=false` first (watchers are not
    mailed), again without it when the account may not suppress notifications."""
    try:
        client = client or writer(config)
        ids = field_ids(config, client)
        if len(ids) < len(OUR_FIELDS):
            install(config, client)  # first write-back of a new connection: provision fields
            ids = field_ids(config, client)
    except Exception as exc:
        error = explain(exc, config)
        return [Delivery(i.id, ok=False, error=str(error), retry_after=retry_after(exc))
                for i in intents]
    results = []
    for intent in intents:
        values = FieldsPayload.from_json(intent.payload).to_json()
        fields = {ids[k]: _value(k, v) for k, v in values.items() if k in ids}
        if not fields:
            results.append(Delivery(intent.id, ok=False, permanent=True,
                                    error="learnloop's Jira fields are missing: run install"))
            continue
        try:
            try:
                client.update_issue_field(intent.target, fields, notify_users=False)
            except Exception as exc:
                if status_of(exc) != 403:
                    raise
                client.update_issue_field(intent.target, fields, notify_users=True)
            results.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
        except Exception as exc:
            code = status_of(exc)
            results.append(Delivery(intent.id, ok=False, error=str(explain(exc, config)),
                                    retry_after=retry_after(exc) if code == 429 else None,
                                    permanent=code in (400, 404)))
    return results


PROPERTY_KEY = "learnloop"
MARKER_KEY = "learnloop"  # comment property: which learnloop object a comment is
COMMENT_PAGE = 100


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document (what v3 comments require)."""
    paragraphs = [p for p in text.split("\n") if p.strip()] or [""]
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
        for p in paragraphs]}


def _marked(comment: dict[str, Any], marker: dict[str, Any]) -> bool:
    return any(p.get("key") == MARKER_KEY and p.get("value") == marker
               for p in comment.get("properties") or [])


def find_comment(client: atlassian.Jira, key: str, marker: dict[str, Any]) -> str | None:
    """The id of the comment on `key` carrying learnloop's `marker` property, if there is one.

    Read when a delivery has no stored comment id: the first delivery may have posted the
    comment and died before the outbox stored its id (the claim was then retaken).
    """
    start = 0
    while True:
        page = client.get(f"rest/api/3/issue/{key}/comment", params={
            "startAt": start, "maxResults": COMMENT_PAGE, "expand": "properties"}) or {}
        comments = page.get("comments") or []
        for comment in comments:
            if _marked(comment, marker):
                return str(comment["id"])
        start += len(comments)
        if not comments or start >= int(page.get("total") or 0):
            return None


def upsert_comment(client: atlassian.Jira, key: str, body: dict[str, Any],
                   marker: dict[str, Any], tool_ref: str | None) -> str:
    """Edit learnloop's comment on `key` (by its stored id, else by its marker property) or
    post it, marked, when there is none; returns the comment id."""
    data = {"body": body, "properties": [{"key": MARKER_KEY, "value": marker}]}
    path = f"rest/api/3/issue/{key}/comment"
    ref = tool_ref if tool_ref and tool_ref.isdigit() else None  # older refs named the issue
    if ref is not None:
        try:
            client.put(f"{path}/{ref}", data=data)
            return ref
        except Exception as exc:
            if status_of(exc) != 404:
                raise
            # The comment was deleted in Jira: look for another of ours, else post a new one.
    found = find_comment(client, key, marker)
    if found is not None:
        client.put(f"{path}/{found}", data=data)
        return found
    made = client.post(path, data=data) or {}
    return str(made["id"])


def deliver_other(config: JiraConfig, intent: Intent, client: atlassian.Jira | None = None,
                  ) -> Delivery:
    """One comment (edited in place once it exists), the issue property, or the remote link."""
    client = client or writer(config)
    try:
        if intent.surface == "comment":
            comment = CommentPayload.from_json(intent.payload)
            marker = {"surface": "comment", **({"topic": comment.topic} if comment.topic else {})}
            ref = upsert_comment(client, intent.target, adf(comment.text), marker,
                                 intent.tool_ref)
            return Delivery(intent.id, ok=True, tool_ref=ref)
        if intent.surface == "property":
            client.set_issue_property(intent.target, PROPERTY_KEY,
                                      PropertyPayload.from_json(intent.payload).to_json())
            return Delivery(intent.id, ok=True, tool_ref=f"{intent.target}:{PROPERTY_KEY}")
        if intent.surface == "link":
            link = LinkPayload.from_json(intent.payload)
            client.create_or_update_issue_remote_links(
                intent.target, link.url, link.title, global_id=f"learnloop:{intent.target}")
            return Delivery(intent.id, ok=True, tool_ref=f"learnloop:{intent.target}")
    except Exception as exc:
        code = status_of(exc)
        return Delivery(intent.id, ok=False, error=str(explain(exc, config)),
                        retry_after=retry_after(exc) if code == 429 else None,
                        permanent=code in (400, 404))
    return Delivery(intent.id, ok=False, permanent=True,
                    error=f"jira cannot write {intent.surface}")


def deliver_template(config: JiraConfig, intent: Intent, search: jira.JIRA | None = None,
                     client: atlassian.Jira | None = None) -> Delivery:
    """A template issue (its children are the planned tasks): each child's original estimate
    becomes the plan the accepted policy asks for (P80), and one comment on the template says
    what changed and why. Redelivered, the estimates are set again (the same values) and the
    comment of that version is edited, found by its id or its marker property."""
    payload = TemplatePayload.from_json(intent.payload)
    plan = {t.name: t for t in payload.rendered}
    client = client or writer(config)
    try:
        children = (search or reader(config)).enhanced_search_issues(
            f'parent = "{intent.target}"', maxResults=100, fields=["summary",
                                                                   "timeoriginalestimate"],
            json_result=True)
        assert isinstance(children, dict)
        changed = []
        for child in children.get("issues", []):
            task = plan.get(str(child["fields"].get("summary")))
            if not task or task.plan_p80 is None:
                continue
            hours = task.plan_p80
            client.update_issue_field(child["key"], {"timetracking": {
                "originalEstimate": f"{hours:g}h"}}, notify_users=True)
            changed.append(f"{child['fields'].get('summary')}: {task.estimate}h -> "
                           f"{hours:g}h ({task.rule})")
        text = (f"learnloop template v{payload.version}: "
                + ("; ".join(changed) if changed else "no task estimate changed")
                + f". Why: {payload.why}")
        ref = upsert_comment(client, intent.target, adf(text), {
            "surface": "template", "version": payload.version}, intent.tool_ref)
    except Exception as exc:
        code = status_of(exc)
        return Delivery(intent.id, ok=False, error=str(explain(exc, config)),
                        retry_after=retry_after(exc) if code == 429 else None,
                        permanent=code in (400, 404))
    return Delivery(intent.id, ok=True, tool_ref=ref)
