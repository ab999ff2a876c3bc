"""The reads a pull makes: several queries in one `POST composite` call, REST pages followed
through `nextRecordsUrl`, Bulk API 2.0 query jobs (CSV pages), and each page of opportunities'
`OpportunityHistory` rows."""

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
from connectors.salesforce.client import Org, SalesforceError, quote, soql
from connectors.salesforce.config import SalesforceConfig
from core.contract import Problem

PAGE = 2000
HISTORY_IDS = 200  # opportunities per history subrequest (keeps its URL short)
BULK_PAGE = 10_000


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
    """The WHERE condition a stream resumes from (None: read everything).

    After a finished read the lookback re-reads what may have committed late: records
    stamped within `lookback` before the query ran (`queried`, Salesforce's clock). When the
    query ran more than `lookback` after the newest record seen, everything up to that record
    had committed, and the read resumes right after it, as an interrupted one does.
    """
    stamp = m.parse_time(state.get("stamp"))
    if stamp is None:
        return None
    rid = state.get("id")
    if state.get("done", True):
        queried = m.parse_time(state.get("queried"))
        floor = stamp - lookback if queried is None else min(stamp, queried - lookback)
        if floor < stamp or not rid:
            return f"SystemModstamp >= {soql_time(floor)}"
    elif not rid:
        return f"SystemModstamp >= {soql_time(stamp)}"
    at = soql_time(stamp)
    return f"(SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > {quote(str(rid))}))"


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
        self.queried: dt.datetime | None = None
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
