"""A strict local Salesforce org that `simple-salesforce` 1.12 talks to over HTTPS.

How a test points the real client at it
---------------------------------------
simple-salesforce hard-codes `https://` and logs in at `https://{domain}.salesforce.com`. The
emulator serves HTTPS on 127.0.0.1 with a self-signed certificate made in the process
(`tls.py`), answers the token request with `instance_url` = its own base URL, and
`emulator.session()` is a `requests.Session` that sends `https://*.salesforce.com/...` to the
emulator and trusts its certificate::

    emu = SalesforceEmulator(); emu.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_file)   # zeep (Metadata API) makes its own session
    sf = Salesforce(username=emu.username, consumer_key=emu.consumer_key,
                    privatekey=emu.keys.private_key_pem, domain=emu.domain,   # JWT bearer
                    session=emu.session())
    sf = Salesforce(consumer_key=emu.consumer_key, consumer_secret=emu.consumer_secret,
                    domain=emu.domain, session=emu.session())                # client credentials
    sf = Salesforce(instance_url=emu.base, session_id=emu.issue_token(),
                    session=emu.session())                                   # a given session

`domain` is My Domain without `.salesforce.com` ("learnloop-dev.my"); the JWT audience must be
`https://{domain}.salesforce.com` (or login./test.salesforce.com) and the assertion is verified
with the connected app's certificate (`emu.keys.certificate_pem`); `iss` must be the consumer
key, `sub` the username of an active User. SOAP `login()` (username, password + security
token) works below API 65.0 while `soap_login_enabled`; from 65.0 on it is a fault
`INVALID_OPERATION`, as in Salesforce.

What is emulated (`/services/data/vXX.X/...`, versions 31.0-66.0)
----------------------------------------------------------------
versions and resources; `sobjects/` (describe global), `sobjects/{T}` (basic info),
`sobjects/{T}/describe` (fields with `updateable`, `createable`, types, references);
`sobjects/{T}/` POST (create), `sobjects/{T}/{id}` GET (optional `fields=`), PATCH, DELETE;
`sobjects/{T}/{ExtIdField}/{value}` GET and PATCH (upsert: 201 created, 200 updated);
`sobjects/{T}/updated/` and `deleted/` (`start`, `end`; 30 days of history);
`query/` and `queryAll/` (`q=`; SOQL per `soql.py`), pages of 2,000 (`Sforce-Query-Options:
batchSize=200..2000`) followed through `nextRecordsUrl` = `/services/data/vXX.X/query/{locator}-{n}`
(also for queryAll, as Salesforce does); `composite/sobjects` POST (create), PATCH (update),
GET `composite/sobjects/{T}?ids=&fields=`: at most 200 records,
per-record `SaveResult`s in a 200, `allOrNone` rollback; `limits/` (and `limits`).
Every REST answer but the versions list carries `Sforce-Limit-Info: api-usage=USED/MAX`.
Objects: see `schema.py`. Writes keep Salesforce's side effects: `LastModifiedDate` and
`SystemModstamp` move, an Opportunity write that changes StageName, Amount, CloseDate or
Probability (and every create over the API) adds an `OpportunityHistory` row carrying the new values and
`PrevAmount`/`PrevCloseDate`; `IsClosed`/`IsWon`/`ForecastCategory` follow the stage;
deletes keep the row for queryAll and `deleted/`.
The Sales Engagement objects (ActionCadence*) exist only while `sales_engagement` is on
(else `INVALID_TYPE`/`NOT_FOUND`, as in an org without it); `ActionCadenceStepVariant`'s
`SplitPercentage` and `TemplateId` are updateable only while `variant_testing` is on.

Bulk API 2.0 (`jobs/query`, `jobs/ingest`; see `bulk.py`) and the Metadata API
(`/services/Soap/m/{v}`: createMetadata, updateMetadata, upsertMetadata, readMetadata of
CustomField and PermissionSet, validated against the WSDL packaged in simple-salesforce; see
`metadata.py`) are served too. A custom field made through the Metadata API is invisible to the
API user until a permission set granting it is assigned (`POST sobjects/PermissionSetAssignment/`),
as in Salesforce. `POST composite` runs up to 25 subrequests as one call.
`ROUTES` lists every route served; `test_emulator.py` checks each against Salesforce's Postman
request set (`../shared/specs/salesforce/`).

Strictness: an unknown route is a 404 `NOT_FOUND`, an unknown query parameter or body key a
400; both are recorded in `unexpected` (a test asserts it stays empty). A missing or stale
Bearer token is 401 `INVALID_SESSION_ID`; an unknown field in a query is 400 `INVALID_FIELD`,
one in a write 400 `INVALID_FIELD` (no such column) or `INVALID_FIELD_FOR_INSERT_UPDATE` (not
writable); a query the parser cannot read is 400 `MALFORMED_QUERY`; an unknown locator 400
`INVALID_QUERY_LOCATOR`; a bad value `JSON_PARSER_ERROR`, `STRING_TOO_LONG`,
`INVALID_CROSS_REFERENCE_KEY`, `REQUIRED_FIELD_MISSING` (data errors are also kept in `errors`).

Seeding (no HTTP, no API usage)
-------------------------------
`add(sobject, fields, modstamp=..., created=...)` -> id: any field, system fields included,
no side effects (no history row);
`add_opportunity(fields, history=[{StageName, Amount, CloseDate, Probability, CreatedDate}, ...],
modstamp=...)` -> id, history rows with `Prev*` from the row before; `seed_pipeline(n, ...)`:
n opportunities with accounts, owners and histories in bulk (100,000 in a few seconds, see
`test_emulator.py`); `set_modstamp(ids, when)`; `edit(sobject, id, fields, when)` (a user's change in the UI,
with its OpportunityHistory row); `delete(sobject, id, when)`;
`add_custom_field(sobject, name, type, visible=True)`; `get(sobject, id)` -> the stored record.

Measured (`python -m tests.emulators.salesforce.measure_seed`, shared 2-core machine,
2026-12-02): `seed_pipeline(100_000)` with 3 history rows each and 10,000 accounts takes
about 8 s and about 170 MB; a full queryAll of them through simple-salesforce, 50 calls, 5 s.

Faults and knobs (attributes)
-----------------------------
`fail_503` (answer the next N API calls with 503), `expire_after` (after N more authenticated
calls every session expires: 401 `INVALID_SESSION_ID` until a new token; `expire_sessions()`
does it now), `quota_after` (after N more calls the daily allowance is used up: 403
`REQUEST_LIMIT_EXCEEDED`), `daily_max` / `daily_used`, `record_errors` (id -> (statusCode,
message, times): that record's write fails in a collection, e.g. `UNABLE_TO_LOCK_ROW`),
`fail_429`, `fail_on(regex, status, times)` (fail the requests whose "METHOD /path?query"
matches), `sales_engagement`, `variant_testing`, `soap_login_enabled`,
`delete_field(sobject, name)` (a field deleted under a running sync), `bulk.fail_next` (the next
N Bulk jobs end `Failed`), `bulk.unsupported` (objects Bulk refuses with `INVALIDENTITY`),
`bulk.polls`, `metadata.denied` (the API user lacks Modify Metadata: every Metadata API call
is an `INSUFFICIENT_ACCESS` fault); `connected_app(consumer_key=, consumer_secret=, certificate_pem=, username=)`
registers a test's own connected app. `reset()` empties the org (same server and keys).

Request log: `calls` holds one `Call(method, path, status, records)` per request (records =
records answered or written); `api_calls()` counts those that count against the daily
allowance, so a benchmark reports calls per 1,000 records.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
import secrets
import ssl
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from tests.emulators.salesforce import schema as sch
from tests.emulators.salesforce import soql, tls

VERSIONS = [f"{v}.0" for v in range(31, 67)]
# Every route the emulator serves, as a template ({} = one path segment). A request answered
# through a route not listed here is recorded in `unexpected`; test_emulator.py checks each
# against Salesforce's Postman request set.
D = "/services/data/v{}"
ROUTES: list[tuple[str, str]] = [
    ("POST", "/services/oauth2/token"), ("POST", "/services/Soap/u/{}"),
    ("POST", "/services/Soap/m/{}"), ("GET", "/services/data"), ("GET", D),
    ("GET", D + "/limits"), ("GET", D + "/query"), ("GET", D + "/queryAll"),
    ("GET", D + "/query/{}"), ("GET", D + "/sobjects"), ("POST", D + "/composite"),
    ("POST", D + "/composite/sobjects"), ("PATCH", D + "/composite/sobjects"),
    ("GET", D + "/composite/sobjects/{}"), ("GET", D + "/sobjects/{}"),
    ("POST", D + "/sobjects/{}"), ("GET", D + "/sobjects/{}/describe"),
    ("GET", D + "/sobjects/{}/updated"), ("GET", D + "/sobjects/{}/deleted"),
    ("GET", D + "/sobjects/{}/{}"), ("PATCH", D + "/sobjects/{}/{}"),
    ("DELETE", D + "/sobjects/{}/{}"), ("GET", D + "/sobjects/{}/{}/{}"),
    ("PATCH", D + "/sobjects/{}/{}/{}"),
    ("POST", D + "/jobs/query"), ("GET", D + "/jobs/query"), ("GET", D + "/jobs/query/{}"),
    ("PATCH", D + "/jobs/query/{}"), ("DELETE", D + "/jobs/query/{}"),
    ("GET", D + "/jobs/query/{}/results"),
    ("POST", D + "/jobs/ingest"), ("GET", D + "/jobs/ingest"), ("GET", D + "/jobs/ingest/{}"),
    ("PATCH", D + "/jobs/ingest/{}"), ("DELETE", D + "/jobs/ingest/{}"),
    ("PUT", D + "/jobs/ingest/{}/batches"), ("GET", D + "/jobs/ingest/{}/successfulResults"),
    ("GET", D + "/jobs/ingest/{}/failedResults"),
    ("GET", D + "/jobs/ingest/{}/unprocessedrecords"),
]
LITERAL = {"describe", "updated", "deleted", "results", "batches", "successfulresults",
           "failedresults", "unprocessedrecords", "query", "queryall", "ingest", "sobjects",
           "composite", "jobs", "limits"}


def route_of(method: str, path: str) -> tuple[str, str] | None:
    """The ROUTES entry a request path falls under (trailing slash and case of literal segments
    ignored, as Salesforce does for `/limits/` and `/unprocessedRecords`)."""
    path = re.sub(r"/services/data/v\d+\.\d", "/services/data/v{}", path.rstrip("/")) or "/"
    path = re.sub(r"/services/Soap/([um])/\d+\.\d", r"/services/Soap/\1/{}", path)
    segments = path.split("/")
    for m, template in ROUTES:
        if m != method:
            continue
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        if all(t == s or (t == "{}" and s.lower() not in LITERAL) or (t.lower() == s.lower()
               and t.lower() in LITERAL) for t, s in zip(parts, segments, strict=True)):
            return m, template
    return None
PAGE_MAX = 2000
PAGE_MIN = 200
COLLECTION_MAX = 200
TRACKED = ("StageName", "Amount", "CloseDate", "Probability")  # what OpportunityHistory records
STAGE_PROBABILITY = {"Prospecting": 10, "Qualification": 10, "Needs Analysis": 20,
                     "Value Proposition": 50, "Id. Decision Makers": 60,
                     "Perception Analysis": 70, "Proposal/Price Quote": 75,
                     "Negotiation/Review": 90, "Closed Won": 100, "Closed Lost": 0}
STAGE_FORECAST = {"Closed Won": "Closed", "Closed Lost": "Omitted",
                  "Negotiation/Review": "Commit", "Proposal/Price Quote": "Pipeline"}
ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def full_id(value: str) -> str:
    """An 18-character id from a 15- or 18-character one (Salesforce's case-safe suffix)."""
    if len(value) != 15:
        return value
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(value[chunk * 5:chunk * 5 + 5]) if c.isupper())
        suffix += ID_SUFFIX[bits]
    return value + suffix


def now_sf() -> str:
    return soql.sf_datetime(dt.datetime.now(dt.UTC))


@dataclass
class Call:
    method: str
    path: str
    status: int
    records: int = 0


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or bytes with content_type
    headers: dict[str, str] | None = None
    content_type: str = "application/json;charset=UTF-8"
    records: int = 0


class SfError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def reply(self) -> Reply:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return Reply(self.status, [item])


class Table:
    """One sObject's rows: lists indexed by column (memory-light: no dict per record)."""

    def __init__(self, obj: sch.SObject) -> None:
        self.obj = obj
        self.cols: dict[str, int] = {name: i for i, name in enumerate(obj.fields)}
        self.rows: dict[str, list[Any]] = {}  # 18-char id -> values
        self.template: list[Any] = [False if f.type == "boolean" else None
                                    for f in obj.fields.values()]
        head = obj.key_prefix + "5g"
        self.id_head = head
        self.id_tail = full_id(head + "0" * 10)[15:]
        self.deleted: dict[str, str] = {}  # id -> deletion time
        self.counter = 0

    def value(self, row: list[Any], name: str) -> Any:
        i = self.cols[name]
        return row[i] if i < len(row) else None

    def set(self, row: list[Any], name: str, value: Any) -> None:
        i = self.cols.setdefault(name, len(self.cols))
        if i >= len(row):
            row.extend([None] * (i + 1 - len(row)))
        row[i] = value

    def record(self, row: list[Any]) -> dict[str, Any]:
        return {name: (row[i] if i < len(row) else None) for name, i in self.cols.items()
                if name in self.obj.fields and self.obj.fields[name].visible}


class SalesforceEmulator:
    """State and server."""

    def __init__(self, *, sales_engagement: bool = True, variant_testing: bool = True) -> None:
        self._options = {"sales_engagement": sales_engagement, "variant_testing": variant_testing}
        self.schema = sch.build()
        self.tables = {name: Table(obj) for name, obj in self.schema.items()}
        self.sales_engagement = sales_engagement
        self.variant_testing = variant_testing
        self.soap_login_enabled = True
        self.keys = tls.jwt_keys()
        self.ca_file, self._key_file = tls.server_files()
        self.domain = "learnloop-dev.my"
        self.consumer_key = "3MVG9learnloopConsumerKey"
        self.consumer_secret = "learnloop-consumer-secret"
        self.username = "integration@learnloop.example"
        self.password, self.security_token = "pw-Secret-1", "TOKEN123"
        self.sessions: set[str] = set()
        self.daily_max = 100_000
        self.daily_used = 0
        self.fail_503 = 0
        self.fail_429 = 0  # what an edge proxy answers under load (Salesforce itself uses 403)
        self.fail_rules: list[tuple[str, int, int]] = []  # see fail_on()
        self.expire_after: int | None = None
        self.quota_after: int | None = None
        self.record_errors: dict[str, tuple[str, str, int]] = {}
        self.calls: list[Call] = []
        self.unexpected: list[str] = []
        self.errors: list[str] = []
        self.cursors: dict[str, tuple[soql.Query, list[str], bool]] = {}
        self._indexes: dict[tuple[str, str], tuple[tuple[int, int],
                                                  dict[Any, list[tuple[int, str]]]]] = {}
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""
        self._last_stamp = ""
        self.user_id = self.add("User", {"Username": self.username, "LastName": "Integration",
                                         "FirstName": "Learnloop", "Email": self.username,
                                         "IsActive": True})
        from tests.emulators.salesforce import bulk, metadata

        self.bulk = bulk.BulkJobs(self)  # Bulk API 2.0 jobs and their faults
        self.metadata = metadata.MetadataApi(self)

    # ---- seeding --------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to an empty org (same server, keys and credentials)."""
        with self.lock:
            base, server = self.base, self.server
            self.__init__(**self._options)  # type: ignore[misc]
            self.base, self.server = base, server

    def new_id(self, sobject: str) -> str:
        """Key prefix, a pod-like "5g", a 10-digit counter and the case-safe suffix."""
        table = self.tables[sobject]
        table.counter += 1
        return f"{table.id_head}{table.counter:010d}{table.id_tail}"

    def stamp(self) -> str:
        """Now, in Salesforce's form (strictly after the last write's, like a real clock)."""
        value = now_sf()
        if value <= self._last_stamp:
            last = soql.parse_datetime(self._last_stamp)
            value = soql.sf_datetime(last + dt.timedelta(milliseconds=1))
        self._last_stamp = value
        return value

    def add(self, sobject: str, fields: dict[str, Any], *, modstamp: str | dt.datetime | None = None,
            created: str | dt.datetime | None = None, record_id: str | None = None) -> str:
        """Seed one record; any field may be set (system fields included)."""
        table = self.tables[sobject]
        obj = table.obj
        rid = full_id(record_id) if record_id else self.new_id(sobject)
        row = list(table.template)
        stamp = _stamp(modstamp) if modstamp else self.stamp()
        cols = table.cols
        user = self.__dict__.get("user_id", rid)
        row[cols["Id"]] = rid
        row[cols["CreatedDate"]] = _stamp(created) if created else stamp
        row[cols["LastModifiedDate"]] = row[cols["SystemModstamp"]] = stamp
        row[cols["CreatedById"]] = row[cols["LastModifiedById"]] = user
        if "OwnerId" in cols:
            row[cols["OwnerId"]] = user
        for name, value in fields.items():
            f = obj.fields.get(name)
            if f is None:
                raise KeyError(f"{sobject} has no field {name}")
            if isinstance(value, str) and len(value) < 40:
                value = sys.intern(value)
            i = cols[f.name]
            if i >= len(row):
                row.extend([None] * (i + 1 - len(row)))
            row[i] = _normalise(f, value)
        self._derive(table, row, fields.keys())
        table.rows[rid] = row
        return rid

    def add_opportunity(self, fields: dict[str, Any], history: Iterable[dict[str, Any]] = (), *,
                        modstamp: str | dt.datetime | None = None) -> str:
        """An opportunity and its OpportunityHistory rows (oldest first); the opportunity's
        tracked fields default to the last row's values."""
        rows = [dict(h) for h in history]
        merged = dict(fields)
        if rows:
            for name in TRACKED:
                if name not in merged and name in rows[-1]:
                    merged[name] = rows[-1][name]
        oid = self.add("Opportunity", merged, modstamp=modstamp,
                       created=rows[0].get("CreatedDate") if rows else None)
        prev: dict[str, Any] = {}
        for h in rows:
            self._history(oid, {**{k: prev.get(k) for k in TRACKED}, **h}, prev,
                          h.get("CreatedDate"))
            prev = {**prev, **h}
        return oid

    def _history(self, oid: str, values: dict[str, Any], prev: dict[str, Any],
                 when: Any = None) -> str:
        fields = {k: values.get(k) for k in TRACKED}
        fields["OpportunityId"] = oid
        stage = fields.get("StageName")
        fields["ForecastCategory"] = values.get("ForecastCategory") or STAGE_FORECAST.get(
            str(stage), "Pipeline")
        if fields.get("Amount") is not None and fields.get("Probability") is not None:
            fields["ExpectedRevenue"] = float(fields["Amount"]) * float(fields["Probability"]) / 100
        fields["PrevAmount"] = prev.get("Amount")
        fields["PrevCloseDate"] = prev.get("CloseDate")
        stamp = _stamp(when) if when else None
        return self.add("OpportunityHistory", fields, modstamp=stamp, created=stamp)

    def seed_pipeline(self, opportunities: int, *, accounts: int | None = None,
                      histories: int = 3, modstamp: str | dt.datetime | None = None,
                      start: dt.date = dt.date(2026, 1, 5)) -> list[str]:
        """Many opportunities fast: deterministic accounts, owners, stages and history rows.
        `modstamp` (one timestamp for all) reproduces a bulk load sharing one SystemModstamp."""
        n_accounts = accounts or max(1, opportunities // 10)
        industries = ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing")
        account_ids = [self.add("Account", {"Name": f"Account {i}", "Industry": industries[i % 5],
                                            "NumberOfEmployees": 10 * (1 + i % 500),
                                            "BillingCountry": ("DE", "US", "FR", "GB")[i % 4]},
                                modstamp=modstamp) for i in range(n_accounts)]
        shared = _stamp(modstamp) if modstamp else None
        stages = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")
        # Rows are built directly (the same values add_opportunity() would store), which is
        # several times faster than one add() per record.
        opps, hists = self.tables["Opportunity"], self.tables["OpportunityHistory"]
        oc, hc = opps.cols, hists.cols
        user = self.user_id
        ids = []
        for i in range(opportunities):
            created = dt.datetime.combine(start + dt.timedelta(days=i % 90), dt.time(9), dt.UTC)
            close = start + dt.timedelta(days=30 + i % 120)
            amount = float(1000 * (1 + i % 97))
            oid = self.new_id("Opportunity")
            prev_amount = prev_close = None
            values: dict[str, Any] = {}
            for h in range(histories):
                final = h == histories - 1
                stage = (("Closed Won" if i % 3 == 0 else "Closed Lost") if final and i % 2 == 0
                         else stages[min(h, 3)])
                when = _stamp(created + dt.timedelta(days=5 * h))
                prob = float(STAGE_PROBABILITY[stage])
                values = {"StageName": stage, "Amount": amount + 500 * h,
                          "CloseDate": _day(close + dt.timedelta(days=7 * h)),
                          "Probability": prob}
                row = list(hists.template)
                hid = self.new_id("OpportunityHistory")
                for name, value in (("Id", hid), ("OpportunityId", oid), ("CreatedDate", when),
                                    ("LastModifiedDate", when), ("SystemModstamp", when),
                                    ("CreatedById", user), ("LastModifiedById", user),
                                    ("ForecastCategory", STAGE_FORECAST.get(stage, "Pipeline")),
                                    ("ExpectedRevenue", values["Amount"] * prob / 100),
                                    ("PrevAmount", prev_amount), ("PrevCloseDate", prev_close),
                                    *values.items()):
                    row[hc[name]] = value
                hists.rows[hid] = row
                prev_amount, prev_close = values["Amount"], values["CloseDate"]
            stamp = shared or _stamp(created + dt.timedelta(days=5 * histories))
            row = list(opps.template)
            stage = values.get("StageName", "Prospecting")
            forecast = STAGE_FORECAST.get(stage, "Pipeline")
            for name, value in (("Id", oid), ("Name", f"Deal {i}"),
                                ("AccountId", account_ids[i % n_accounts]),
                                ("Type", ("New Business", "Existing Business")[i % 2]),
                                ("LeadSource", ("Web", "Partner", "Phone Inquiry")[i % 3]),
                                ("CreatedDate", _stamp(created)), ("LastModifiedDate", stamp),
                                ("SystemModstamp", stamp), ("CreatedById", user),
                                ("LastModifiedById", user), ("OwnerId", user),
                                ("IsClosed", stage.startswith("Closed")),
                                ("IsWon", stage == "Closed Won"), ("ForecastCategory", forecast),
                                ("ForecastCategoryName", forecast), *values.items()):
                row[oc[name]] = value
            if values:
                row[oc["ExpectedRevenue"]] = values["Amount"] * values["Probability"] / 100
            opps.rows[oid] = row
            ids.append(oid)
        return ids

    def _derive(self, table: Table, row: list[Any], given: Any) -> None:
        """Fields Salesforce computes: Name of a contact, the stage's flags on an opportunity."""
        name = table.obj.name
        if name in ("Contact", "User", "Lead"):
            first, last = table.value(row, "FirstName"), table.value(row, "LastName")
            table.set(row, "Name", " ".join(p for p in (first, last) if p) or None)
        if name == "Opportunity":
            stage = table.value(row, "StageName")
            if stage is not None:
                if "IsClosed" not in given:
                    table.set(row, "IsClosed", stage in ("Closed Won", "Closed Lost"))
                if "IsWon" not in given:
                    table.set(row, "IsWon", stage == "Closed Won")
                if "Probability" not in given and table.value(row, "Probability") is None:
                    table.set(row, "Probability", float(STAGE_PROBABILITY.get(stage, 10)))
                if "ForecastCategory" not in given:
                    table.set(row, "ForecastCategory", STAGE_FORECAST.get(stage, "Pipeline"))
                    table.set(row, "ForecastCategoryName", STAGE_FORECAST.get(stage, "Pipeline"))
            amount, prob = table.value(row, "Amount"), table.value(row, "Probability")
            table.set(row, "ExpectedRevenue", None if amount is None or prob is None
                      else float(amount) * float(prob) / 100)
        if name == "Task":
            table.set(row, "IsClosed", table.value(row, "Status") == "Completed")
        if name == "CampaignMember":
            table.set(row, "HasResponded", table.value(row, "Status") == "Responded")

    @property
    def spec_errors(self) -> list[str]:
        """Answers that did not validate against the vendor's schema (the Metadata WSDL)."""
        return list(self.metadata.spec_errors)

    def fail_on(self, pattern: str, status: int = 503, times: int = 1) -> None:
        """Answer the next `times` requests whose "METHOD /path?query" (URL-decoded) matches
        the regex `pattern` with `status` and Salesforce's error body for it."""
        self.fail_rules.append((pattern, status, times))

    def edit(self, sobject: str, rid: str, fields: dict[str, Any],
             when: str | dt.datetime | None = None) -> None:
        """A user changes a record in Salesforce (no API call, no permission checks): the
        values change, LastModifiedDate and SystemModstamp move to `when` (default now), and
        an Opportunity change of StageName, Amount, CloseDate or Probability adds its
        OpportunityHistory row."""
        table = self.tables[sobject]
        rid = full_id(rid)
        row = table.rows[rid]
        before = {k: table.value(row, k) for k in TRACKED} if sobject == "Opportunity" else {}
        for name, value in fields.items():
            f = table.obj.fields[name]
            table.set(row, f.name, _normalise(f, value))
        stamp = _stamp(when) if when else self.stamp()
        table.set(row, "LastModifiedDate", stamp)
        table.set(row, "SystemModstamp", stamp)
        self._derive(table, row, fields.keys())
        if sobject == "Opportunity":
            after = {k: table.value(row, k) for k in TRACKED}
            if after != before:
                self._history(rid, {**after, "ForecastCategory": table.value(
                    row, "ForecastCategory")}, before, stamp)

    def set_modstamp(self, sobject: str, ids: Iterable[str], when: str | dt.datetime) -> None:
        table = self.tables[sobject]
        stamp = _stamp(when)
        for rid in ids:
            row = table.rows[full_id(rid)]
            table.set(row, "SystemModstamp", stamp)
            table.set(row, "LastModifiedDate", stamp)

    def delete(self, sobject: str, rid: str, when: str | dt.datetime | None = None) -> None:
        table = self.tables[sobject]
        row = table.rows[full_id(rid)]
        stamp = _stamp(when) if when else self.stamp()
        table.set(row, "IsDeleted", True)
        table.set(row, "SystemModstamp", stamp)
        table.deleted[full_id(rid)] = stamp
        if sobject == "PermissionSetAssignment":
            self.metadata.recompute()

    def get(self, sobject: str, rid: str) -> dict[str, Any]:
        table = self.tables[sobject]
        return table.record(table.rows[full_id(rid)])

    def records(self, sobject: str) -> list[dict[str, Any]]:
        table = self.tables[sobject]
        return [table.record(r) for rid, r in table.rows.items() if rid not in table.deleted]

    def add_custom_field(self, sobject: str, name: str, typ: str, *, label: str = "",
                         visible: bool = True, precision: int = 0, scale: int = 0,
                         length: int = 0) -> sch.Field:
        obj = self.schema[sobject]
        f = sch.Field(name=name, type=typ, updateable=True, createable=True, custom=True,
                      label=label or name, visible=visible, precision=precision, scale=scale,
                      length=length)
        obj.fields[name] = f
        table = self.tables[sobject]
        if name not in table.cols:
            table.cols[name] = len(table.cols)
            table.template.append(False if typ == "boolean" else None)
        return f

    def delete_field(self, sobject: str, name: str) -> None:
        """An admin deleted the field: queries and writes naming it now fail, the Metadata
        API no longer reads it and permission sets lose their grant of it."""
        self.schema[sobject].fields[name].visible = False
        full = f"{sobject}.{name}"
        self.metadata.fields.pop(full, None)
        for ps in self.metadata.permission_sets.values():
            ps["fields"].pop(full, None)

    def enabled(self, obj: sch.SObject) -> bool:
        return self.sales_engagement or not obj.sales_engagement

    def updateable(self, obj: sch.SObject, f: sch.Field) -> bool:
        if obj.name == "ActionCadenceStepVariant" and f.name in ("SplitPercentage", "TemplateId"):
            return self.variant_testing
        return f.updateable

    def connected_app(self, *, consumer_key: str | None = None, consumer_secret: str | None = None,
                      certificate_pem: str | None = None, username: str | None = None) -> None:
        """Register the connected app a test made: its consumer key and secret, the certificate
        JWT assertions are verified with, and the (pre-authorised) user it runs as."""
        if consumer_key is not None:
            self.consumer_key = consumer_key
        if consumer_secret is not None:
            self.consumer_secret = consumer_secret
        if certificate_pem is not None:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            cert = x509.load_pem_x509_certificate(certificate_pem.encode())
            public = cert.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            self.keys = tls.KeyPair(private_key_pem="", certificate_pem=certificate_pem,
                                    public_key_pem=public.decode())
        if username is not None and username != self.username:
            self.username = username
            users = self.tables["User"]
            users.set(users.rows[self.user_id], "Username", username)

    # ---- sessions, quota, faults ----------------------------------------------------------
    def issue_token(self) -> str:
        token = "00D5g000004learn!" + secrets.token_urlsafe(48)
        self.sessions.add(token)
        return token

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def api_calls(self, prefix: str = "/services/") -> int:
        """Calls that count against the daily allowance (token requests do not)."""
        return sum(1 for c in self.calls if c.path.startswith(prefix) and _counts(c.path))

    def limit_info(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.daily_used}/{self.daily_max}"}

    # ---- server ---------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with emulator.lock:
                    try:
                        reply = emulator.route(method, self.path, dict(self.headers.items()), raw)
                    except SfError as exc:
                        reply = exc.reply()
                    except Exception as exc:  # a bug of the emulator: fail the test loudly
                        import traceback

                        emulator.unexpected.append(f"emulator crashed on {method} {self.path}: "
                                                   f"{traceback.format_exc()}")
                        reply = Reply(500, [{"message": f"emulator error: {exc}",
                                             "errorCode": "UNKNOWN_EXCEPTION"}])
                    path = urlsplit(self.path).path
                    emulator.calls.append(Call(method, path, reply.status, reply.records))
                    if reply.status < 400 and route_of(method, path) is None:
                        emulator.unexpected.append(f"{method} {path} answered {reply.status} "
                                                   "through a route missing from ROUTES")
                if isinstance(reply.body, bytes | str):
                    data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                else:
                    data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for k, v in (reply.headers or {}).items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, self._key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        return self.base

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def session(self) -> Any:
        """A requests.Session sending https://*.salesforce.com to this emulator."""
        import requests
        from requests.adapters import HTTPAdapter

        base, ca = self.base, self.ca_file

        class ToEmulator(HTTPAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                request.url = re.sub(r"^https://[^/]+\.salesforce\.com(?=/|$)", base,
                                     request.url or "")
                kwargs["verify"] = ca
                return super().send(request, *args, **kwargs)

        sess = requests.Session()
        sess.mount("https://", ToEmulator())
        sess.verify = ca
        return sess

    # ---- routing --------------------------------------------------------------------------
    def strange(self, what: str, status: int = 400, code: str = "INVALID_FIELD") -> SfError:
        self.unexpected.append(what)
        return SfError(status, code, what)

    def route(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        lower = {k.lower(): v for k, v in headers.items()}
        if path == "/services/oauth2/token" and method == "POST":
            return self.token(lower, raw)
        m = re.fullmatch(r"/services/Soap/u/(\d+\.\d)/?", path)
        if m and method == "POST":
            return self.soap_login(m.group(1), raw)
        if path in ("/services/data", "/services/data/") and method == "GET":
            self._no_params(query, set())
            return Reply(200, [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
                               for v in VERSIONS])
        m = re.fullmatch(r"/services/(data/v(\d+\.\d)(/.*)?|Soap/m/(\d+\.\d)/?)", path)
        if not m:
            raise self.strange(f"{method} {path}: no such route", 404, "NOT_FOUND")
        for i, (pattern, status, times) in enumerate(self.fail_rules):
            if re.search(pattern, f"{method} {unquote_plus(target)}"):
                if times <= 1:
                    del self.fail_rules[i]
                else:
                    self.fail_rules[i] = (pattern, status, times - 1)
                body = {503: ("Server is temporarily unavailable", "SERVER_UNAVAILABLE"),
                        429: ("Too many requests", "REQUEST_LIMIT_EXCEEDED"),
                        401: ("Session expired or invalid", "INVALID_SESSION_ID"),
                        403: ("TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED")}.get(
                    status, ("An unexpected error occurred", "UNKNOWN_EXCEPTION"))
                return Reply(status, [{"message": body[0], "errorCode": body[1]}])
        if self.fail_503 > 0:
            self.fail_503 -= 1
            return Reply(503, [{"message": "Server is temporarily unavailable",
                                "errorCode": "SERVER_UNAVAILABLE"}])
        if self.fail_429 > 0:
            self.fail_429 -= 1
            return Reply(429, [{"message": "Too many requests", "errorCode":
                                "REQUEST_LIMIT_EXCEEDED"}], {"Retry-After": "1"})
        soap = m.group(4) is not None
        token = self._session_token(lower, raw if soap else b"")
        if token not in self.sessions:
            if soap:
                return self.metadata.fault("sf:INVALID_SESSION_ID",
                                           "INVALID_SESSION_ID: Invalid Session ID found in "
                                           "SessionHeader: Illegal Session")
            return Reply(401, [{"message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID"}])
        if self.expire_after is not None:
            if self.expire_after <= 0:
                self.expire_after = None
                self.expire_sessions()
                return Reply(401, [{"message": "Session expired or invalid",
                                    "errorCode": "INVALID_SESSION_ID"}])
            self.expire_after -= 1
        if self.quota_after is not None:
            if self.quota_after <= 0:
                self.daily_used = max(self.daily_used, self.daily_max)
                self.quota_after = None
            else:
                self.quota_after -= 1
        if self.daily_used >= self.daily_max:
            return Reply(403, [{"message": "TotalRequests Limit exceeded.",
                                "errorCode": "REQUEST_LIMIT_EXCEEDED"}], self.limit_info())
        self.daily_used += 1
        if soap:
            return self.metadata.handle(m.group(4), raw)
        version, rest = m.group(2), m.group(3) or "/"
        if version not in VERSIONS:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            reply = self.rest(method, version, rest, query, lower, raw)
        except SfError as exc:  # error answers carry the usage header too
            reply = exc.reply()
        reply.headers = {**self.limit_info(), **(reply.headers or {})}
        return reply

    def _session_token(self, headers: dict[str, str], soap: bytes) -> str:
        if soap:
            found = re.search(rb"<(?:\w+:)?sessionId>([^<]+)</(?:\w+:)?sessionId>", soap)
            return found.group(1).decode() if found else ""
        auth = headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else ""

    def _no_params(self, query: dict[str, list[str]], allowed: set[str]) -> None:
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise self.strange(f"unexpected parameter {unknown[0]!r}", 400, "INVALID_FIELD")

    def _json(self, raw: bytes, allowed: set[str] | None = None) -> Any:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise SfError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        if allowed is not None:
            if not isinstance(body, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            unknown = sorted(set(body) - allowed)
            if unknown:
                raise self.strange(f"unexpected body field {unknown[0]!r}", 400,
                                   "JSON_PARSER_ERROR")
        return body

    def rest(self, method: str, version: str, rest: str, query: dict[str, list[str]],
             headers: dict[str, str], raw: bytes) -> Reply:
        v = f"/services/data/v{version}"
        if rest in ("/", "") and method == "GET":
            self._no_params(query, set())
            return Reply(200, {k: f"{v}/{k}" for k in ("sobjects", "query", "queryAll",
                                                       "limits", "composite", "jobs")})
        if rest in ("/limits", "/limits/") and method == "GET":
            self._no_params(query, set())
            return Reply(200, self.limits())
        if rest in ("/query", "/query/", "/queryAll", "/queryAll/") and method == "GET":
            self._no_params(query, {"q"})
            if "q" not in query:
                raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
            return self.run_query(query["q"][0], rest.startswith("/queryAll"), version, headers)
        m = re.fullmatch(r"/query(?:All)?/(01g\w+)-(\d+)", rest)
        if m and method == "GET":
            self._no_params(query, set())
            return self.query_page(m.group(1), int(m.group(2)), version, headers)
        if rest in ("/sobjects", "/sobjects/") and method == "GET":
            self._no_params(query, set())
            return Reply(200, self.describe_global(v))
        if rest in ("/composite", "/composite/") and method == "POST":
            self._no_params(query, set())
            return self.composite(raw, version, headers)
        if rest == "/composite/sobjects" or rest.startswith("/composite/sobjects/"):
            return self.collections(method, rest, query, raw, v, version)
        if rest.startswith("/jobs/"):
            return self.bulk.handle(method, rest, query, headers, raw, v)
        m = re.fullmatch(r"/sobjects/(\w+)(/.*)?", rest)
        if m:
            obj = self._sobject(m.group(1))
            return self.sobject(method, obj, m.group(2) or "", query, raw, v, version)
        raise self.strange(f"{method} {v}{rest}: no such route", 404, "NOT_FOUND")

    def _sobject(self, name: str) -> sch.SObject:
        obj = next((o for n, o in self.schema.items() if n.lower() == name.lower()), None)
        if obj is None or not self.enabled(obj):
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def limits(self) -> dict[str, Any]:
        def pair(mx: int, used: int = 0) -> dict[str, int]:
            return {"Max": mx, "Remaining": max(0, mx - used)}

        jobs = self.bulk.query_jobs_today
        return {"DailyApiRequests": pair(self.daily_max, self.daily_used),
                "DailyBulkV2QueryJobs": pair(10000, jobs),
                "DailyBulkV2QueryFileStorageMB": pair(976562),
                "DailyBulkApiBatches": pair(15000),
                "ConcurrentAsyncGetReportInstances": pair(200),
                "DataStorageMB": pair(5120), "FileStorageMB": pair(5120)}

    # ---- query ----------------------------------------------------------------------------
    def run_query(self, text: str, include_deleted: bool, version: str,
                  headers: dict[str, str]) -> Reply:
        try:
            q = soql.parse(text, self.schema, self.enabled)
        except soql.SoqlError as exc:
            self.errors.append(f"{exc.code}: {exc.message}")
            raise SfError(400, exc.code, exc.message) from None
        ids = self.select(q, include_deleted)
        if q.count:
            return Reply(200, {"totalSize": len(ids), "done": True, "records": []})
        locator = "01g" + "".join(secrets.choice(B62) for _ in range(12)) + "AAA"
        self.cursors[locator] = (q, ids, include_deleted)
        return self.query_page(locator, 0, version, headers)

    def select(self, q: soql.Query, include_deleted: bool) -> list[str]:
        table = self.tables[q.sobject.name]
        getter = self.getter(table)
        out = []
        candidates: Iterable[str] = table.rows
        if q.lookup is not None and not q.sobject.updateable and not q.sobject.createable:
            # A read-only object (OpportunityHistory) changes only by new rows: an index by
            # the looked-up field, rebuilt when rows are added, gives the same rows as a scan.
            candidates = self._indexed(table, q.lookup[0], q.lookup[1])
        for rid in candidates:
            row = table.rows[rid]
            if rid in table.deleted and not include_deleted:
                continue
            if q.where is None or q.where(lambda p, row=row: getter(row, p)):
                out.append(rid)
        for path, desc, nulls_last in reversed(q.order):
            def sort_key(rid: str, path: soql.Path = path, nulls_last: bool = nulls_last,
                         desc: bool = desc) -> Any:
                value = soql.Parser.key(path.field, getter(table.rows[rid], path))
                is_null = value is None
                # ascending: False sorts first; descending (reversed): True sorts first
                flag = (is_null == nulls_last) if not desc else (is_null != nulls_last)
                return (flag, value if value is not None else 0)
            out.sort(key=sort_key, reverse=desc)
        if q.offset:
            out = out[q.offset:]
        if q.limit is not None:
            out = out[:q.limit]
        return out

    def _indexed(self, table: Table, f: sch.Field, keys: frozenset[Any]) -> list[str]:
        stamp = (len(table.rows), len(table.deleted))
        cached = self._indexes.get((table.obj.name, f.name))
        if cached is None or cached[0] != stamp:
            index: dict[Any, list[tuple[int, str]]] = {}
            for n, (rid, row) in enumerate(table.rows.items()):
                index.setdefault(soql.Parser.key(f, table.value(row, f.name)), []).append(
                    (n, rid))
            cached = (stamp, index)
            self._indexes[(table.obj.name, f.name)] = cached
        return [rid for _, rid in sorted(hit for k in keys for hit in cached[1].get(k, ()))]

    def getter(self, table: Table) -> Any:
        def get(row: list[Any], path: soql.Path) -> Any:
            current_table, current = table, row
            for hop in path.hops:
                ref = current_table.value(current, hop.name)
                if ref is None:
                    return None
                current_table = self.tables[hop.reference_to[0]]
                current = current_table.rows.get(ref)
                if current is None:
                    return None
            return current_table.value(current, path.field.name)
        return get

    def query_page(self, locator: str, offset: int, version: str,
                   headers: dict[str, str]) -> Reply:
        if locator not in self.cursors:
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        q, ids, _ = self.cursors[locator]
        size = PAGE_MAX
        options = headers.get("sforce-query-options", "")
        if options:
            m = re.fullmatch(r"\s*batchSize\s*=\s*(\d+)\s*", options)
            if not m:
                raise self.strange(f"unexpected Sforce-Query-Options {options!r}", 400,
                                   "INVALID_HEADER_TYPE")
            size = min(PAGE_MAX, max(PAGE_MIN, int(m.group(1))))
        if sum(1 for p in q.fields if p.field.type == "textarea") >= 2:
            size = min(size, PAGE_MIN)  # Salesforce's page with two or more long text fields
        page = ids[offset:offset + size]
        table = self.tables[q.sobject.name]
        records = [self.render(table, table.rows[rid], q.fields, version) for rid in page]
        body: dict[str, Any] = {"totalSize": len(ids), "done": offset + size >= len(ids),
                                "records": records}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + size}"
        else:
            self.cursors.pop(locator, None)
        return Reply(200, body, records=len(records))

    def render(self, table: Table, row: list[Any], paths: list[soql.Path],
               version: str) -> dict[str, Any]:
        rid = table.value(row, "Id")
        out: dict[str, Any] = {"attributes": {
            "type": table.obj.name,
            "url": f"/services/data/v{version}/sobjects/{table.obj.name}/{rid}"}}
        for path in paths:
            target, current_table, current = out, table, row
            for hop in path.hops:
                rel = hop.relationship or ""
                ref = current_table.value(current, hop.name) if current is not None else None
                nxt = self.tables[hop.reference_to[0]]
                parent = nxt.rows.get(ref) if ref else None
                if parent is None:
                    target[rel] = None
                    current = None
                    break
                if not isinstance(target.get(rel), dict):
                    target[rel] = {"attributes": {
                        "type": nxt.obj.name,
                        "url": f"/services/data/v{version}/sobjects/{nxt.obj.name}/{ref}"}}
                target, current_table, current = target[rel], nxt, parent
            else:
                target[path.field.name] = current_table.value(current, path.field.name)
        return out

    # ---- describe -------------------------------------------------------------------------
    def _object_summary(self, obj: sch.SObject, v: str) -> dict[str, Any]:
        base = f"{v}/sobjects/{obj.name}"
        return {"name": obj.name, "label": obj.label, "labelPlural": obj.label + "s",
                "keyPrefix": obj.key_prefix, "custom": False, "queryable": True,
                "retrieveable": True, "searchable": True, "createable": obj.createable,
                "updateable": obj.updateable, "deletable": obj.createable,
                "replicateable": True, "layoutable": obj.createable, "triggerable": True,
                "urls": {"sobject": base, "describe": f"{base}/describe",
                         "rowTemplate": f"{base}/{{ID}}"}}

    def describe_global(self, v: str) -> dict[str, Any]:
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [self._object_summary(o, v) for o in self.schema.values()
                             if self.enabled(o)]}

    def describe(self, obj: sch.SObject, v: str) -> dict[str, Any]:
        out = self._object_summary(obj, v)
        fields = []
        for f in obj.visible_fields():
            d = f.describe()
            d["updateable"] = self.updateable(obj, f)
            fields.append(d)
        out["fields"] = fields
        out["childRelationships"] = [
            {"childSObject": o.name, "field": f.name, "relationshipName": None,
             "cascadeDelete": False}
            for o in self.schema.values() if self.enabled(o) for f in o.visible_fields()
            if obj.name in f.reference_to]
        return out

    # ---- sObject rows ---------------------------------------------------------------------
    def sobject(self, method: str, obj: sch.SObject, sub: str, query: dict[str, list[str]],
                raw: bytes, v: str, version: str) -> Reply:
        table = self.tables[obj.name]
        if sub in ("", "/") and method == "GET":
            self._no_params(query, set())
            recent = [{"attributes": {"type": obj.name, "url": f"{v}/sobjects/{obj.name}/{rid}"},
                       "Id": rid} for rid in list(table.rows)[-5:] if rid not in table.deleted]
            return Reply(200, {"objectDescribe": self._object_summary(obj, v),
                               "recentItems": recent})
        if sub in ("", "/") and method == "POST":
            self._no_params(query, set())
            body = self._json(raw)
            if not isinstance(body, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            body.pop("attributes", None)
            rid = self.write(obj, None, body, create=True)
            return Reply(201, {"id": rid, "success": True, "errors": []}, records=1)
        if sub in ("/describe", "/describe/") and method == "GET":
            self._no_params(query, set())
            return Reply(200, self.describe(obj, v))
        if sub in ("/updated", "/updated/", "/deleted", "/deleted/") and method == "GET":
            self._no_params(query, {"start", "end"})
            return self.changes(obj, "updated" in sub, query)
        m = re.fullmatch(r"/(\w+)", sub)
        if m and not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", m.group(1)):
            raise self.strange(f"{method} {v}/sobjects/{obj.name}{sub}: no such route", 404,
                               "NOT_FOUND")
        if m:
            rid = full_id(m.group(1))
            row = table.rows.get(rid)
            if row is None or rid in table.deleted:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            if method == "GET":
                self._no_params(query, {"fields"})
                names = [n for f in query.get("fields", []) for n in f.split(",") if n.strip()]
                if names:
                    paths = []
                    for n in names:
                        f = obj.field(n.strip())
                        if f is None:
                            raise SfError(400, "INVALID_FIELD",
                                          f"No such column '{n.strip()}' on entity '{obj.name}'.")
                        paths.append(soql.Path([], f, n))
                else:
                    paths = [soql.Path([], f, f.name) for f in obj.visible_fields()]
                return Reply(200, self.render(table, row, paths, version), records=1)
            if method == "PATCH":
                self._no_params(query, set())
                body = self._json(raw)
                if not isinstance(body, dict):
                    raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
                body.pop("attributes", None)
                self.write(obj, rid, body, create=False)
                return Reply(204, records=1)
            if method == "DELETE":
                self._no_params(query, set())
                if not obj.createable:
                    raise SfError(400, "INVALID_TYPE_FOR_OPERATION",
                                  f"entity type {obj.name} does not support delete")
                self.delete(obj.name, rid)
                return Reply(204, records=1)
        m = re.fullmatch(r"/(\w+)/([^/]+)", sub)
        if m:
            f = obj.field(m.group(1))
            if f is None or not (f.external_id or f.name == "Id"):
                raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or "
                                               f"is not accessible: {m.group(1)}")
            value = unquote(m.group(2))
            matches = [rid for rid, row in table.rows.items() if rid not in table.deleted
                       and table.value(row, f.name) == value]
            if len(matches) > 1:
                return Reply(300, [f"{v}/sobjects/{obj.name}/{rid}" for rid in matches])
            if method == "GET":
                self._no_params(query, {"fields"})
                if not matches:
                    raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
                paths = [soql.Path([], x, x.name) for x in obj.visible_fields()]
                return Reply(200, self.render(table, table.rows[matches[0]], paths, version),
                             records=1)
            if method == "PATCH":
                self._no_params(query, set())
                body = self._json(raw)
                if not isinstance(body, dict):
                    raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
                body.pop("attributes", None)
                if f.name in body:
                    raise SfError(400, "INVALID_FIELD", f"The external ID field {f.name} cannot "
                                                        "be set in the body of an upsert")
                if matches:
                    self.write(obj, matches[0], body, create=False)
                    payload = {"id": matches[0], "success": True, "errors": [], "created": False}
                    if float(version) < 46:
                        return Reply(204, records=1)
                    return Reply(200, payload, records=1)
                rid = self.write(obj, None, {**body, f.name: value}, create=True)
                return Reply(201, {"id": rid, "success": True, "errors": [], "created": True},
                             records=1)
        raise self.strange(f"{method} {v}/sobjects/{obj.name}{sub}: no such route", 404,
                           "NOT_FOUND")

    def write(self, obj: sch.SObject, rid: str | None, body: dict[str, Any], *,
              create: bool) -> str:
        """Validate and apply one record's create or update (raises SfError, changes nothing
        when it does)."""
        if (create and not obj.createable) or (not create and not obj.updateable):
            raise SfError(400, "INVALID_TYPE_FOR_OPERATION",
                          f"entity type {obj.name} does not support "
                          f"{'insert' if create else 'update'}")
        table = self.tables[obj.name]
        values: dict[str, Any] = {}
        for name, value in body.items():
            f = obj.field(name)
            if f is None:
                self.errors.append(f"INVALID_FIELD {obj.name}.{name}")
                raise SfError(400, "INVALID_FIELD",
                              f"No such column '{name}' on sobject of type {obj.name}")
            writable = f.createable if create else self.updateable(obj, f)
            if not writable or f.name == "Id":
                self.errors.append(f"INVALID_FIELD_FOR_INSERT_UPDATE {obj.name}.{f.name}")
                raise SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                              f"Unable to create/update fields: {f.name}. Please check the "
                              "security settings of this field and verify that it is "
                              "read/write for your profile or permission set.", [f.name])
            values[f.name] = self._value(obj, f, value)
        if create:
            missing = [f.name for f in obj.visible_fields() if f.createable and not f.nillable
                       and f.type != "boolean" and values.get(f.name) is None]
            if missing:
                raise SfError(400, "REQUIRED_FIELD_MISSING",
                              f"Required fields are missing: [{', '.join(missing)}]", missing)
            if obj.name == "PermissionSetAssignment":
                table_a = self.tables[obj.name]
                if any(table_a.value(r, "AssigneeId") == values["AssigneeId"]
                       and table_a.value(r, "PermissionSetId") == values["PermissionSetId"]
                       for i, r in table_a.rows.items() if i not in table_a.deleted):
                    raise SfError(400, "DUPLICATE_VALUE", "Duplicate PermissionSetAssignment. "
                                  "Assignee: " + values["AssigneeId"], [])
            rid = self.add(obj.name, values, created=None)
            if obj.name == "Opportunity":  # an insert is the first OpportunityHistory row
                table_o = self.tables["Opportunity"]
                row_o = table_o.rows[rid]
                self._history(rid, {k: table_o.value(row_o, k) for k in
                                    (*TRACKED, "ForecastCategory")}, {},
                              table_o.value(row_o, "CreatedDate"))
            if obj.name == "PermissionSetAssignment":
                self.metadata.recompute()
            return rid
        assert rid is not None
        row = table.rows[rid]
        if obj.name == "ActionCadenceStepVariant" and "SplitPercentage" in values:
            self._check_split(rid, row, values["SplitPercentage"])
        before = {k: table.value(row, k) for k in TRACKED} if obj.name == "Opportunity" else {}
        for name, value in values.items():
            table.set(row, name, value)
        stamp = self.stamp()
        table.set(row, "LastModifiedDate", stamp)
        table.set(row, "SystemModstamp", stamp)
        table.set(row, "LastModifiedById", self.user_id)
        self._derive(table, row, set())
        if obj.name == "Opportunity":
            after = {k: table.value(row, k) for k in TRACKED}
            if after != before:
                self._history(rid, {**after, "ForecastCategory": table.value(
                    row, "ForecastCategory")}, before, stamp)
        return rid

    def _check_split(self, rid: str, row: list[Any], split: Any) -> None:
        """All variants of a step must total 100 (checked per write, like the UI does)."""
        table = self.tables["ActionCadenceStepVariant"]
        step = table.value(row, "ActionCadenceStepId")
        if not isinstance(split, int) or not 0 <= split <= 100:
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          "Split percentage must be a whole number from 0 to 100",
                          ["SplitPercentage"])
        others = sum(table.value(r, "SplitPercentage") or 0 for i, r in table.rows.items()
                     if i != rid and table.value(r, "ActionCadenceStepId") == step
                     and i not in table.deleted)
        if others + split > 100:
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          "The split percentages of a step's variants can't total more than "
                          "100", ["SplitPercentage"])

    def _value(self, obj: sch.SObject, f: sch.Field, value: Any) -> Any:
        def bad(kind: str) -> SfError:
            return SfError(400, "JSON_PARSER_ERROR",
                           f"Cannot deserialize instance of {kind} from {type(value).__name__} "
                           f"value {value!r} or request may be missing a required field",
                           [f.name])
        if value is None:
            if not f.nillable and f.type != "boolean":
                raise SfError(400, "REQUIRED_FIELD_MISSING",
                              f"Required fields are missing: [{f.name}]", [f.name])
            return None
        if f.type == "boolean":
            if not isinstance(value, bool):
                raise bad("boolean")
            return value
        if f.type in sch.NUMBER_TYPES:
            if isinstance(value, bool):
                raise bad(f.type)
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise bad(f.type) from None
            if not isinstance(value, int | float):
                raise bad(f.type)
            if f.type == "int":
                if value != int(value):
                    raise bad("int")
                return int(value)
            return float(value)
        if not isinstance(value, str):
            raise bad(f.type)
        if f.type == "date":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise bad("date")
            return value
        if f.type == "datetime":
            try:
                return soql.sf_datetime(soql.parse_datetime(value))
            except ValueError:
                raise bad("datetime") from None
        if f.length and len(value) > f.length:
            raise SfError(400, "STRING_TOO_LONG",
                          f"{f.label}: data value too large: {value[:20]}... (max length="
                          f"{f.length})", [f.name])
        if f.type in ("reference", "id"):
            rid = full_id(value)
            ok = any(self.tables[t].rows.get(rid) is not None and rid not in self.tables[t].deleted
                     for t in f.reference_to if t in self.tables)
            if not ok:
                raise SfError(400, "INVALID_CROSS_REFERENCE_KEY",
                              "invalid cross reference id", [f.name])
            return rid
        return value

    def changes(self, obj: sch.SObject, updated: bool, query: dict[str, list[str]]) -> Reply:
        try:
            start = soql.parse_datetime(query["start"][0])
            end = soql.parse_datetime(query["end"][0])
        except (KeyError, ValueError):
            raise SfError(400, "INVALID_REPLICATION_DATE",
                          "start and end must be ISO 8601 date times") from None
        now = dt.datetime.now(dt.UTC)
        if start < now - dt.timedelta(days=30) or end <= start:
            raise SfError(400, "INVALID_REPLICATION_DATE",
                          "startDate must be within the last 30 days and before endDate")
        end = min(end, now).replace(second=0, microsecond=0)
        lo, hi = soql.sf_datetime(start), soql.sf_datetime(end)
        table = self.tables[obj.name]
        covered = soql.sf_datetime(end)
        if updated:
            ids = [rid for rid, row in table.rows.items() if rid not in table.deleted
                   and lo <= table.value(row, "SystemModstamp") < hi]
            return Reply(200, {"ids": ids, "latestDateCovered": covered}, records=len(ids))
        gone = [{"id": rid, "deletedDate": when} for rid, when in table.deleted.items()
                if lo <= when < hi]
        return Reply(200, {"deletedRecords": gone, "latestDateCovered": covered,
                           "earliestDateAvailable": soql.sf_datetime(now - dt.timedelta(days=30))},
                     records=len(gone))

    # ---- composite ------------------------------------------------------------------------
    def composite(self, raw: bytes, version: str, headers: dict[str, str]) -> Reply:
        """POST composite: up to 25 subrequests in order, one API call for all of them."""
        body = self._json(raw, {"allOrNone", "compositeRequest", "collateSubrequests"})
        subs = body.get("compositeRequest")
        if not isinstance(subs, list) or not subs:
            raise SfError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subs) > 25:
            raise SfError(400, "LIMIT_EXCEEDED", "Exceeded max limit of subrequests allowed "
                                                 "(25).")
        out, records = [], 0
        for sub in subs:
            if not isinstance(sub, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "A subrequest must be an object")
            unknown = sorted(set(sub) - {"method", "url", "referenceId", "body", "httpHeaders"})
            if unknown:
                raise self.strange(f"unexpected subrequest field {unknown[0]!r}", 400,
                                   "JSON_PARSER_ERROR")
            url = str(sub.get("url", ""))
            parts = urlsplit(url)
            m = re.fullmatch(r"/services/data/v(\d+\.\d)(/.*)", parts.path)
            if not m or m.group(2).startswith("/composite"):
                raise self.strange(f"unexpected composite subrequest url {url!r}", 400,
                                   "INVALID_URL")
            sub_headers = {**headers, **{k.lower(): v for k, v in
                                         (sub.get("httpHeaders") or {}).items()}}
            try:
                reply = self.rest(str(sub.get("method", "GET")).upper(), m.group(1), m.group(2),
                                  parse_qs(parts.query, keep_blank_values=True), sub_headers,
                                  json.dumps(sub["body"]).encode() if "body" in sub else b"")
            except SfError as exc:
                reply = exc.reply()
            records += reply.records
            out.append({"body": reply.body, "httpHeaders": reply.headers or {},
                        "httpStatusCode": reply.status, "referenceId": sub.get("referenceId")})
        return Reply(200, {"compositeResponse": out}, records=records)

    # ---- composite sObject collections ----------------------------------------------------
    def collections(self, method: str, rest: str, query: dict[str, list[str]], raw: bytes,
                    v: str, version: str) -> Reply:
        m = re.fullmatch(r"/composite/sobjects/(\w+)", rest)
        if m and method == "GET":
            self._no_params(query, {"ids", "fields"})
            obj = self._sobject(m.group(1))
            ids = [i for x in query.get("ids", []) for i in x.split(",") if i]
            names = [n for x in query.get("fields", []) for n in x.split(",") if n]
            if not ids or not names:
                raise SfError(400, "MALFORMED_QUERY", "ids and fields are required")
            if len(ids) > COLLECTION_MAX:
                raise SfError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit "
                                                        "more than 200 records into this call")
            paths = []
            for n in names:
                f = obj.field(n)
                if f is None:
                    raise SfError(400, "INVALID_FIELD", f"No such column '{n}' on entity "
                                                        f"'{obj.name}'.")
                paths.append(soql.Path([], f, n))
            table = self.tables[obj.name]
            out = [self.render(table, table.rows[full_id(i)], paths, version)
                   if full_id(i) in table.rows and full_id(i) not in table.deleted else None
                   for i in ids]
            return Reply(200, out, records=sum(1 for r in out if r))
        if rest != "/composite/sobjects":
            raise self.strange(f"{method} {v}{rest}: no such route", 404, "NOT_FOUND")
        if method not in ("POST", "PATCH"):
            raise self.strange(f"{method} {v}{rest}: no such route", 404, "NOT_FOUND")
        self._no_params(query, set())
        body = self._json(raw, {"allOrNone", "records"})
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise SfError(400, "JSON_PARSER_ERROR", "records is required")
        if len(records) > COLLECTION_MAX:
            raise SfError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                                                    "than 200 records into this call")
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, Any]] = []
        snapshot = self._snapshot() if all_or_none else None
        failed = False
        for rec in records:
            try:
                if not isinstance(rec, dict) or not isinstance(rec.get("attributes"), dict) \
                        or "type" not in rec["attributes"]:
                    raise SfError(400, "INVALID_FIELD", "No SObject Type defined in the record")
                rec = dict(rec)
                obj = self._sobject(rec.pop("attributes")["type"])
                if method == "PATCH":
                    rid = full_id(str(rec.pop("id", rec.pop("Id", "")) or ""))
                    table = self.tables[obj.name]
                    if rid not in table.rows:
                        raise SfError(400, "MALFORMED_ID", f"{obj.name} ID: id value of "
                                                           "incorrect type", ["Id"])
                    if rid in table.deleted:
                        raise SfError(400, "ENTITY_IS_DELETED", "entity is deleted", [])
                    injected = self.record_errors.get(rid)
                    if injected:
                        code, message, times = injected
                        if times <= 1:
                            del self.record_errors[rid]
                        else:
                            self.record_errors[rid] = (code, message, times - 1)
                        raise SfError(400, code, message, [])
                    self.write(obj, rid, rec, create=False)
                    results.append({"id": rid, "success": True, "errors": []})
                else:
                    if "id" in rec or "Id" in rec:
                        raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert "
                                                            "call", ["Id"])
                    rid = self.write(obj, None, rec, create=True)
                    results.append({"id": rid, "success": True, "errors": []})
            except SfError as exc:
                failed = True
                results.append({"success": False, "errors": [
                    {"statusCode": exc.code, "message": exc.message,
                     "fields": exc.fields or []}]})
        if all_or_none and failed and snapshot is not None:
            self._restore(snapshot)
            results = [r if not r["success"] else {"id": r["id"], "success": False, "errors": [
                {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                 "message": "Record rolled back because not all records were valid and the "
                            "request was using AllOrNone header", "fields": []}]}
                       for r in results]
        return Reply(200, results, records=len(records))

    def _snapshot(self) -> dict[str, tuple[dict[str, list[Any]], dict[str, str], int]]:
        return {n: ({k: list(r) for k, r in t.rows.items()}, dict(t.deleted), t.counter)
                for n, t in self.tables.items() if t.rows and n != "User"}

    def _restore(self, snap: dict[str, tuple[dict[str, list[Any]], dict[str, str], int]]) -> None:
        for n, t in self.tables.items():
            if n in snap:
                t.rows, t.deleted, t.counter = snap[n]
            elif n != "User":
                t.rows, t.deleted = {}, {}

    # ---- auth -----------------------------------------------------------------------------
    def token(self, headers: dict[str, str], raw: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        grant = form.get("grant_type", "")

        def fail(error: str, description: str) -> Reply:
            self.errors.append(f"token: {error}: {description}")
            return Reply(400, {"error": error, "error_description": description})

        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            unknown = sorted(set(form) - {"grant_type", "assertion"})
            if unknown:
                raise self.strange(f"unexpected token parameter {unknown[0]!r}", 400,
                                   "invalid_request")
            import jwt

            try:
                claims = jwt.decode(
                    form.get("assertion", ""), self.keys.public_key_pem, algorithms=["RS256"],
                    audience=[f"https://{self.domain}.salesforce.com",
                              "https://login.salesforce.com", "https://test.salesforce.com"],
                    options={"require": ["iss", "sub", "aud", "exp"]})
            except jwt.ExpiredSignatureError:
                return fail("invalid_grant", "expired authorization code")
            except jwt.InvalidAudienceError:
                return fail("invalid_grant", "audience is invalid")
            except jwt.PyJWTError:
                return fail("invalid_grant", "invalid assertion")
            if claims.get("iss") != self.consumer_key:
                return fail("invalid_client_id", "client identifier invalid")
            if not self._active_user(str(claims.get("sub"))):
                return fail("invalid_grant", "user hasn't approved this consumer")
        elif grant == "client_credentials":
            unknown = sorted(set(form) - {"grant_type", "client_id", "client_secret"})
            if unknown:
                raise self.strange(f"unexpected token parameter {unknown[0]!r}", 400,
                                   "invalid_request")
            auth = headers.get("authorization", "")
            key, secret = form.get("client_id"), form.get("client_secret")
            if auth.startswith("Basic "):
                key, _, secret = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")
            if key != self.consumer_key:
                return fail("invalid_client_id", "client identifier invalid")
            if secret != self.consumer_secret:
                return fail("invalid_client", "invalid client credentials")
        elif grant == "password":
            return fail("unsupported_grant_type",
                        "the OAuth username-password flow is blocked in this org")
        else:
            return fail("unsupported_grant_type", "grant type not supported")
        token = self.issue_token()
        return Reply(200, {"access_token": token, "scope": "api", "instance_url": self.base,
                           "id": f"https://login.salesforce.com/id/00D5g000004learn/{self.user_id}",
                           "token_type": "Bearer",
                           "issued_at": str(int(dt.datetime.now(dt.UTC).timestamp() * 1000)),
                           "signature": base64.b64encode(secrets.token_bytes(32)).decode()})

    def _active_user(self, username: str) -> bool:
        users = self.tables["User"]
        return any(users.value(r, "Username") == username and users.value(r, "IsActive")
                   for r in users.rows.values())

    def soap_login(self, version: str, raw: bytes) -> Reply:
        def fault(code: str, message: str) -> Reply:
            self.errors.append(f"login: {code}")
            xml = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
                   '"http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.'
                   'soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                   '<soapenv:Body><soapenv:Fault><faultcode>sf:' + code + '</faultcode>'
                   '<faultstring>' + code + ': ' + message + '</faultstring><detail>'
                   '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>' + code +
                   '</sf:exceptionCode><sf:exceptionMessage>' + message +
                   '</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>'
                   '</soapenv:Body></soapenv:Envelope>')
            return Reply(500, xml, content_type="text/xml;charset=UTF-8")

        if float(version) >= 65.0:
            return fault("INVALID_OPERATION", f"SOAP API login() is not supported in API "
                                              f"version {version} and later")
        if not self.soap_login_enabled:
            return fault("INVALID_OPERATION", "SOAP API login() is disabled by default in "
                                              "this org.")
        text = raw.decode(errors="replace")
        user = re.search(r"<(?:\w+:)?username>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</", text, re.S)
        password = re.search(r"<(?:\w+:)?password>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</", text, re.S)
        from xml.sax.saxutils import unescape

        if not user or not password or unescape(user.group(1)) != self.username or \
                unescape(password.group(1)) != self.password + self.security_token:
            return fault("INVALID_LOGIN", "Invalid username, password, security token; or "
                                          "user locked out.")
        token = self.issue_token()
        host = self.base.removeprefix("https://")
        xml = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
               '"http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
               '<soapenv:Body><loginResponse><result><metadataServerUrl>https://' + host +
               f'/services/Soap/m/{version}/00D5g000004learn</metadataServerUrl>'
               '<passwordExpired>false</passwordExpired><sandbox>false</sandbox>'
               f'<serverUrl>https://{host}/services/Soap/u/{version}/00D5g000004learn'
               f'</serverUrl><sessionId>{token}</sessionId><userId>{self.user_id}</userId>'
               '</result></loginResponse></soapenv:Body></soapenv:Envelope>')
        return Reply(200, xml, content_type="text/xml;charset=UTF-8")


def _counts(path: str) -> bool:
    """Whether a call counts against the daily API allowance."""
    return not (path.startswith("/services/oauth2/") or path.startswith("/services/Soap/u/")
                or path.rstrip("/") == "/services/data")


@functools.lru_cache(maxsize=65536)
def _stamp(value: str | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        return sys.intern(soql.sf_datetime(value if value.tzinfo else
                                           value.replace(tzinfo=dt.UTC)))
    return sys.intern(soql.sf_datetime(soql.parse_datetime(value)))


@functools.lru_cache(maxsize=4096)
def _day(value: dt.date) -> str:
    return sys.intern(value.isoformat())


def _normalise(f: sch.Field, value: Any) -> Any:
    """A seeded value in the form the emulator stores (dates and datetimes as text)."""
    if isinstance(value, dt.datetime):
        return _stamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if f.type == "datetime" and isinstance(value, str):
        return _stamp(value)
    if f.type in ("reference", "id") and isinstance(value, str):
        return full_id(value)
    if f.type in ("currency", "percent", "double") and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    return value
