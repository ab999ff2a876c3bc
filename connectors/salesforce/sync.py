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

import csv
import datetime as dt
import functools
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as urlquote

from connectors.salesforce import mapping as m
from connectors.salesforce.client import Org, QuotaPaused, SalesforceError, quote, soql
from connectors.salesforce.config import SalesforceConfig
from core.contract import Batch, EnrollmentRecord, Problem

PAGE = 2000
HISTORY_IDS = 200  # opportunities per history subrequest (keeps its URL short)
BULK_PAGE = 10_000
RECENT = 2000  # ids remembered from the lookback window, at most


@dataclass(frozen=True)
class Stream:
    name: str
    sobject: str
    fields: tuple[str, ...]
    deletes: bool = False  # read deletions through queryAll
    sales_engagement: bool = False


STREAMS = (
    Stream("accounts", "Account", m.ACCOUNT, deletes=True),
    Stream("contacts", "Contact", m.CONTACT, deletes=True),
    Stream("opportunities", "Opportunity", m.OPPORTUNITY, deletes=True),
    Stream("tasks", "Task", m.TASK),
    Stream("events", "Event", m.EVENT),
    Stream("members", "CampaignMember", m.MEMBER, deletes=True),
    Stream("trackers", "ActionCadenceStepTracker", m.TRACKER, sales_engagement=True),
)
PREFIX = {"Account": "account", "Contact": "contact", "Opportunity": "opportunity",
          "CampaignMember": "campaign-member"}


def soql_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{when.microsecond // 1000:03d}Z"


def bound(state: Mapping[str, Any], lookback: dt.timedelta) -> str | None:
    """The WHERE condition a stream resumes from (None: read everything)."""
    stamp = m.parse_time(state.get("stamp"))
    if stamp is None:
        return None
    if state.get("done", True) or not state.get("id"):
        return f"SystemModstamp >= {soql_time(stamp - lookback)}"
    at = soql_time(stamp)
    return f"(SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > {quote(state['id'])}))"


def select(fields: Sequence[str], sobject: str, where: str | None, order: str = "") -> str:
    return soql(fields, sobject, where, order)


def _composite(sf: Any, body: dict[str, Any]) -> Any:
    return sf.restful("composite", method="POST", json=body)


def _more(sf: Any, url: str) -> Any:
    return sf.query_more(url, identifier_is_url=True)


class Reader:
    """One pull's reads: composite queries, REST pages, Bulk 2.0 jobs."""

    def __init__(self, config: SalesforceConfig, mapping: Mapping[str, Any], org: Org) -> None:
        self.config, self.mapping, self.org = config, dict(mapping), org
        self.version = config.api_version
        self.variants: dict[str, dict[str, Any]] = {}
        self.dropped: set[str] = set()
        self.steps: dict[str, list[dict[str, Any]]] = {}

    def fields(self, stream: Stream) -> tuple[str, ...]:
        if stream.name == "opportunities":
            return tuple(f for f in m.opportunity_fields(self.mapping)
                         if f not in self.dropped)
        return stream.fields

    def drop(self, stream: Stream, exc: SalesforceError) -> Problem | None:
        """A mapped field deleted under us: read on without it (a problem says so); None
        when the field is not one the mapping added."""
        gone = exc.fields[0] if exc.code == "INVALID_FIELD" and exc.fields else None
        if stream.name != "opportunities" or gone is None or gone in m.OPPORTUNITY or \
                gone in self.dropped:
            return None
        self.dropped.add(gone)
        return Problem(f"Opportunity.{gone}", f"the mapped field {gone} no longer exists in "
                       "Salesforce (deleted or hidden from learnloop's user); opportunities "
                       "are read without it until the mapping is changed")

    def composite(self, what: str, queries: dict[str, tuple[str, bool]]
                  ) -> dict[str, dict[str, Any] | SalesforceError]:
        """Several queries (reference -> (SOQL, include deleted)) in one API call: each
        answer's first page, or the error Salesforce gave for that query."""
        out: dict[str, dict[str, Any] | SalesforceError] = {}
        names = list(queries)
        for start in range(0, len(names), 25):
            part = names[start:start + 25]
            body = {"compositeRequest": [
                {"method": "GET", "referenceId": ref,
                 "url": f"/services/data/v{self.version}/{'queryAll' if queries[ref][1] else 'query'}"
                        f"/?q={urlquote(queries[ref][0], safe='')}"} for ref in part]}
            data = self.org.call(what, functools.partial(_composite, body=body)) or {}
            for sub in data.get("compositeResponse") or []:
                ref, status, answer = sub.get("referenceId"), sub.get("httpStatusCode"), \
                    sub.get("body")
                if status == 200 and isinstance(answer, dict):
                    out[str(ref)] = answer
                    continue
                first = answer[0] if isinstance(answer, list) and answer else {}
                code = str(first.get("errorCode") or "")
                if code == "INVALID_SESSION_ID" or int(status or 0) >= 500:
                    raise SalesforceError(f"Salesforce answered HTTP {status} ({code}) to a "
                                          f"query while trying to {what}", int(status or 0),
                                          code)
                said = str(first.get("message") or "")
                column = re.search(r"No such column '(\w+)'", said)
                out[str(ref)] = SalesforceError(
                    f"Salesforce refused the query for {ref}: {code}: "
                    f"{said.strip().splitlines()[-1][:200] if said.strip() else ''}",
                    int(status or 0), code, permanent=True,
                    fields=(column.group(1),) if column else ())
        return out

    def pages(self, first: dict[str, Any], what: str) -> Iterator[list[dict[str, Any]]]:
        """The records of a query answer page by page (following `nextRecordsUrl`)."""
        page = first
        while True:
            yield [m.flatten(r) for r in page.get("records") or []]
            nxt = page.get("nextRecordsUrl")
            if page.get("done", True) or not nxt:
                return
            page = self.org.call(what, functools.partial(_more, url=str(nxt))) or {}

    def query(self, text: str, what: str) -> Iterator[list[dict[str, Any]]]:
        first = self.org.call(what, lambda sf: sf.query(text)) or {}
        return self.pages(first, what)

    def bulk(self, sobject: str, text: str, what: str) -> Iterator[list[dict[str, Any]]] | None:
        """A Bulk API 2.0 query job's records, page by page; None when Bulk refuses the object
        or the job fails (the caller reads through REST instead)."""
        from simple_salesforce.bulk2 import Operation
        from simple_salesforce.exceptions import SalesforceOperationError

        self.org.refresh_usage()  # Bulk answers carry no usage header the client reads
        self.org.guard(what)

        def client(sf: Any) -> Any:
            return getattr(sf.bulk2, sobject)._client

        try:
            job = self.org.call(what, lambda sf: client(sf).create_job(Operation.query, text))
        except SalesforceError as exc:
            if exc.code in ("INVALIDENTITY", "API_DISABLED_FOR_ORG", "FEATURE_NOT_ENABLED"):
                return None
            raise
        job_id = str(job["id"])

        def wait(sf: Any) -> str | None:
            try:
                client(sf).wait_for_job(job_id, True, self.config.bulk_poll_seconds)
            except SalesforceOperationError as exc:
                return str(exc)
            return None

        if self.org.call(what, wait) is not None:
            return None

        def results() -> Iterator[list[dict[str, Any]]]:
            locator = ""
            while True:
                def page(sf: Any, loc: str = locator) -> Any:
                    return client(sf).get_query_results(job_id, loc, BULK_PAGE)

                got = self.org.call(what, page)
                rows = [{k: (v if v != "" else None) for k, v in row.items()}
                        for row in csv.DictReader(io.StringIO(got["records"]))]
                for start in range(0, len(rows), PAGE):
                    yield rows[start:start + PAGE]
                locator = got.get("locator") or ""
                if not locator:
                    return

        return results()

    def history(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """OpportunityHistory rows per opportunity id, for up to 2,000 opportunities in one
        composite call (plus a page call for any answer longer than a page)."""
        queries = {}
        for n, start in enumerate(range(0, len(ids), HISTORY_IDS)):
            part = ", ".join(quote(i) for i in ids[start:start + HISTORY_IDS])
            queries[f"h{n}"] = (select(m.HISTORY, "OpportunityHistory",
                                       f"OpportunityId IN ({part})",
                                       "OpportunityId, CreatedDate, Id"), False)
        out: dict[str, list[dict[str, Any]]] = {}
        for answer in self.composite("read opportunity history", queries).values():
            if isinstance(answer, SalesforceError):
                raise answer
            for page in self.pages(answer, "read opportunity history"):
                for row in page:
                    out.setdefault(str(row.get("OpportunityId")), []).append(row)
        return out

    def lookups(self, answer: dict[str, Any] | SalesforceError | None) -> None:
        """The cadence step variants (name and split percentage per step)."""
        if not isinstance(answer, dict):
            return
        for page in self.pages(answer, "read cadence step variants"):
            for v in page:
                self.variants[str(v["Id"])] = v
                self.steps.setdefault(str(v.get("ActionCadenceStepId")), []).append(v)


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

