"""Incremental pulls: `updated >= <epoch ms>` (no time-zone gaps), page by page, each page
stored with a cursor that resumes exactly there; truncated changelogs fetched in full.

learnloop's own writes bump Jira's `updated` too. An item's `source_updated_at` is therefore
the last change someone else made, as the change history records it (the creation if none):
histories by learnloop's own account, or touching only learnloop's own fields, are left out,
and so are our comment, issue property and remote link (they leave no other history). The
next sync after a write-back then finds the issues as they were and re-stores none of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connectors.jira.client import explain, reader, writer
from connectors.jira.config import JiraConfig
from connectors.jira.mapping import fields_wanted, is_lesson, parse_time, to_item, to_lesson
from connectors.jira.writeback import OUR_FIELDS
from core.contract import Batch, ItemRecord, LinkRecord, Problem

if TYPE_CHECKING:
    import atlassian
    import jira

PAGE = 100


def jql_for(config: JiraConfig, since_ms: int | None) -> str:
    """The search: the configured scope, changed since the watermark (minus the lookback)."""
    clauses = [f"({config.jql})"] if config.jql.strip() else []
    if since_ms is not None:
        clauses.append(f"updated >= {max(0, since_ms - config.lookback_minutes * 60_000)}")
    return " AND ".join(clauses) + " ORDER BY updated ASC, key ASC"


OWN_FIELD_NAMES = frozenset(name for name, _, _ in OUR_FIELDS.values())


def full_changelog(config: JiraConfig, key: str, client: atlassian.Jira | None = None,
                   ) -> list[dict[str, Any]]:
    """Every history of an issue, paged (a search returns at most 100 of them)."""
    client = client or writer(config)
    out: list[dict[str, Any]] = []
    while True:
        page = client.get_issue_changelog(key, start=len(out), limit=PAGE)
        values = page.get("values") or page.get("histories") or []
        out.extend(values)
        if page.get("isLast", True) or not values:
            return out


def is_ours(history: Mapping[str, Any], account: str | None) -> bool:
    """Whether a change-history entry is learnloop's own write: made by its account, or
    touching only the fields learnloop provisioned."""
    author = (history.get("author") or {}).get("accountId")
    if account is not None and author == account:
        return True
    items = history.get("items") or []
    return bool(items) and all(str(i.get("field")) in OWN_FIELD_NAMES for i in items)


def changed_by_others_at(fields: Mapping[str, Any], histories: list[dict[str, Any]],
                         account: str | None) -> dt.datetime | None:
    """When someone other than learnloop last changed the issue: the newest history that is
    not ours, else the creation (Jira's `updated` when neither is known)."""
    times = [parse_time(h.get("created")) for h in histories if not is_ours(h, account)]
    known = [t for t in (parse_time(fields.get("created")), *times) if t is not None]
    return max(known) if known else parse_time(fields.get("updated"))


def parent_key(raw: Mapping[str, Any]) -> str | None:
    """The key of the issue's parent (its epic, or the issue a sub-task belongs to): Jira
    Cloud's `parent` field, which company-managed projects fill for epics too."""
    parent = (raw.get("fields") or {}).get("parent")
    key = parent.get("key") if isinstance(parent, Mapping) else None
    return str(key) if key else None


def _page(client: jira.JIRA, jql: str, token: str | None, fields: list[str],
          config: JiraConfig) -> dict[str, Any]:
    try:
        result = client.enhanced_search_issues(jql, nextPageToken=token, maxResults=PAGE,
                                               fields=fields, expand="changelog",
                                               json_result=True)
    except Exception as exc:
        raise explain(exc, config) from exc
    assert isinstance(result, dict)
    return result


def _seen(raw: Mapping[str, Any], seen: int) -> int:
    """The watermark after an issue: its `updated`, in epoch milliseconds, if later."""
    updated = parse_time((raw.get("fields") or {}).get("updated"))
    return seen if updated is None else max(seen, int(updated.timestamp() * 1000))


def pull(config: JiraConfig, mapping: Mapping[str, Any], cursor: Mapping[str, Any] | None,
         client: jira.JIRA | None = None, pages: atlassian.Jira | None = None,
         account: Callable[[], str | None] | None = None) -> Iterator[Batch]:
    """Batches of issues changed since the cursor's watermark, with their events.

    Every `reconcile_hours` the pull is a full one (every issue of the scope, marked as a
    snapshot), so issues deleted in Jira are marked deleted here; in between, only changes.

    Args:
        config: the connection's settings.
        mapping: the field mapping.
        cursor: where the previous sync stopped (None: from the start).
        client: the `jira` reader to search with (a new one when None).
        pages: the `atlassian` client that pages long changelogs (a new one when needed).
        account: returns learnloop's own account id, whose changes are not changes; asked
            when the first history is seen, then kept in the cursor (for the configured
            email). None: only learnloop's own fields are recognised.
    """
    cursor = dict(cursor or {})
    known = cursor.get("own_account")
    own = [known[1]] if isinstance(known, list) and len(known) == 2 and \
        known[0] == config.email else []
    now_ms = int(time.time() * 1000)
    full_at = int(cursor.get("full_at_ms") or 0)
    # Which issues are lessons changed: every issue is read again, so those already synced
    # become lessons (or work) now, not when they are next edited.
    lessons = [sorted(t.strip().lower() for t in config.lesson_issue_types),
               sorted(v.strip().lower() for v in config.lesson_labels)]
    moved = cursor.get("lessons", [[], []]) != lessons
    full = not cursor or ((moved or now_ms - full_at > config.reconcile_hours * 3_600_000)
                          and not cursor.get("page_token"))
    if full and not cursor.get("page_token"):
        cursor = {"full_at_ms": now_ms}
    since = cursor.get("since_ms")
    token = cursor.get("page_token")
    seen = int(cursor.get("max_seen_ms") or since or 0)
    # Only a full pull that starts at its first page lists every issue: a resumed one has
    # not seen the earlier pages in this run, and must not mark their issues deleted.
    snapshot = since is None and token is None
    full_at = int(cursor.get("full_at_ms") or full_at)
    client = client or reader(config)
    jql = jql_for(config, since)
    fields = fields_wanted(dict(mapping), bool(config.lesson_issue_types or config.lesson_labels))
    while True:
        page = _page(client, jql, token, fields, config)
        batch = Batch(snapshot=snapshot)
        for raw in page.get("issues", []):
            try:
                if is_lesson(raw, config):  # a post-mortem is a lesson, not work
                    batch.lessons.append(to_lesson(raw, dict(mapping), config.url))
                    seen = _seen(raw, seen)
                    continue
                log = raw.get("changelog") or {}
                histories = list(log.get("histories") or [])
                if int(log.get("total") or 0) > len(histories):
                    pages = pages or writer(config)
                    histories = full_changelog(config, raw["key"], pages)
                item, events = to_item(raw, histories, config, dict(mapping), config.url)
                if histories and not own and account is not None:
                    own.append(account())
                item = dataclasses.replace(item, source_updated_at=changed_by_others_at(
                    raw.get("fields") or {}, histories, own[0] if own else None))
            except (KeyError, TypeError, ValueError) as exc:
                batch.problems.append(Problem(f"issue {raw.get('key', raw.get('id', '?'))}",
                                              f"malformed issue: {exc}", {"id": raw.get("id")}))
                continue
            assert isinstance(item, ItemRecord)
            batch.items.append(item)
            batch.events.extend(events)
            parent = parent_key(raw)
            # The issue's epic (or parent issue): where its team's work is told; taken out
            # of it, the stored link goes.
            batch.links.append(LinkRecord(item.external_id, parent, "parent") if parent
                               else LinkRecord.cleared(item.external_id, "parent"))
            seen = _seen(raw, seen)
        token = page.get("nextPageToken")
        last = bool(page.get("isLast", True)) or not token
        batch.cursor = ({"since_ms": seen, "page_token": None, "max_seen_ms": seen,
                         "full_at_ms": full_at} if last
                        else {"since_ms": since, "page_token": token, "max_seen_ms": seen,
                              "full_at_ms": full_at})
        if own:
            batch.cursor["own_account"] = [config.email, own[0]]
        if lessons != [[], []]:
            batch.cursor["lessons"] = lessons
        yield batch
        if last:
            return
