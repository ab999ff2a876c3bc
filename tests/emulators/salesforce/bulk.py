"""Bulk API 2.0 for the Salesforce emulator: query jobs (`query`, `queryAll`) and ingest jobs
(`insert`, `update`, `upsert`, `delete`), with Salesforce's job states and CSV.

Query jobs start `UploadComplete`; ingest jobs start `Open`, take one CSV upload
(`PUT .../batches`, answered 201) and are processed only after `PATCH {"state":
"UploadComplete"}`. A job polled with `GET` moves to `InProgress` and, after `polls` more
polls, to `JobComplete` (or `Failed`, for the next `fail_next` jobs: `errorMessage` says why).
Query results are CSV pages (`maxRecords`, `locator`; headers `Sforce-Locator`, the literal
`null` on the last page, and `Sforce-NumberOfRecords`); ingest results are
`successfulResults`, `failedResults` (`sf__Id`, `sf__Error`, then the uploaded columns) and
`unprocessedrecords` (also `unprocessedRecords`, as simple-salesforce spells it). Objects in
`unsupported` answer `INVALIDENTITY` ("not supported by the Bulk API"), for a connector's REST
fallback. Every job route goes through the emulator's session and quota checks, so an expired
session mid-job is a 401 like anywhere else.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.emulators.salesforce import soql
from tests.emulators.salesforce.server import Reply, SfError, full_id, now_sf

if TYPE_CHECKING:
    from tests.emulators.salesforce.server import SalesforceEmulator

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
              "BACKQUOTE": "`"}
ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
QUERY_KEYS = {"operation", "query", "columnDelimiter", "lineEnding", "contentType"}
INGEST_KEYS = {"operation", "object", "externalIdFieldName", "contentType", "columnDelimiter",
               "lineEnding", "assignmentRuleId"}


@dataclass
class Job:
    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object: str
    state: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id: str | None = None
    created: str = ""
    query: soql.Query | None = None
    ids: list[str] = field(default_factory=list)
    polls: int = 0
    upload: str | None = None
    error: str = ""
    success: list[tuple[str, bool, dict[str, str]]] = field(default_factory=list)
    failed: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)


class BulkJobs:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emu = emulator
        self.jobs: dict[str, Job] = {}
        self.polls = 1  # polls in InProgress before a job completes
        self.fail_next = 0  # the next N jobs end Failed
        self.unsupported: set[str] = set()
        self.query_jobs_today = 0
        self._counter = 0

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return full_id(f"{prefix}5g{self._counter:010d}")

    def handle(self, method: str, rest: str, query: dict[str, list[str]],
               headers: dict[str, str], raw: bytes, v: str) -> Reply:
        m = re.fullmatch(r"/jobs/(query|ingest)/?", rest)
        if m and method == "POST":
            self.emu._no_params(query, set())
            return self.create(m.group(1), raw, v)
        if m and method == "GET":
            self.emu._no_params(query, {"isPkChunkingEnabled", "jobType", "concurrencyMode",
                                        "queryLocator"})
            jobs = [self.info(j, v) for j in self.jobs.values() if j.kind == m.group(1)]
            return Reply(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
        m = re.fullmatch(r"/jobs/(query|ingest)/(\w{15,18})(/[A-Za-z]+)?", rest)
        if not m:
            raise self.emu.strange(f"{method} {v}{rest}: no such route", 404, "NOT_FOUND")
        kind, jid, sub = m.group(1), full_id(m.group(2)), m.group(3) or ""
        job = self.jobs.get(jid)
        if job is None or job.kind != kind:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if sub == "" and method == "GET":
            self.emu._no_params(query, set())
            self.advance(job)
            return Reply(200, self.info(job, v, full=True))
        if sub == "" and method == "PATCH":
            self.emu._no_params(query, set())
            body = self.emu._json(raw, {"state"})
            return self.set_state(job, str(body.get("state")), v)
        if sub == "" and method == "DELETE":
            self.emu._no_params(query, set())
            if job.state not in ("JobComplete", "Failed", "Aborted", "UploadComplete"):
                raise SfError(400, "INVALIDJOBSTATE", "Job must be closed, completed, failed "
                                                      "or aborted before it is deleted")
            del self.jobs[jid]
            return Reply(204)
        if kind == "query" and sub == "/results" and method == "GET":
            self.emu._no_params(query, {"maxRecords", "locator"})
            return self.results(job, query)
        if kind == "ingest" and sub == "/batches" and method == "PUT":
            self.emu._no_params(query, set())
            if "text/csv" not in headers.get("content-type", ""):
                raise self.emu.strange(f"upload content type {headers.get('content-type')!r}",
                                       400, "INVALIDCONTENTTYPE")
            if job.state != "Open" or job.upload is not None:
                raise SfError(400, "INVALIDJOBSTATE", "You can only upload data to a job "
                                                      "once, while it is Open")
            job.upload = raw.decode("utf-8")
            return Reply(201, records=max(0, job.upload.count("\n") - 1))
        if kind == "ingest" and method == "GET" and sub in (
                "/successfulResults", "/failedResults", "/unprocessedrecords",
                "/unprocessedRecords"):
            self.emu._no_params(query, set())
            return self.ingest_results(job, sub)
        raise self.emu.strange(f"{method} {v}{rest}: no such route", 404, "NOT_FOUND")

    # ---- jobs -----------------------------------------------------------------------------
    def create(self, kind: str, raw: bytes, v: str) -> Reply:
        body = self.emu._json(raw, QUERY_KEYS if kind == "query" else INGEST_KEYS)
        delimiter = str(body.get("columnDelimiter", "COMMA"))
        ending = str(body.get("lineEnding", "LF"))
        if delimiter not in DELIMITERS or ending not in ENDINGS:
            raise SfError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        if body.get("contentType", "CSV") != "CSV":
            raise SfError(400, "INVALIDJOB", "Only CSV is supported")
        op = str(body.get("operation", ""))
        if kind == "query":
            if op not in ("query", "queryAll"):
                raise SfError(400, "INVALIDJOB", f"Invalid operation {op!r} for a query job")
            text = str(body.get("query") or "")
            try:
                q = soql.parse(text, self.emu.schema, self.emu.enabled)
            except soql.SoqlError as exc:
                self.emu.errors.append(f"bulk {exc.code}: {exc.message}")
                raise SfError(400, "INVALIDENTITY" if exc.code == "INVALID_TYPE" else exc.code,
                              exc.message) from None
            if q.count or q.offset:
                raise SfError(400, "MALFORMED_QUERY", "COUNT() and OFFSET are not supported by "
                                                      "Bulk API 2.0 queries")
            if q.sobject.name in self.unsupported:
                raise SfError(400, "INVALIDENTITY", f"Entity '{q.sobject.name}' is not "
                                                    "supported by the Bulk API.")
            self.query_jobs_today += 1
            job = Job(id=self._new_id("750"), kind=kind, operation=op, object=q.sobject.name,
                      state="UploadComplete", delimiter=delimiter, line_ending=ending,
                      created=now_sf(), query=q)
        else:
            if op not in ("insert", "update", "upsert", "delete"):
                raise SfError(400, "INVALIDJOB", f"Invalid operation {op!r} for an ingest job")
            name = str(body.get("object") or "")
            obj = next((o for n, o in self.emu.schema.items() if n.lower() == name.lower()), None)
            if obj is None or not self.emu.enabled(obj) or obj.name in self.unsupported:
                raise SfError(400, "INVALIDENTITY", f"Entity '{name}' is not supported by the "
                                                    "Bulk API.")
            ext = body.get("externalIdFieldName")
            if op == "upsert" and not ext:
                raise SfError(400, "INVALIDJOB", "externalIdFieldName is required for upsert")
            job = Job(id=self._new_id("750"), kind=kind, operation=op, object=obj.name,
                      state="Open", delimiter=delimiter, line_ending=ending,
                      external_id=str(ext) if ext else None, created=now_sf())
        self.jobs[job.id] = job
        return Reply(200, self.info(job, v))

    def info(self, job: Job, v: str, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.object,
            "createdById": self.emu.user_id, "createdDate": job.created,
            "systemModstamp": job.created, "state": job.state, "concurrencyMode": "Parallel",
            "contentType": "CSV", "apiVersion": float(v.rsplit("v", 1)[1]),
            "lineEnding": job.line_ending, "columnDelimiter": job.delimiter}
        if job.kind == "ingest":
            out["externalIdFieldName"] = job.external_id
            out["contentUrl"] = f"{v.lstrip('/')}/jobs/ingest/{job.id}/batches"
        if full:
            out["jobType"] = "V2Query" if job.kind == "query" else "V2Ingest"
            out["retries"] = 0
            out["totalProcessingTime"] = 0
            if job.kind == "query":
                out["numberRecordsProcessed"] = len(job.ids)
            else:
                out["numberRecordsProcessed"] = len(job.success) + len(job.failed)
                out["numberRecordsFailed"] = len(job.failed)
                out["apiActiveProcessingTime"] = 0
                out["apexProcessingTime"] = 0
            if job.state == "Failed":
                out["errorMessage"] = job.error
        return out

    def set_state(self, job: Job, state: str, v: str) -> Reply:
        if state == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
            job.state = "Aborted"
        elif state == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            if job.upload is None:
                job.state = "Failed"
                job.error = "InvalidBatch : No data was uploaded to this job"
            else:
                job.state = "UploadComplete"
        else:
            raise SfError(400, "INVALIDJOBSTATE", f"Can't change the job state from "
                                                  f"{job.state} to {state}")
        return Reply(200, self.info(job, v))

    def advance(self, job: Job) -> None:
        if job.state == "UploadComplete":
            job.state, job.polls = "InProgress", 0
            return
        if job.state != "InProgress":
            return
        job.polls += 1
        if job.polls < self.polls:
            return
        if self.fail_next > 0:
            self.fail_next -= 1
            job.state = "Failed"
            job.error = "InternalServerError : the job failed (emulated fault)"
            if job.kind == "ingest":
                self._parse_upload(job)
            return
        if job.kind == "query":
            assert job.query is not None
            job.ids = self.emu.select(job.query, job.operation == "queryAll")
            job.state = "JobComplete"
        else:
            self.process(job)

    # ---- query results --------------------------------------------------------------------
    def results(self, job: Job, query: dict[str, list[str]]) -> Reply:
        if job.state != "JobComplete":
            raise SfError(400, "INVALIDJOBSTATE", f"The job is {job.state}, not JobComplete")
        try:
            size = int(query.get("maxRecords", ["50000"])[0])
            locator = query.get("locator", [""])[0]
            start = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid locator") from None
        if size < 1:
            raise SfError(400, "INVALIDPARAMETER", "maxRecords must be positive")
        assert job.query is not None
        page = job.ids[start:start + size]
        table = self.emu.tables[job.object]
        getter = self.emu.getter(table)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[job.delimiter],
                            lineterminator=ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        writer.writerow([".".join(p.output_names) for p in job.query.fields])
        for rid in page:
            row = table.rows[rid]
            writer.writerow([_csv_value(getter(row, p)) for p in job.query.fields])
        nxt = start + size
        more = nxt < len(job.ids)
        headers = {"Sforce-Locator": base64.b64encode(str(nxt).encode()).decode() if more
                   else "null", "Sforce-NumberOfRecords": str(len(page))}
        return Reply(200, out.getvalue(), headers, "text/csv", records=len(page))

    # ---- ingest ---------------------------------------------------------------------------
    def _parse_upload(self, job: Job) -> None:
        text = job.upload or ""
        reader = csv.reader(io.StringIO(text), delimiter=DELIMITERS[job.delimiter])
        rows = list(reader)
        job.header = rows[0] if rows else []
        job.rows = [dict(zip(job.header, r, strict=False)) for r in rows[1:] if r]

    def process(self, job: Job) -> None:
        self._parse_upload(job)
        obj = self.emu.schema[job.object]
        for name in job.header:
            if obj.field(name) is None:
                job.state = "Failed"
                job.error = f"InvalidBatch : Field name not found : {name}"
                return
        table = self.emu.tables[job.object]
        for rec in job.rows:
            values = {k: (None if v == "#N/A" else v) for k, v in rec.items() if v != ""}
            try:
                if job.operation == "insert":
                    rid = self.emu.write(obj, None, self._typed(obj, values), create=True)
                    job.success.append((rid, True, rec))
                elif job.operation in ("update", "delete"):
                    rid = full_id(str(values.pop("Id", "")))
                    if rid not in table.rows or rid in table.deleted:
                        raise SfError(400, "INVALID_CROSS_REFERENCE_KEY",
                                      "invalid cross reference id", [])
                    injected = self.emu.record_errors.get(rid)
                    if injected:
                        code, message, times = injected
                        if times <= 1:
                            del self.emu.record_errors[rid]
                        else:
                            self.emu.record_errors[rid] = (code, message, times - 1)
                        raise SfError(400, code, message, [])
                    if job.operation == "delete":
                        self.emu.delete(job.object, rid)
                    else:
                        self.emu.write(obj, rid, self._typed(obj, values), create=False)
                    job.success.append((rid, False, rec))
                else:
                    ext = obj.field(job.external_id or "")
                    if ext is None:
                        raise SfError(400, "INVALID_FIELD", f"No such column "
                                      f"'{job.external_id}' on entity '{obj.name}'", [])
                    key = values.pop(ext.name, None)
                    match = next((i for i, r in table.rows.items() if i not in table.deleted
                                  and table.value(r, ext.name) == key), None)
                    if match:
                        self.emu.write(obj, match, self._typed(obj, values), create=False)
                        job.success.append((match, False, rec))
                    else:
                        rid = self.emu.write(obj, None, {**self._typed(obj, values),
                                                         ext.name: key}, create=True)
                        job.success.append((rid, True, rec))
            except SfError as exc:
                fields = ",".join(exc.fields or [])
                job.failed.append((rec.get("Id", ""), f"{exc.code}:{exc.message}:{fields} --",
                                   rec))
        job.state = "JobComplete"

    @staticmethod
    def _typed(obj: Any, values: dict[str, Any]) -> dict[str, Any]:
        """CSV text to the JSON types the REST write path validates."""
        out: dict[str, Any] = {}
        for k, v in values.items():
            f = obj.field(k)
            if v is None or f is None:
                out[k] = v
            elif f.type == "boolean":
                out[k] = {"true": True, "false": False}.get(v.lower(), v)
            elif f.type in ("currency", "percent", "double", "int"):
                try:
                    out[k] = int(v) if f.type == "int" else float(v)
                except ValueError:
                    out[k] = v
            else:
                out[k] = v
        return out

    def ingest_results(self, job: Job, sub: str) -> Reply:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[job.delimiter],
                            lineterminator=ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        if sub == "/successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            for rid, created, rec in job.success:
                writer.writerow([rid, str(created).lower(), *[rec.get(h, "") for h in job.header]])
            count = len(job.success)
        elif sub == "/failedResults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            for rid, error, rec in job.failed:
                writer.writerow([rid, error, *[rec.get(h, "") for h in job.header]])
            count = len(job.failed)
        else:
            if job.state in ("Aborted", "Failed") and not job.rows and job.upload:
                self._parse_upload(job)
            done = job.state == "JobComplete"
            writer.writerow(job.header)
            rows = [] if done else job.rows
            for rec in rows:
                writer.writerow([rec.get(h, "") for h in job.header])
            count = len(rows)
        return Reply(200, out.getvalue(), None, "text/csv", records=count)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

