"""Pulls: accounts, contacts, opportunities with their history, Tasks and Events, campaign
members and (where the org has Sales Engagement) cadence step trackers.

Every stream reads `WHERE SystemModstamp >= (last seen - lookback) ORDER BY SystemModstamp,
Id`; a sync interrupted inside a stream resumes exactly after the last stored record
(`SystemModstamp > S OR (SystemModstamp = S AND Id > I)`), so a bulk load sharing one
timestamp is neither skipped nor read twice. Deletes come from `queryAll` (`IsDeleted =
true`). The first page of every stream, the deletes and the cadence variants are asked for in
one `POST composite` (25 subrequests count as one API call): a sync with no change costs that
one call. A stream with more than `bulk_threshold` records to read goes through a Bulk API
2.0 query job instead (REST when Bulk refuses the object or the job fails). Each page of
opportunities brings its `OpportunityHistory` rows (200 opportunities a subrequest, one
composite call a page). Every page is stored with the cursor after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from connectors.salesforce import mapping as m
from connectors.salesforce.client import Org, QuotaPaused, SalesforceError
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.reads import PREFIX, STREAMS, Reader, Stream, bound, select
from core.contract import Batch, EnrollmentRecord, Problem

RECENT = 2000  # ids remembered from the lookback window, at most


def records_batch(reader: Reader, stream: Stream, rows: list[dict[str, Any]]) -> Batch:
    """One page of a stream as a batch; a malformed record is a problem, not a failure."""
    batch = Batch()
    history = reader.history([str(r["Id"]) for r in rows if r.get("Id")]) \
        if stream.name == "opportunities" and rows else {}
    for r in rows:
        rid = r.get("Id")
        try:
            if stream.name == "accounts":
                batch.items.append(m.account_item(r))
            elif stream.name == "contacts":
                item, links = m.contact_item(r)
                batch.items.append(item)
                batch.links += links
            elif stream.name == "opportunities":
                item, events, links = m.opportunity_item(r, reader.mapping,
                                                         history.get(str(rid), []))
                batch.items.append(item)
                batch.events += events
                batch.links += links
            elif stream.name in ("tasks", "events"):
                event = m.activity_event(r, stream.sobject)
                if event is not None:
                    batch.events.append(event)
            else:
                if stream.name == "members":
                    item, enrollment, links = m.member_records(r)
                else:
                    item, enrollment, links = m.tracker_records(r, reader.variants,
                                                                reader.steps)
                batch.items.append(item)
                batch.enrollments.append(enrollment)
                batch.links += links
        except (KeyError, TypeError, ValueError) as exc:
            batch.problems.append(Problem(f"{stream.sobject} {rid or '?'}",
                                          f"malformed {stream.sobject}: {exc}",
                                          {"Id": rid}))
    return batch


def _enrollments_unique(batch: Batch) -> None:
    seen: dict[str, EnrollmentRecord] = {e.item_external_id: e for e in batch.enrollments}
    batch.enrollments = list(seen.values())


def pull(config: SalesforceConfig, mapping: Mapping[str, Any], cursor: Mapping[str, Any] | None,
         org: Org) -> Iterator[Batch]:
    """Batches of every stream changed since the cursor.

    The cursor: `{"streams": {name: {"stamp", "id", "done"}}, "paused": bool}`.
    """
    state: dict[str, dict[str, Any]] = {k: dict(v) for k, v in
                                        ((cursor or {}).get("streams") or {}).items()}
    reader = Reader(config, mapping, org)
    lookback = dt.timedelta(minutes=config.lookback_minutes)

    def save(paused: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"streams": {k: dict(v) for k, v in state.items()}}
        return out | ({"paused": True} if paused else {})

    try:
        if (cursor or {}).get("paused"):
            org.refresh_usage()
            org.guard("resume the sync")
        queries: dict[str, tuple[str, bool]] = {}
        for s in STREAMS:
            st = state.get(s.name, {})
            queries[s.name] = (select(reader.fields(s), s.sobject, bound(st, lookback),
                                      "SystemModstamp, Id"), False)
            if s.deletes and st.get("stamp"):
                queries[f"{s.name}_deleted"] = (select(("Id",), s.sobject, "IsDeleted = true"
                                                       f" AND {bound({**st, 'done': True}, lookback)}"),
                                                True)
        queries["variants"] = (select(m.VARIANT, "ActionCadenceStepVariant", None), False)
        answers = reader.composite("read what changed", queries)
        reader.queried = org.server_time  # when Salesforce ran the queries
        reader.lookups(answers.get("variants"))
        for s in STREAMS:
            answer = answers.get(s.name)
            while isinstance(answer, SalesforceError):
                if s.sales_engagement and answer.code in ("INVALID_TYPE", "NOT_FOUND"):
                    break  # no Sales Engagement in this org: nothing to read
                problem = reader.drop(s, answer)
                if problem is None:
                    raise answer
                yield Batch(problems=[problem])
                text = select(reader.fields(s), s.sobject, bound(state.get(s.name, {}),
                                                                 lookback), "SystemModstamp, Id")
                answer = reader.composite(f"read {s.sobject} records", {s.name: (text, False)})[
                    s.name]
            if not isinstance(answer, dict):
                continue
            yield from stream_batches(reader, s, answer, state)
            gone = answers.get(f"{s.name}_deleted")
            if isinstance(gone, dict):
                for page in reader.pages(gone, f"read deleted {s.sobject} records"):
                    if page:
                        yield Batch(deleted=[f"{PREFIX[s.sobject]}:{r['Id']}" for r in page],
                                    cursor=save())
    except QuotaPaused:
        yield Batch(cursor=save(paused=True))
        raise


def stream_batches(reader: Reader, s: Stream, answer: dict[str, Any],
                   state: dict[str, dict[str, Any]]) -> Iterator[Batch]:
    """The batches of one stream, from the composite's first page (or a Bulk job)."""
    st = state.setdefault(s.name, {})
    what = f"read {s.sobject} records"
    pages: Iterator[list[dict[str, Any]]] | None = None
    if int(answer.get("totalSize") or 0) > reader.config.bulk_threshold:
        text = select(reader.fields(s), s.sobject, bound(st, dt.timedelta(
            minutes=reader.config.lookback_minutes)), "SystemModstamp, Id")
        pages = reader.bulk(s.sobject, text, what)
    if pages is None:
        pages = reader.pages(answer, what)
    seen = dict(st.get("recent") or {})
    recent: dict[str, str] = {}
    lookback = dt.timedelta(minutes=reader.config.lookback_minutes)
    changed = False
    for page in _resumable(pages, reader, s, st):
        # The lookback reads the newest records of the last sync again: those unchanged
        # since (same id and SystemModstamp) are skipped, so an idle sync writes nothing.
        rows = [r for r in page if seen.get(str(r.get("Id"))) != r.get("SystemModstamp")]
        after = dict(st)
        if page:
            last = page[-1]
            after.update(stamp=last.get("SystemModstamp"), id=last.get("Id"), done=False)
            newest = m.parse_time(last.get("SystemModstamp"))
            if newest is not None:
                floor = newest - lookback
                recent = {k: v for k, v in recent.items() if (m.parse_time(v) or newest)
                          >= floor}
                recent.update({str(r["Id"]): str(r["SystemModstamp"]) for r in page
                               if (m.parse_time(r.get("SystemModstamp")) or floor) >= floor})
        if not rows:
            st.update(after)
            continue
        changed = True
        batch = records_batch(reader, s, rows)  # may stop (quota): the cursor stays before it
        _enrollments_unique(batch)
        st.update(after, recent=recent if len(recent) <= RECENT else {})
        batch.cursor = {"streams": {k: dict(v) for k, v in state.items()}}
        yield batch
    st["done"] = True
    if reader.queried is not None:
        st["queried"] = reader.queried.isoformat()
    if changed or recent:
        st["recent"] = (recent or seen) if len(recent or seen) <= RECENT else {}
    yield Batch(cursor={"streams": {k: dict(v) for k, v in state.items()}})


def _resumable(pages: Iterator[list[dict[str, Any]]], reader: Reader, s: Stream,
               st: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages, and when following them fails with an expired query locator, a fresh query from
    the last stored record (nothing lost, nothing read twice)."""
    while True:
        try:
            yield from pages
            return
        except SalesforceError as exc:
            if exc.code != "INVALID_QUERY_LOCATOR":
                raise
        text = select(reader.fields(s), s.sobject, bound({**st, "done": False}, dt.timedelta()),
                      "SystemModstamp, Id")
        pages = reader.query(text, f"read {s.sobject} records")

