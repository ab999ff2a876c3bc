"""A strict local HubSpot API server that `hubspot-api-client` 12 talks to.

Point the client at it with ``HubSpot(access_token=emu.token, host=emu.start())`` (and for
``api_request`` calls, ``options["base_url"]`` or ``HubSpot(..., base_url=...)`` wherever the
client takes it: ``api_request`` ignores ``host``).

What is emulated (paths exactly as the client sends them):

- Auth: private-app tokens (``add_token(token, scopes)``; ``emu.token`` has every scope) and
  user-level OAuth tokens (``add_token(..., user_level=True)``, or issued by
  ``POST /oauth/v1/token`` with ``grant_type=refresh_token``; ``add_oauth_app`` registers the
  client id/secret and refresh token). A missing or unknown token is a 401
  (``category: INVALID_AUTHENTICATION``), an expired OAuth token a 401 ``EXPIRED_AUTHENTICATION``,
  a missing scope a 403 ``MISSING_SCOPES`` naming the scope in
  ``errors[0].context.requiredGranularScopes``.
- CRM v3 objects ``deals contacts companies emails notes tasks meetings``: ``GET`` list
  (``limit`` <= 100, ``after`` = the last id, ``archived=True`` lists only archived ones),
  ``GET /{id}`` (``properties``, ``propertiesWithHistory`` newest first, ``associations``),
  create (201), ``PATCH`` (200), ``DELETE`` (204, archives), ``batch/read`` (100 inputs, 50 with
  ``propertiesWithHistory``; missing ids -> 207), ``batch/create`` (201), ``batch/update`` (200;
  207 for missing/archived ids, values their property's type refuses and ids in
  ``fail_update_ids``), ``batch/archive`` (204). Writes append to each property's history and
  set the modified-date property: ``lastmodifieddate`` on contacts, ``hs_lastmodifieddate`` on
  the others. Unknown properties in a write are a 400 ``PROPERTY_DOESNT_EXIST`` (the whole
  call).
- Search ``POST /crm/v3/objects/{type}/search``: filters EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN
  HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN NOT_CONTAINS_TOKEN (<= 5 groups, <= 6 filters a
  group, <= 18 in all), ONE sort (HubSpot allows one; ties are ordered by id), ``limit`` <= 200,
  ``after`` an integer offset; ``after + limit > 10000`` is HubSpot's 400; archived records
  never appear; a filter on an unknown property is a 400; records written in the last
  ``search_lag`` seconds (0 by default) are not found yet; at most ``search_per_second`` (5)
  searches a second, the sixth a 429 ``SECONDLY``. No rate-limit headers on search answers
  (as on HubSpot).
- Properties and groups (``/crm/v3/properties/{type}[...]``): list, get, create 201, 409
  ``OBJECT_ALREADY_EXISTS`` when it exists, update, archive, ``batch/create`` 201/207.
- Associations v4: ``GET .../associations/{toType}`` (limit <= 500), ``PUT`` labelled (201) and
  default (200) creates, ``DELETE``, ``batch/read`` (<= 1000 inputs; ids without associations ->
  207), ``batch/associate/default``; and v3 ``associations=`` on object reads. Default type ids
  are HubSpot's (``ASSOCIATION_TYPES``).
- Pipelines with stages (and ``/audit``), owners (``/crm/v3/owners/``, trailing slash).
- Email engagements carry ``hs_sequence_id``, ``hs_email_open_count``, ``hs_email_click_count``,
  ``hs_email_reply_count`` and ``hs_email_thread_id`` (seen read from real portals) and
  ``hs_sequence_step_order`` / ``hs_template_id`` (NOT verified on HubSpot: clients must treat
  them as optional).
- Marketing emails v3 (``content`` scope): list/get (``includeStats``), create 201, PATCH 200,
  ``PATCH /{id}/draft`` (a draft copied from the live email, then patched; live untouched),
  ``GET /{id}/draft``, ``POST /{id}/draft/reset`` 204, revisions, clone, A/B
  ``create-variation`` 201 (drafts only; the original becomes the master, ``DRAFT_AB``), and
  ``POST /{id}/publish`` 204 only with ``marketing-email``/``transactional-email`` AND
  ``emu.enterprise = True`` (Marketing Hub Enterprise), else 403. Seed: ``add_marketing_email``.
- Sequences v4 through ``api_request`` (``automation.sequences.read``,
  ``automation.sequences.enrollments.write``; ``userId`` required): list, get (steps with
  ``emailPattern.templateId``), enroll (the user needs a seat and its connected inbox as
  ``senderEmail``: ``add_seat(user_id, inbox)``; one active enrollment per contact), and
  ``enrollments/contact/{id}``. Seed: ``add_sequence``, ``add_enrollment``, or
  ``enrollment_source`` (contact id -> enrollment, for many).
- ``2026-09-beta`` (user-level tokens only; a private-app token gets 403 saying so): sequences
  list/get/create/PUT (full ``PublicSequenceRequest``: name, settings, steps, dependencies,
  dynamic; step ``variants``)/DELETE/performance, and sales email templates list/get/create 201/
  PATCH (all of body, folderId, name, subject)/folders. Seed: ``add_template``.
- 414 for a request line longer than ``max_url_length`` (8000; HubSpot's is undocumented).
- ``portal.seed_portal(emu, deals=100_000)`` seeds a whole lazily generated sales portal
  (contacts, companies, 300,000 emails, sequences, enrollments) in about 2 s holding ~4 MB.

Seeding (no HTTP, no auth): ``add(type, properties, id=None, created=None, modified=None,
history=None)`` returns a ``Record``; ``history={"dealstage": [(value, when), ...]}`` (oldest
first; ``when`` a datetime or epoch ms); ``associate(from_type, from_id, to_type, to_id)``
(both directions, HubSpot's default type ids); ``set_modified(type, ids, when)`` gives many
records one timestamp; ``add_owner``, ``add_pipeline``, ``define_property``,
``rename_property`` (a property renamed under a connector: writes to the old name 400);
``add_generated(type, count, make)`` seeds ``count`` records lazily (``make(i)`` returns
``(properties, modified_ms, history, associations)``; only the modified date is held per
record, until it is written).

Request log: ``requests`` (``Call(method, path, query, status, records)``, records = results
returned or inputs sent), ``calls(method, path_prefix)``, and ``requests_per_1000(n)``.

Faults (``reset_faults()`` clears the one-shot ones, ``reset()`` everything): ``throttle(n, policy=..., retry_after=...,
match=...)`` answers the next ``n`` matching calls with HubSpot's 429 body (``policyName``
TEN_SECONDLY_ROLLING / SECONDLY / DAILY, ``Retry-After`` only when given);
``fail_5xx(n, status=502, match=...)``; ``burst_limit`` (calls per rolling 10 s, off by
default; beyond it a 429 TEN_SECONDLY_ROLLING without Retry-After, rate-limit headers counting
down); ``search_per_second`` (5); ``stall(match, after=0)`` holds matching calls until
``unstall.set()``; ``delay`` seconds on every answer; ``fail_update_ids`` ids whose batch
updates fail (207). Unknown routes, query parameters or body fields are answered with an
error and recorded in ``unexpected``: a test must assert it is empty.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OBJECT_TYPES = ("deals", "contacts", "companies", "emails", "notes", "tasks", "meetings")
ENGAGEMENTS = ("emails", "notes", "tasks", "meetings")
SEARCH_WALL = 10_000
SEARCH_PAGE = 200
LIST_PAGE = 100
BATCH_MAX = 100
BATCH_HISTORY_MAX = 50
ASSOC_BATCH_MAX = 1000
PORTAL_ID = 4_242_424

ALL_SCOPES = frozenset({
    "crm.objects.deals.read", "crm.objects.deals.write",
    "crm.objects.contacts.read", "crm.objects.contacts.write",
    "crm.objects.companies.read", "crm.objects.companies.write",
    "crm.schemas.deals.read", "crm.schemas.deals.write",
    "crm.schemas.contacts.read", "crm.schemas.contacts.write",
    "crm.schemas.companies.read", "crm.schemas.companies.write",
    "crm.objects.owners.read", "sales-email-read", "content",
    "automation.sequences.read", "automation.sequences.enrollments.write",
})
USER_SCOPES = frozenset({"automation.sequences.write", "sales-templates-public-read",
                         "sales-templates-public-write"})
PUBLISH_SCOPES = frozenset({"marketing-email", "transactional-email"})

# HubSpot's default (HUBSPOT_DEFINED) association type ids, from -> to.
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("notes", "contacts"): 202, ("contacts", "notes"): 201,
    ("notes", "companies"): 190, ("companies", "notes"): 189,
    ("notes", "deals"): 214, ("deals", "notes"): 213,
    ("emails", "contacts"): 198, ("contacts", "emails"): 197,
    ("emails", "companies"): 186, ("companies", "emails"): 185,
    ("emails", "deals"): 210, ("deals", "emails"): 209,
    ("tasks", "contacts"): 204, ("contacts", "tasks"): 203,
    ("tasks", "companies"): 192, ("companies", "tasks"): 191,
    ("tasks", "deals"): 216, ("deals", "tasks"): 215,
    ("meetings", "contacts"): 200, ("contacts", "meetings"): 199,
    ("meetings", "companies"): 188, ("companies", "meetings"): 187,
    ("meetings", "deals"): 212, ("deals", "meetings"): 211,
}
SINGULAR = {"deals": "deal", "contacts": "contact", "companies": "company", "emails": "email",
            "notes": "note", "tasks": "task", "meetings": "meeting"}
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "notes": "0-46",
                   "tasks": "0-27", "emails": "0-49", "meetings": "0-47"}
OBJECT_ALIASES = {**{v: k for k, v in OBJECT_TYPE_IDS.items()},
                  **{s: p for p, s in SINGULAR.items()}, **{t: t for t in OBJECT_TYPES}}


def modified_property(object_type: str) -> str:
    """The property search filters on for changes: contacts differ from everything else."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return "hs_createdate" if object_type in ENGAGEMENTS else "createdate"


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(value: dt.datetime | int | float) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    return int(value)


def iso(ms: int) -> str:
    """HubSpot's timestamp format: 2025-03-01T12:00:00.000Z."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str) -> int | None:
    """Epoch ms from '1735689600000', '2025-01-01' or an ISO timestamp; None if unparseable."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return to_ms(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))
        return to_ms(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


class HubSpotError(Exception):
    """An answer other than success: raised anywhere inside a handler."""

    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"status": "error", "message": message,
                        "correlationId": str(uuid.uuid4()), "category": category, **extra}
        self.headers: dict[str, str] = {}


def validation(message: str, **extra: Any) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", **extra)


def not_found(object_id: str) -> HubSpotError:
    return HubSpotError(404, "Object not found.  objectId are usually numeric.",
                        "OBJECT_NOT_FOUND", context={"id": [object_id]})


@dataclass
class Token:
    scopes: frozenset[str]
    user_level: bool = False
    user_id: int | None = None
    expires_at: float | None = None  # time.time() after which an OAuth token is expired


@dataclass
class Call:
    method: str
    path: str
    query: str
    status: int = 0
    records: int = 0


class Record:
    """One CRM object. `history` holds (value, epoch ms, source type) oldest first."""

    __slots__ = ("archived", "archived_at", "created", "history", "id", "modified", "props")

    def __init__(self, object_id: int, props: dict[str, str | None], created: int,
                 modified: int) -> None:
        self.id = object_id
        self.props = props
        self.history: dict[str, list[tuple[str | None, int, str]]] = {}
        self.created = created
        self.modified = modified
        self.archived = False
        self.archived_at = 0


def _prop(name: str, label: str, typ: str, field_type: str, group: str,
          options: Iterable[str] = (), read_only: bool = False,
          hubspot_defined: bool = True) -> dict[str, Any]:
    return {"name": name, "label": label, "type": typ, "fieldType": field_type,
            "groupName": group, "description": "", "displayOrder": -1, "hidden": False,
            "formField": False, "calculated": read_only, "externalOptions": False,
            "hasUniqueValue": name == "hs_object_id", "hubspotDefined": hubspot_defined,
            "archived": False, "createdAt": "2020-01-01T00:00:00.000Z",
            "updatedAt": "2020-01-01T00:00:00.000Z",
            "modificationMetadata": {"readOnlyValue": read_only, "readOnlyDefinition": True,
                                     "archivable": False},
            "options": [{"label": o.replace("_", " ").title(), "value": o, "displayOrder": i,
                         "hidden": False, "description": ""} for i, o in enumerate(options)]}


DEAL_STAGES = [("appointmentscheduled", "Appointment Scheduled", "0.2"),
               ("qualifiedtobuy", "Qualified To Buy", "0.4"),
               ("presentationscheduled", "Presentation Scheduled", "0.6"),
               ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
               ("contractsent", "Contract Sent", "0.9"),
               ("closedwon", "Closed Won", "1.0"),
               ("closedlost", "Closed Lost", "0.0")]
INDUSTRIES = ("COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL",
              "MANUFACTURING", "EDUCATION_MANAGEMENT", "INSURANCE", "TELECOMMUNICATIONS",
              "MARKETING_AND_ADVERTISING", "LOGISTICS_AND_SUPPLY_CHAIN")


def default_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """The built-in property definitions per object type (a subset of HubSpot's own)."""
    def common(t: str, info: str) -> list[dict[str, Any]]:
        return [_prop("hs_object_id", "Record ID", "number", "number", info, read_only=True),
                _prop(created_property(t), "Create Date", "datetime", "date", info,
                      read_only=True),
                _prop(modified_property(t), "Last Modified Date", "datetime", "date", info,
                      read_only=True),
                _prop("hubspot_owner_id", "Owner", "enumeration", "select", info)]

    stages = [s for s, _, _ in DEAL_STAGES]
    out: dict[str, list[dict[str, Any]]] = {
        "deals": common("deals", "dealinformation") + [  # noqa: RUF005
            _prop("dealname", "Deal Name", "string", "text", "dealinformation"),
            _prop("amount", "Amount", "number", "number", "dealinformation"),
            _prop("closedate", "Close Date", "datetime", "date", "dealinformation"),
            _prop("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation", stages),
            _prop("pipeline", "Pipeline", "enumeration", "select", "dealinformation",
                  ["default"]),
            _prop("dealtype", "Deal Type", "enumeration", "radio", "dealinformation",
                  ["newbusiness", "existingbusiness"]),
            _prop("description", "Deal Description", "string", "textarea", "dealinformation"),
            _prop("closed_lost_reason", "Closed Lost Reason", "string", "textarea",
                  "dealinformation"),
            _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox",
                  "dealinformation", ["true", "false"], read_only=True),
            _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox",
                  "dealinformation", ["true", "false"], read_only=True),
            _prop("hs_deal_stage_probability", "Deal Stage Probability", "number", "number",
                  "dealinformation", read_only=True)],
        "contacts": common("contacts", "contactinformation") + [
            _prop(n, lbl, "string", "text", "contactinformation") for n, lbl in (
                ("email", "Email"), ("firstname", "First Name"), ("lastname", "Last Name"),
                ("jobtitle", "Job Title"), ("company", "Company Name"), ("country", "Country"),
                ("state", "State/Region"), ("city", "City"), ("phone", "Phone Number"))] + [
            _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
                  "contactinformation", ["subscriber", "lead", "marketingqualifiedlead",
                                         "salesqualifiedlead", "opportunity", "customer",
                                         "evangelist", "other"])],
        "companies": common("companies", "companyinformation") + [
            _prop(n, lbl, "string", "text", "companyinformation") for n, lbl in (
                ("name", "Company name"), ("domain", "Company Domain Name"),
                ("country", "Country/Region"), ("state", "State/Region"), ("city", "City"))] + [
            _prop("industry", "Industry", "enumeration", "select", "companyinformation",
                  INDUSTRIES),
            _prop("numberofemployees", "Number of Employees", "number", "number",
                  "companyinformation"),
            _prop("annualrevenue", "Annual Revenue", "number", "number", "companyinformation"),
            _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
                  "companyinformation", ["lead", "opportunity", "customer", "other"])],
        "emails": common("emails", "emailinformation") + [  # noqa: RUF005
            _prop("hs_timestamp", "Activity date", "datetime", "date", "emailinformation"),
            _prop("hs_email_subject", "Email subject", "string", "text", "emailinformation"),
            _prop("hs_email_text", "Email body", "string", "textarea", "emailinformation"),
            _prop("hs_email_html", "Email HTML body", "string", "html", "emailinformation"),
            _prop("hs_email_direction", "Email direction", "enumeration", "select",
                  "emailinformation", ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]),
            _prop("hs_email_status", "Email send status", "enumeration", "select",
                  "emailinformation", ["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"]),
            _prop("hs_email_sender_email", "Sender email", "string", "text",
                  "emailinformation"),
            _prop("hs_email_to_email", "Recipient email", "string", "text",
                  "emailinformation"),
            _prop("hs_email_open_count", "Open count", "number", "number", "emailinformation",
                  read_only=True),
            _prop("hs_email_click_count", "Click count", "number", "number",
                  "emailinformation", read_only=True),
            _prop("hs_email_reply_count", "Reply count", "number", "number",
                  "emailinformation", read_only=True),
            _prop("hs_email_thread_id", "Thread ID", "string", "text", "emailinformation",
                  read_only=True),
            _prop("hs_sequence_id", "Sequence ID", "string", "text", "emailinformation",
                  read_only=True),
            # Not verified on real portals (see the module docstring): optional for clients.
            _prop("hs_sequence_step_order", "Sequence step", "number", "number",
                  "emailinformation", read_only=True),
            _prop("hs_template_id", "Template ID", "string", "text", "emailinformation",
                  read_only=True)],
        "notes": common("notes", "noteinformation") + [  # noqa: RUF005
            _prop("hs_timestamp", "Activity date", "datetime", "date", "noteinformation"),
            _prop("hs_note_body", "Note body", "string", "html", "noteinformation")],
        "tasks": common("tasks", "taskinformation") + [  # noqa: RUF005
            _prop("hs_timestamp", "Due date", "datetime", "date", "taskinformation"),
            _prop("hs_task_subject", "Task Title", "string", "text", "taskinformation"),
            _prop("hs_task_body", "Notes", "string", "html", "taskinformation"),
            _prop("hs_task_status", "Task Status", "enumeration", "select", "taskinformation",
                  ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
            _prop("hs_task_priority", "Priority", "enumeration", "select", "taskinformation",
                  ["LOW", "MEDIUM", "HIGH"]),
            _prop("hs_task_type", "Task Type", "enumeration", "select", "taskinformation",
                  ["CALL", "EMAIL", "TODO"])],
        "meetings": common("meetings", "meetinginformation") + [  # noqa: RUF005
            _prop("hs_timestamp", "Activity date", "datetime", "date", "meetinginformation"),
            _prop("hs_meeting_title", "Meeting name", "string", "text", "meetinginformation"),
            _prop("hs_meeting_body", "Meeting description", "string", "html",
                  "meetinginformation"),
            _prop("hs_meeting_start_time", "Start Time", "datetime", "date",
                  "meetinginformation"),
            _prop("hs_meeting_end_time", "End Time", "datetime", "date", "meetinginformation"),
            _prop("hs_meeting_outcome", "Meeting outcome", "enumeration", "select",
                  "meetinginformation", ["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW",
                                         "CANCELED"])],
    }
    return {t: {p["name"]: p for p in props} for t, props in out.items()}


DEFAULT_RETURNED = {
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage",
              "hs_lastmodifieddate", "hs_object_id", "pipeline"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
}
GROUPS = {"deals": ["dealinformation"], "contacts": ["contactinformation"],
          "companies": ["companyinformation"], "emails": ["emailinformation"],
          "notes": ["noteinformation"], "tasks": ["taskinformation"],
          "meetings": ["meetinginformation"]}

Route = tuple[str, re.Pattern[str], frozenset[str], Callable[..., tuple[int, Any]]]


class _Server(ThreadingHTTPServer):
    """Keep-alive connections a client drops are not errors worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError,
                                               TimeoutError)):
            super().handle_error(request, client_address)


class HubSpotEmulator:
    """State, seeding API, fault controls and the HTTP server."""

    token = "pat-na1-11111111-2222-3333-4444-555555555555"

    def __init__(self) -> None:
        self.server: ThreadingHTTPServer | None = None
        self.base = ""
        self.lock = threading.RLock()
        self.unstall = threading.Event()
        self.stalled = threading.Event()
        self.routes: list[Route] = []
        self._build_routes()
        self.reset()

    # ---- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Everything back to a fresh portal (tokens too); the server keeps running."""
        with self.lock:
            self.tokens: dict[str, Token] = {self.token: Token(ALL_SCOPES)}
            self.records: dict[str, dict[int, Record]] = {t: {} for t in OBJECT_TYPES}
            self.generated: dict[str, tuple[int, int, Callable[[int], Any]]] = {}
            self.generated_modified: dict[str, Any] = {}
            self.next_id = 1000
            self.properties = default_properties()
            self.groups: dict[str, dict[str, dict[str, Any]]] = {
                t: {g: {"name": g, "label": g.replace("information", " information").title(),
                        "displayOrder": -1, "archived": False} for g in GROUPS[t]}
                for t in OBJECT_TYPES}
            # (from_type, from_id) -> to_type -> to_id -> [(category, type id, label)]
            self.assoc: dict[tuple[str, int], dict[str, dict[int, list[tuple[str, int,
                                                                               str | None]]]]] = {}
            self.pipelines: dict[str, list[dict[str, Any]]] = {"deals": []}
            self.add_pipeline("deals", "default", "Sales Pipeline", DEAL_STAGES)
            self.owners: list[dict[str, Any]] = []
            self.marketing_emails: dict[str, dict[str, Any]] = {}
            self.email_drafts: dict[str, dict[str, Any]] = {}
            self.email_revisions: dict[str, list[dict[str, Any]]] = {}
            self.email_stats: dict[str, dict[str, int]] = {}
            self.sequences: dict[str, dict[str, Any]] = {}
            self.sequence_performance: dict[str, dict[int, dict[str, int]]] = {}
            self.enrollments: list[dict[str, Any]] = []
            # contact id -> its current enrollment, for seeding many without holding them
            self.enrollment_source: Callable[[str], dict[str, Any] | None] | None = None
            self.unlinked: set[tuple[str, int, str, int]] = set()
            self.templates: dict[str, dict[str, Any]] = {}
            self.template_folders: list[dict[str, Any]] = [
                {"id": "1", "name": "Sales templates"}]
            self.oauth_apps: dict[str, dict[str, Any]] = {}
            self.seats: dict[int, str] = {}  # user id with a Sales Hub seat -> its inbox
            self.enterprise = False  # Marketing Hub Enterprise (publishing marketing email)
            self.requests: list[Call] = []
            self.unexpected: list[str] = []
            self.search_log: list[float] = []
            self.search_per_second: int | None = 5
            # HubSpot's 100-190 calls per 10 s for private apps; off by default so that tests
            # and benchmarks run at full speed (set it to watch a connector pace itself).
            self.burst_limit: int | None = None
            # Seconds before a write shows in search ("a few moments" on HubSpot); 0 = at once.
            self.search_lag = 0.0
            self.burst_log: list[float] = []
            self.daily_used = 0
            # HubSpot's front end answers 414 to over-long URIs (too many `properties=`); its
            # exact limit is not documented, so this one is a knob.
            self.max_url_length = 8000
            self.query_cache: dict[Any, list[int]] = {}
            self.version = 0
            self.reset_faults()

    def reset_faults(self) -> None:
        with self.lock:
            self._throttles: list[dict[str, Any]] = []
            self._failures: list[dict[str, Any]] = []
            self.stall_match: str | None = None
            self.stall_after = 0
            self.stall_seen = 0
            self.unstall.clear()
            self.stalled.clear()
            self.delay = 0.0
            self.fail_update_ids: set[str] = set()

    def throttle(self, n: int = 1, policy: str = "TEN_SECONDLY_ROLLING",
                 retry_after: int | None = None, match: str = "") -> None:
        """Answer the next `n` calls matching `match` ("METHOD /path" regex) with a 429."""
        with self.lock:
            self._throttles.append({"n": n, "policy": policy, "retry_after": retry_after,
                                    "match": match})

    def fail_5xx(self, n: int = 1, status: int = 502, match: str = "") -> None:
        with self.lock:
            self._failures.append({"n": n, "status": status, "match": match})

    def stall(self, match: str, after: int = 0) -> None:
        """Hold calls matching `match` (after the first `after`) until `unstall.set()`."""
        with self.lock:
            self.stall_match, self.stall_after, self.stall_seen = match, after, 0
            self.unstall.clear()

    def add_token(self, token: str, scopes: Iterable[str], user_level: bool = False,
                  user_id: int | None = None, expires_in: float | None = None) -> str:
        with self.lock:
            self.tokens[token] = Token(frozenset(scopes), user_level, user_id,
                                       time.time() + expires_in if expires_in else None)
        return token

    def add_oauth_app(self, client_id: str, client_secret: str, refresh_token: str,
                      scopes: Iterable[str], user_id: int = 7, expires_in: int = 1800) -> None:
        """A user-level app: POST /oauth/v1/token exchanges `refresh_token` for tokens."""
        with self.lock:
            self.oauth_apps[refresh_token] = {"client_id": client_id,
                                              "client_secret": client_secret,
                                              "scopes": frozenset(scopes), "user_id": user_id,
                                              "expires_in": expires_in}

    # ---- seeding ---------------------------------------------------------------------------
    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add(self, object_type: str, properties: dict[str, Any], id: int | str | None = None,
            created: dt.datetime | int | None = None, modified: dt.datetime | int | None = None,
            history: dict[str, list[tuple[Any, dt.datetime | int]]] | None = None) -> Record:
        """Seed one record; its properties' histories start with `history` (oldest first)."""
        with self.lock:
            object_id = int(id) if id is not None else self._new_id()
            self.next_id = max(self.next_id, object_id)
            created_ms = to_ms(created) if created is not None else now_ms()
            modified_ms = to_ms(modified) if modified is not None else created_ms
            rec = Record(object_id, {k: None if v is None else str(v)
                                     for k, v in properties.items()}, created_ms, modified_ms)
            for name, changes in (history or {}).items():
                rec.history[name] = [(None if v is None else str(v), to_ms(w), "CRM_UI")
                                     for v, w in changes]
                if changes and name not in properties:
                    rec.props[name] = rec.history[name][-1][0]
            for name, value in rec.props.items():
                if name not in rec.history:
                    rec.history[name] = [(value, created_ms, "CRM_UI")]
            self.records[object_type][object_id] = rec
            self._changed()
            return rec

    def add_generated(self, object_type: str, count: int,
                      make: Callable[[int], tuple[dict[str, Any], int,
                                                  dict[str, list[tuple[Any, int]]],
                                                  dict[str, list[int]]]],
                      first_id: int | None = None,
                      modified: Callable[[int], int] | None = None) -> range:
        """Seed `count` records lazily. Record i (id `first_id + i`) is `make(i)` ->
        (properties, modified ms, history {name: [(value, when)]}, associations
        {to_type: [ids]}), rebuilt on every read and kept only once written. Only the
        modified dates are held (8 bytes a record); `modified(i)` gives them without calling
        `make` at seeding time. Associations are not mirrored: the other type's `make` must
        list them too (as HubSpot answers both directions)."""
        from array import array

        with self.lock:
            start = first_id if first_id is not None else self.next_id + 1
            ids = range(start, start + count)
            self.next_id = max(self.next_id, ids[-1]) if count else self.next_id
            mod = modified or (lambda i: make(i)[1])
            self.generated_modified[object_type] = array("q", (mod(i) for i in range(count)))
            # A page reads each record a few times (properties, then each association type).
            self.generated[object_type] = (start, count, functools.lru_cache(maxsize=2048)(make))
            self._changed()
            return ids

    def _generated_index(self, object_type: str, object_id: int) -> int | None:
        gen = self.generated.get(object_type)
        if gen is None:
            return None
        i = object_id - gen[0]
        return i if 0 <= i < gen[1] else None

    def _materialise(self, object_type: str, object_id: int) -> Record | None:
        i = self._generated_index(object_type, object_id)
        if i is None:
            return None
        props, _, history, _ = self.generated[object_type][2](i)
        modified = int(self.generated_modified[object_type][i])
        created = min([modified] + [to_ms(w) for changes in (history or {}).values()
                                    for _, w in changes])
        rec = Record(object_id, {k: None if v is None else str(v) for k, v in props.items()},
                     created, modified)
        for name, changes in (history or {}).items():
            rec.history[name] = [(None if v is None else str(v), to_ms(w), "CRM_UI")
                                 for v, w in changes]
            if changes and name not in rec.props:
                rec.props[name] = rec.history[name][-1][0]
        for name, value in rec.props.items():
            rec.history.setdefault(name, [(value, created, "CRM_UI")])
        return rec

    def _persist(self, object_type: str, rec: Record) -> None:
        """A written generated record is kept from then on (writes must stick)."""
        self.records[object_type].setdefault(rec.id, rec)

    def get(self, object_type: str, object_id: int | str) -> Record | None:
        """The record (archived ones too), or None."""
        with self.lock:
            try:
                oid = int(object_id)
            except (TypeError, ValueError):
                return None
            rec = self.records[object_type].get(oid)
            return rec if rec is not None else self._materialise(object_type, oid)

    def _all_ids(self, object_type: str) -> Iterator[int]:
        explicit = self.records[object_type]
        gen = self.generated.get(object_type)
        if gen is not None:
            start, count, _ = gen
            for oid in range(start, start + count):
                if oid not in explicit:
                    yield oid
        yield from explicit

    def _sorted_ids(self, object_type: str) -> list[int]:
        key = ("ids", object_type)
        if key not in self.query_cache:
            self.query_cache[key] = sorted(self._all_ids(object_type))
        return self.query_cache[key]

    def _modified_of(self, object_type: str, oid: int) -> int:
        rec = self.records[object_type].get(oid)
        if rec is not None:
            return rec.modified
        start = self.generated[object_type][0]
        return int(self.generated_modified[object_type][oid - start])

    def set_modified(self, object_type: str, ids: Iterable[int | str],
                     when: dt.datetime | int) -> None:
        """Give every record in `ids` the same modified date (a month-end bulk update)."""
        with self.lock:
            ms = to_ms(when)
            for oid in ids:
                rec = self.get(object_type, oid)
                if rec is not None:
                    rec.modified = ms
                    self._persist(object_type, rec)
            self._changed()

    def associate(self, from_type: str, from_id: int | str, to_type: str, to_id: int | str,
                  type_id: int | None = None, label: str | None = None) -> None:
        with self.lock:
            self._link(from_type, int(from_id), to_type, int(to_id), type_id, label)

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int,
              type_id: int | None = None, label: str | None = None) -> None:
        category = "HUBSPOT_DEFINED" if type_id is None else "USER_DEFINED"
        forward = (category, type_id or ASSOCIATION_TYPES[(from_type, to_type)], label)
        backward = (category, type_id or ASSOCIATION_TYPES[(to_type, from_type)], label)
        for (ft, fi, tt, ti, spec) in ((from_type, from_id, to_type, to_id, forward),
                                       (to_type, to_id, from_type, from_id, backward)):
            specs = self.assoc.setdefault((ft, fi), {}).setdefault(tt, {}).setdefault(ti, [])
            if spec not in specs:
                specs.append(spec)

    def _links(self, object_type: str, oid: int, to_type: str) -> dict[int, list[Any]]:
        links = self.assoc.get((object_type, oid), {}).get(to_type, {})
        i = self._generated_index(object_type, oid)
        if i is None:
            return links
        seeded = (self.generated[object_type][2](i)[3] or {}).get(to_type, [])
        if not seeded:
            return links
        spec = ("HUBSPOT_DEFINED", ASSOCIATION_TYPES[(object_type, to_type)], None)
        merged: dict[int, list[Any]] = {int(x): [spec] for x in seeded
                                        if (object_type, oid, to_type, int(x))
                                        not in self.unlinked}
        merged.update(links)
        return merged

    def add_owner(self, owner_id: int | str, email: str, first: str = "", last: str = "",
                  user_id: int | None = None, archived: bool = False) -> dict[str, Any]:
        with self.lock:
            owner = {"id": str(owner_id), "email": email, "firstName": first, "lastName": last,
                     "userId": user_id if user_id is not None else int(owner_id),
                     "type": "PERSON", "createdAt": "2024-01-01T00:00:00.000Z",
                     "updatedAt": "2024-01-01T00:00:00.000Z", "archived": archived,
                     "teams": []}
            self.owners.append(owner)
            self.properties_options("hubspot_owner_id")
            return owner

    def properties_options(self, name: str) -> None:
        for t in OBJECT_TYPES:
            if name in self.properties[t]:
                self.properties[t][name]["options"] = [
                    {"label": f"{o['firstName']} {o['lastName']}".strip() or o["email"],
                     "value": o["id"], "displayOrder": i, "hidden": False, "description": ""}
                    for i, o in enumerate(self.owners)]

    def add_pipeline(self, object_type: str, pipeline_id: str, label: str,
                     stages: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
        """A pipeline; `stages` are (id, label, probability); 1.0/0.0 stages are closed."""
        with self.lock:
            stamp = "2024-01-01T00:00:00.000Z"
            pipe = {"id": pipeline_id, "label": label, "displayOrder": len(self.pipelines.get(
                object_type, [])), "archived": False, "createdAt": stamp, "updatedAt": stamp,
                "stages": [{"id": sid, "label": slabel, "displayOrder": i, "archived": False,
                            "createdAt": stamp, "updatedAt": stamp,
                            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                            "metadata": {"isClosed": str(prob in ("1.0", "0.0")).lower(),
                                         "probability": prob}}
                           for i, (sid, slabel, prob) in enumerate(stages)]}
            self.pipelines.setdefault(object_type, []).append(pipe)
            if object_type == "deals":
                all_stages = [s["id"] for p in self.pipelines["deals"] for s in p["stages"]]
                self.properties["deals"]["dealstage"]["options"] = [
                    {"label": s, "value": s, "displayOrder": i, "hidden": False,
                     "description": ""} for i, s in enumerate(dict.fromkeys(all_stages))]
                self.properties["deals"]["pipeline"]["options"] = [
                    {"label": p["label"], "value": p["id"], "displayOrder": i,
                     "hidden": False, "description": ""}
                    for i, p in enumerate(self.pipelines["deals"])]
            return pipe

    def define_property(self, object_type: str, name: str, typ: str = "string",
                        field_type: str = "text", group: str | None = None,
                        options: Iterable[str] = (), label: str | None = None) -> None:
        with self.lock:
            self.properties[object_type][name] = _prop(
                name, label or name, typ, field_type, group or GROUPS[object_type][0], options,
                hubspot_defined=False)

    def _changed(self) -> None:
        self.version += 1
        self.query_cache.clear()

    # ---- request log -----------------------------------------------------------------------
    def calls(self, method: str | None = None, prefix: str = "") -> list[Call]:
        return [c for c in self.requests
                if (method is None or c.method == method) and c.path.startswith(prefix)]

    def requests_per_1000(self, records: int) -> float:
        return round(1000 * len(self.requests) / records, 1) if records else 0.0

    # ---- server ----------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                if len(self.path) > emulator.max_url_length:
                    with emulator.lock:
                        emulator.requests.append(Call(method, parts.path, "", 414))
                    data = b"<html><body><h1>414 Request-URI Too Large</h1></body></html>"
                    self.send_response(414)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                call = Call(method, parts.path, parts.query)
                with emulator.lock:
                    emulator.requests.append(call)
                    stall = bool(emulator.stall_match) and re.search(
                        emulator.stall_match or "", f"{method} {parts.path}") is not None
                    if stall:
                        emulator.stall_seen += 1
                        stall = emulator.stall_seen > emulator.stall_after
                if stall:
                    emulator.stalled.set()
                    emulator.unstall.wait(120)
                if emulator.delay:
                    time.sleep(emulator.delay)
                code, payload, headers = emulator.handle(
                    method, parts.path, parts.query, raw, dict(self.headers.items()), call)
                call.status = code
                if isinstance(payload, (bytes, str)):
                    data = payload.encode() if isinstance(payload, str) else payload
                    ctype = headers.pop("Content-Type", "text/plain")
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                    ctype = "application/json;charset=utf-8"
                try:
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if data:
                        self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.base

    def stop(self) -> None:
        if self.server:
            self.unstall.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, method: str, path: str, query: str, raw: bytes, headers: dict[str, str],
               call: Call) -> tuple[int, Any, dict[str, str]]:
        try:
            with self.lock:
                return self._dispatch(method, path, query, raw, headers, call)
        except HubSpotError as e:
            return e.status, e.payload, e.headers

    def _unexpected(self, what: str, message: str) -> HubSpotError:
        self.unexpected.append(what)
        return validation(message)

    def _dispatch(self, method: str, path: str, query: str, raw: bytes,
                  headers: dict[str, str], call: Call) -> tuple[int, Any, dict[str, str]]:
        route = None
        for m, pattern, allowed, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and m == method:
                route = (match, allowed, handler)
                break
        if route is None:
            self.unexpected.append(f"{method} {path}")
            raise HubSpotError(404, f"Unable to route {method} request with path {path}",
                               "OBJECT_NOT_FOUND") if not any(
                p.fullmatch(path) for _, p, _, _ in self.routes) else HubSpotError(
                405, f"HTTP {method} is not supported by this endpoint", "VALIDATION_ERROR")
        match, allowed, handler = route
        params = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise self._unexpected(f"{method} {path} parameter {', '.join(unknown)}",
                                   f"Unknown query parameter(s): {', '.join(unknown)}")
        is_form = headers.get("Content-Type", headers.get("content-type", "")).startswith(
            "application/x-www-form-urlencoded")
        body: Any = None
        if raw:
            if is_form:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise validation("Invalid input JSON on line 1, column 1: Unexpected "
                                     "character") from None
        self.caller: Token | None = None
        if path != "/oauth/v1/token":
            self.caller = self._authenticate(headers)
        self._faults(method, path)
        is_search = path.endswith("/search")
        if is_search:
            self._search_rate()
        remaining = self._burst() if not is_search and self.caller is not None else None
        code, payload = handler(match, params, body, call)
        out_headers: dict[str, str] = {}
        if remaining is not None and self.caller is not None and not self.caller.user_level:
            self.daily_used += 1
            out_headers = {"X-HubSpot-RateLimit-Max": str(self.burst_limit or 190),
                           "X-HubSpot-RateLimit-Remaining": str(remaining),
                           "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                           "X-HubSpot-RateLimit-Daily": "650000",
                           "X-HubSpot-RateLimit-Daily-Remaining":
                               str(max(0, 650_000 - self.daily_used))}
        return code, payload, out_headers

    def _burst(self) -> int:
        """The ten-secondly rolling limit (off unless `burst_limit` is set): what remains."""
        if self.burst_limit is None:
            return 189
        now = time.monotonic()
        self.burst_log = [t for t in self.burst_log if now - t < 10.0]
        if len(self.burst_log) >= self.burst_limit:
            err = self._rate_error("TEN_SECONDLY_ROLLING", None)
            err.headers.update({"X-HubSpot-RateLimit-Max": str(self.burst_limit),
                                "X-HubSpot-RateLimit-Remaining": "0",
                                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
            raise err
        self.burst_log.append(now)
        return self.burst_limit - len(self.burst_log)

    def _authenticate(self, headers: dict[str, str]) -> Token:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if token is None:
            raise HubSpotError(
                401, "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION")
        if token.expires_at is not None and time.time() > token.expires_at:
            raise HubSpotError(401, "The OAuth token used to make this call expired 0 day(s) "
                               "ago.", "EXPIRED_AUTHENTICATION",
                               context={"expiresAt": [str(int(token.expires_at * 1000))]})
        return token

    def _need(self, *scopes: str) -> None:
        """403 unless the caller holds one of `scopes`."""
        assert self.caller is not None
        if not self.caller.scopes.intersection(scopes):
            raise HubSpotError(
                403, "This app hasn't been granted all required scopes to make this call. "
                "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": list(scopes)}}],
                links={"scopes": "https://developers.hubspot.com/scopes"})

    def _faults(self, method: str, path: str) -> None:
        key = f"{method} {path}"
        for t in self._throttles:
            if t["n"] > 0 and re.search(t["match"], key):
                t["n"] -= 1
                raise self._rate_error(t["policy"], t["retry_after"])
        for f in self._failures:
            if f["n"] > 0 and re.search(f["match"], key):
                f["n"] -= 1
                err = HubSpotError(f["status"], "internal error", "INTERNAL_ERROR")
                if f["status"] in (502, 504):
                    err.payload = {"status": "error", "message": "Bad Gateway" if f["status"]
                                   == 502 else "Gateway Timeout",
                                   "correlationId": str(uuid.uuid4()),
                                   "category": "INTERNAL_ERROR"}
                raise err

    def _rate_error(self, policy: str, retry_after: int | None) -> HubSpotError:
        message = {"TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
                   "SECONDLY": "You have reached your secondly limit.",
                   "DAILY": "You have reached your daily limit."}[policy]
        err = HubSpotError(429, message, "RATE_LIMITS")
        err.payload = {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                       "correlationId": err.payload["correlationId"], "policyName": policy,
                       "groupName": f"publicapi:private-app:{PORTAL_ID}"}
        if policy == "DAILY":
            err.payload["requestId"] = str(uuid.uuid4())
        if retry_after is not None:
            err.headers["Retry-After"] = str(retry_after)
        return err

    def _search_rate(self) -> None:
        if self.search_per_second is None:
            return
        now = time.monotonic()
        self.search_log = [t for t in self.search_log if now - t < 1.0]
        if len(self.search_log) >= self.search_per_second:
            raise self._rate_error("SECONDLY", None)
        self.search_log.append(now)

    # ---- routing table ---------------------------------------------------------------------
    def _build_routes(self) -> None:
        obj = r"(?P<type>[\w-]+)"
        oid = r"(?P<id>[^/]+)"
        read_q = frozenset({"properties", "propertiesWithHistory", "associations", "archived",
                            "idProperty"})

        def r(method: str, pattern: str, params: Iterable[str], handler: Callable[..., Any]
              ) -> None:
            self.routes.append((method, re.compile(pattern), frozenset(params), handler))

        r("POST", "/oauth/v1/token", (), self.oauth_token)
        r("GET", f"/crm/v3/objects/{obj}", read_q | {"limit", "after"}, self.list_objects)
        r("POST", f"/crm/v3/objects/{obj}", (), self.create_object)
        r("POST", f"/crm/v3/objects/{obj}/search", (), self.search)
        r("POST", f"/crm/v3/objects/{obj}/batch/read", ("archived",), self.batch_read)
        r("POST", f"/crm/v3/objects/{obj}/batch/create", (), self.batch_create)
        r("POST", f"/crm/v3/objects/{obj}/batch/update", (), self.batch_update)
        r("POST", f"/crm/v3/objects/{obj}/batch/archive", (), self.batch_archive)
        r("GET", f"/crm/v3/objects/{obj}/{oid}", read_q, self.get_object)
        r("PATCH", f"/crm/v3/objects/{obj}/{oid}", ("idProperty",), self.update_object)
        r("DELETE", f"/crm/v3/objects/{obj}/{oid}", (), self.archive_object)
        r("GET", f"/crm/v3/properties/{obj}/groups", (), self.list_groups)
        r("POST", f"/crm/v3/properties/{obj}/groups", (), self.create_group)
        r("GET", f"/crm/v3/properties/{obj}/groups/(?P<name>[^/]+)", (), self.get_group)
        r("PATCH", f"/crm/v3/properties/{obj}/groups/(?P<name>[^/]+)", (), self.update_group)
        r("DELETE", f"/crm/v3/properties/{obj}/groups/(?P<name>[^/]+)", (), self.archive_group)
        r("POST", f"/crm/v3/properties/{obj}/batch/create", (), self.batch_create_properties)
        r("POST", f"/crm/v3/properties/{obj}/batch/read", (), self.batch_read_properties)
        r("GET", f"/crm/v3/properties/{obj}", ("archived", "properties"), self.list_properties)
        r("POST", f"/crm/v3/properties/{obj}", (), self.create_property)
        r("GET", f"/crm/v3/properties/{obj}/(?P<name>[^/]+)", ("archived", "properties"),
          self.get_property)
        r("PATCH", f"/crm/v3/properties/{obj}/(?P<name>[^/]+)", (), self.update_property)
        r("DELETE", f"/crm/v3/properties/{obj}/(?P<name>[^/]+)", (), self.archive_property)
        a4 = f"/crm/v4/objects/{obj}/{oid}/associations"
        r("GET", f"{a4}/(?P<to>[\\w-]+)", ("after", "limit"), self.assoc_page)
        r("PUT", f"{a4}/default/(?P<to>[\\w-]+)/(?P<toid>[^/]+)", (), self.assoc_create_default)
        r("PUT", f"{a4}/(?P<to>[\\w-]+)/(?P<toid>[^/]+)", (), self.assoc_create)
        r("DELETE", f"{a4}/(?P<to>[\\w-]+)/(?P<toid>[^/]+)", (), self.assoc_archive)
        b4 = f"/crm/v4/associations/{obj}/(?P<to>[\\w-]+)/batch"
        r("POST", f"{b4}/read", (), self.assoc_batch_read)
        r("POST", f"{b4}/associate/default", (), self.assoc_batch_default)
        r("GET", f"/crm/v3/pipelines/{obj}", (), self.list_pipelines)
        r("GET", f"/crm/v3/pipelines/{obj}/(?P<pid>[^/]+)", (), self.get_pipeline)
        r("GET", f"/crm/v3/pipelines/{obj}/(?P<pid>[^/]+)/stages", (), self.list_stages)
        r("GET", f"/crm/v3/pipelines/{obj}/(?P<pid>[^/]+)/audit", (), self.pipeline_audit)
        r("GET", "/crm/v3/owners/", ("email", "after", "limit", "archived"), self.list_owners)
        r("GET", "/crm/v3/owners/(?P<id>[^/]+)", ("idProperty", "archived"), self.get_owner)
        self._marketing_routes(r)

    def _marketing_routes(self, r: Callable[..., None]) -> None:
        me = "/marketing/v3/emails"
        eid = "(?P<id>\\d+)"
        r("GET", f"{me}/", ("createdAt", "createdAfter", "createdBefore", "updatedAt",
                           "updatedAfter", "updatedBefore", "sort", "after", "limit",
                           "includeStats", "marketingCampaignNames", "workflowNames", "type",
                           "isPublished", "includedProperties", "archived"), self.me_list)
        r("POST", f"{me}/", (), self.me_create)
        r("POST", f"{me}/clone", (), self.me_clone)
        r("POST", f"{me}/ab-test/create-variation", (), self.me_create_variation)
        r("GET", f"{me}/statistics/list", ("startTimestamp", "endTimestamp", "emailIds",
                                           "property"), self.me_statistics)
        r("GET", f"{me}/{eid}", ("includeStats", "marketingCampaignNames", "workflowNames",
                                 "includedProperties", "archived"), self.me_get)
        r("PATCH", f"{me}/{eid}", ("archived",), self.me_update)
        r("DELETE", f"{me}/{eid}", ("archived",), self.me_archive)
        r("GET", f"{me}/{eid}/draft", (), self.me_get_draft)
        r("PATCH", f"{me}/{eid}/draft", (), self.me_upsert_draft)
        r("POST", f"{me}/{eid}/draft/reset", (), self.me_reset_draft)
        r("POST", f"{me}/{eid}/publish", (), self.me_publish)
        r("POST", f"{me}/{eid}/unpublish", (), self.me_unpublish)
        r("GET", f"{me}/{eid}/revisions", ("after", "before", "limit"), self.me_revisions)
        r("GET", f"{me}/{eid}/ab-test/get-variation", (), self.me_get_variation)
        sq = "/automation/v4/sequences"
        r("GET", sq, ("userId", "after", "limit", "name"), self.seq_list)
        r("POST", f"{sq}/enrollments", ("userId",), self.seq_enroll)
        r("GET", f"{sq}/enrollments/contact/(?P<cid>[^/]+)", (), self.seq_enrollment)
        r("GET", f"{sq}/(?P<sid>[^/]+)", ("userId",), self.seq_get)
        bs = "/automation/sequences/2026-09-beta"
        r("GET", bs, ("userId", "after", "limit", "name"), self.beta_seq_list)
        r("GET", f"{bs}/serviceaccounts/sequences", ("after", "limit", "name"),
          self.beta_seq_list)
        r("POST", f"{bs}/serviceaccounts/sequences", (), self.beta_seq_create)
        r("GET", f"{bs}/serviceaccounts/sequences/(?P<sid>[^/]+)", (), self.beta_seq_get)
        r("PUT", f"{bs}/serviceaccounts/sequences/(?P<sid>[^/]+)", (), self.beta_seq_put)
        r("DELETE", f"{bs}/serviceaccounts/sequences/(?P<sid>[^/]+)",
          ("overrideActiveEnrollment",), self.beta_seq_delete)
        r("GET", f"{bs}/serviceaccounts/sequences/(?P<sid>[^/]+)/performance", (),
          self.beta_seq_performance)
        # The template paths: as crm-apis 5.1 names them, and the doubled form one revision
        # of HubSpot's spec file uses.
        for tp in ("/automation/email-templates/2026-09-beta",
                   "/automation/email-templates/2026-09-beta/automation/email-templates"):
            r("GET", tp, ("after", "limit"), self.tpl_list)
            r("POST", tp, (), self.tpl_create)
            r("GET", f"{tp}/folders", ("after", "limit"), self.tpl_folders)
            r("GET", f"{tp}/(?P<tid>\\d+)", (), self.tpl_get)
            r("PATCH", f"{tp}/(?P<tid>\\d+)", (), self.tpl_update)

    # ---- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _object_type(name: str) -> str:
        t = OBJECT_ALIASES.get(name)
        if t is None:
            raise HubSpotError(400, f"Unable to infer object type from: {name}",
                               "VALIDATION_ERROR")
        return t

    def _read_scope(self, t: str) -> None:
        self._need({"emails": "sales-email-read"}.get(
            t, f"crm.objects.{t}.read" if t in ("deals", "contacts", "companies")
            else "crm.objects.contacts.read"))

    def _write_scope(self, t: str) -> None:
        self._need(f"crm.objects.{t}.write" if t in ("deals", "contacts", "companies")
                   else "crm.objects.contacts.write")

    def _schema_scope(self, t: str, write: bool) -> None:
        kind = t if t in ("deals", "contacts", "companies") else "contacts"
        self._need(f"crm.schemas.{kind}.{'write' if write else 'read'}")

    def _fields(self, body: Any, allowed: Iterable[str], where: str,
                required: Iterable[str] = ()) -> Any:
        if not isinstance(body, dict):
            raise validation(f"Invalid input JSON: expected an object for {where}")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise self._unexpected(
                f"{where} body field {', '.join(unknown)}",
                f'Invalid input JSON on line 1, column 2: Unrecognized field "{unknown[0]}" '
                f"({where}), not marked as ignorable")
        missing = [k for k in required if body.get(k) is None]
        if missing:
            raise validation(f"Invalid input JSON: Cannot build {where}, some of required "
                             f"attributes are not set [{', '.join(missing)}]")
        return body

    @staticmethod
    def _list(params: dict[str, list[str]], name: str) -> list[str]:
        return [p for v in params.get(name, []) for p in v.split(",") if p]

    @staticmethod
    def _bool(params: dict[str, list[str]], name: str) -> bool:
        value = params.get(name, ["false"])[0].lower()
        if value not in ("true", "false"):
            raise validation(f"{name} must be true or false, got {value}")
        return value == "true"

    @staticmethod
    def _int(value: Any, name: str, default: int) -> int:
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise validation(f"{name} must be an integer, got {value}") from None

    def _value(self, t: str, rec: Record, name: str) -> str | None:
        if name == "hs_object_id":
            return str(rec.id)
        if name == created_property(t):
            return iso(rec.created)
        if name == modified_property(t):
            return iso(rec.modified)
        return rec.props.get(name)

    def _render(self, t: str, rec: Record, props: list[str] | None,
                history: list[str] | None = None, associations: list[str] | None = None,
                ) -> dict[str, Any]:
        names = list(props) if props else list(DEFAULT_RETURNED.get(
            t, ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")))
        for always in ("hs_object_id", created_property(t), modified_property(t)):
            if always not in names:
                names.append(always)
        known = self.properties[t]
        out_props = {n: self._value(t, rec, n) for n in names if n in known}
        out: dict[str, Any] = {"id": str(rec.id), "properties": out_props,
                               "createdAt": iso(rec.created), "updatedAt": iso(rec.modified),
                               "archived": rec.archived}
        if rec.archived:
            out["archivedAt"] = iso(rec.archived_at)
        if history:
            out["propertiesWithHistory"] = {
                n: [{"value": v if v is not None else "", "timestamp": iso(ts),
                     "sourceType": src, "sourceId": None, "sourceLabel": None,
                     "updatedByUserId": None}
                    for v, ts, src in reversed(self._history(t, rec, n))]
                for n in history if n in known}
        if associations:
            out["associations"] = {}
            for to in associations:
                to_t = OBJECT_ALIASES.get(to)
                if to_t is None:
                    continue
                links = self._links(t, rec.id, to_t)
                if links:
                    out["associations"][to_t] = {"results": [
                        {"id": str(to_id), "type": f"{SINGULAR[t]}_to_{SINGULAR[to_t]}"}
                        for to_id in sorted(links)]}
        return out

    def _history(self, t: str, rec: Record, name: str) -> list[tuple[str | None, int, str]]:
        if name == modified_property(t):
            return [(iso(rec.modified), rec.modified, "CALCULATED")]
        if name == created_property(t):
            return [(iso(rec.created), rec.created, "CALCULATED")]
        if name == "hs_object_id":
            return [(str(rec.id), rec.created, "CALCULATED")]
        return rec.history.get(name, [])

    def _live(self, t: str, object_id: str, id_property: str | None = None) -> Record:
        rec = self._by_id_property(t, object_id, id_property)
        if rec is None or rec.archived:
            raise not_found(object_id)
        return rec

    def _by_id_property(self, t: str, value: str, id_property: str | None) -> Record | None:
        if id_property and id_property != "hs_object_id":
            if id_property not in self.properties[t] or \
                    (not self.properties[t][id_property]["hasUniqueValue"] and \
                    not (t == "contacts" and id_property == "email")):
                raise validation(f"Property {id_property} is not a unique identifier")
            return next((r for oid in self._all_ids(t)
                         if (r := self.get(t, oid)) is not None
                         and r.props.get(id_property) == value), None)
        return self.get(t, value)

    def _normalise(self, t: str, name: str, value: Any) -> tuple[str | None, str | None]:
        """(stored value, error) for one written property value, by the property's type."""
        spec = self.properties[t][name]
        if value is None or value == "":
            return None if value is None else "", None
        text = str(value)
        kind = spec["type"]
        if kind == "number":
            try:
                float(text)
            except ValueError:
                return None, f'"{text}" is not a valid number'
        elif kind == "datetime":
            ms = parse_time(text)
            if ms is None:
                return None, f'"{text}" is not a valid datetime'
            return iso(ms), None
        elif kind == "date":
            ms = parse_time(text)
            if ms is None or ms % 86_400_000:
                return None, (f'"{text}" is not a valid date: it must be midnight UTC '
                              "in epoch milliseconds or YYYY-MM-DD")
            return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d"), None
        elif kind == "bool":
            if text.lower() not in ("true", "false"):
                return None, f'"{text}" is not a valid boolean'
            text = text.lower()
        elif kind == "enumeration" and spec["options"] and name != "hubspot_owner_id":
            allowed = {o["value"] for o in spec["options"]}
            bad = [v for v in text.split(";") if v not in allowed]
            if bad:
                return None, f'{bad[0]} was not one of the allowed options: ' + \
                    ", ".join(sorted(allowed))
        return text, None

    def _check_properties(self, t: str, props: Any) -> None:
        """400 for the whole call when a property does not exist or is read-only."""
        if not isinstance(props, dict):
            raise validation("Invalid input JSON: properties must be an object")
        missing = [n for n in props if n not in self.properties[t]
                   or self.properties[t][n].get("archived")]
        if missing:
            errors = [{"isValid": False, "message": f'Property "{n}" does not exist',
                       "error": "PROPERTY_DOESNT_EXIST", "name": n,
                       "localizedErrorMessage": f'Property "{n}" does not exist'}
                      for n in missing]
            raise validation(f"Property values were not valid: {json.dumps(errors)}",
                             errors=[{"message": e["message"], "code": e["error"],
                                      "context": {"propertyName": [e["name"]]}}
                                     for e in errors])
        read_only = [n for n in props if self.properties[t][n]["modificationMetadata"][
            "readOnlyValue"]]
        if read_only:
            errors = [{"isValid": False, "message": f"{n} is a read only property; its value "
                       "cannot be set.", "error": "READ_ONLY_VALUE", "name": n} for n in read_only]
            raise validation(f"Property values were not valid: {json.dumps(errors)}")

    def _write(self, t: str, rec: Record, props: dict[str, Any]) -> str | None:
        """Apply validated values; the first invalid value's message (nothing applied then)."""
        values: dict[str, str | None] = {}
        for name, value in props.items():
            stored, error = self._normalise(t, name, value)
            if error is not None:
                return f"Property values were not valid: {name}: {error}"
            values[name] = stored
        stamp = max(now_ms(), rec.modified + 1)
        for name, value in values.items():
            if rec.props.get(name) != value or name not in rec.history:
                rec.history.setdefault(name, []).append((value, stamp, "INTEGRATION"))
            rec.props[name] = value
        rec.modified = stamp
        if rec.id in self.records[t] or self._generated_index(t, rec.id) is not None:
            self._persist(t, rec)
        self._changed()
        return None

    def _create(self, t: str, props: dict[str, Any], associations: Any) -> Record:
        self._check_properties(t, props)
        specs = self._association_inputs(t, associations)
        stamp = now_ms()
        rec = Record(self._new_id(), {}, stamp, stamp)
        error = self._write(t, rec, props)
        if error is not None:
            raise validation(error)
        rec.modified = stamp
        self.records[t][rec.id] = rec
        for to_t, to_id, cat, type_id in specs:
            self._link(t, rec.id, to_t, to_id, None if cat == "HUBSPOT_DEFINED" else type_id)
        self._changed()
        return rec

    def _association_inputs(self, t: str, associations: Any) -> list[tuple[str, int, str, int]]:
        """Resolve create-time associations [{to:{id}, types:[{...}]}] to (type, id, spec)."""
        out = []
        for a in associations or []:
            self._fields(a, ("to", "types"), "PublicAssociationsForObject", ("to", "types"))
            to = self._fields(a["to"], ("id",), "PublicObjectId", ("id",))
            for spec in a["types"]:
                self._fields(spec, ("associationCategory", "associationTypeId"),
                             "AssociationSpec", ("associationCategory", "associationTypeId"))
                type_id = int(spec["associationTypeId"])
                match = [k for k, v in ASSOCIATION_TYPES.items() if k[0] == t and v == type_id]
                if spec["associationCategory"] == "HUBSPOT_DEFINED" and not match:
                    raise validation(f"{type_id} is not a valid association type id for {t}",
                                     subCategory="crm.associations.INVALID_ASSOCIATION_TYPE")
                to_t = match[0][1] if match else None
                if to_t is None or self.get(to_t, to["id"]) is None:
                    raise validation(f"No {to_t or 'object'} with id {to['id']} exists")
                out.append((to_t, int(to["id"]), spec["associationCategory"], type_id))
        return out

    @staticmethod
    def _batch(results: list[Any], errors: list[dict[str, Any]], started: int,
               ok_status: int = 200) -> tuple[int, dict[str, Any]]:
        out: dict[str, Any] = {"status": "COMPLETE", "results": results,
                               "startedAt": iso(started), "completedAt": iso(now_ms())}
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return 207, out
        return ok_status, out

    @staticmethod
    def _error_entry(message: str, category: str, ids: list[str], status: str = "error",
                     sub: str | None = None) -> dict[str, Any]:
        entry = {"status": status, "category": category, "message": message,
                 "context": {"ids": ids}, "links": {}, "errors": []}
        if sub:
            entry["subCategory"] = sub
        return entry

    def _batch_inputs(self, body: Any, where: str, limit: int) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise validation(f"Invalid input JSON: Cannot build {where}, some of required "
                             "attributes are not set [inputs]")
        if len(inputs) > limit:
            raise validation(f"The maximum number of inputs supported in a batch request is "
                             f"{limit}, but {len(inputs)} were provided.",
                             context={"limit": [str(limit)]})
        return inputs

    # ---- objects ---------------------------------------------------------------------------
    def list_objects(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._read_scope(t)
        limit = self._int(q.get("limit", [None])[0], "limit", 10)
        if not limit >= 1:
            raise validation("limit must be at least 1")
        limit = min(limit, LIST_PAGE)
        after = self._int(q.get("after", [None])[0], "after", 0)
        archived = self._bool(q, "archived")
        history = self._list(q, "propertiesWithHistory")
        if history:
            limit = min(limit, BATCH_HISTORY_MAX)
        page: list[Record] = []
        more = False
        ids = self._sorted_ids(t)
        for oid in ids[bisect.bisect_right(ids, after):]:
            rec = self.get(t, oid)
            if rec is None or rec.archived != archived:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(rec)
        out: dict[str, Any] = {"results": [self._render(t, r, self._list(q, "properties"),
                                                        history, self._list(q, "associations"))
                                           for r in page]}
        if more:
            after_id = str(page[-1].id)
            out["paging"] = {"next": {"after": after_id,
                                      "link": f"{self.base}/crm/v3/objects/{t}?after={after_id}"}}
        call.records = len(page)
        return 200, out

    def get_object(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._read_scope(t)
        rec = self._by_id_property(t, m["id"], q.get("idProperty", [None])[0])
        if rec is None or rec.archived != self._bool(q, "archived"):
            raise not_found(m["id"])
        call.records = 1
        return 200, self._render(t, rec, self._list(q, "properties"),
                                 self._list(q, "propertiesWithHistory"),
                                 self._list(q, "associations"))

    def create_object(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        body = self._fields(body, ("properties", "associations"),
                            "SimplePublicObjectInputForCreate", ("properties",))
        rec = self._create(t, body["properties"], body.get("associations"))
        call.records = 1
        return 201, self._render(t, rec, list(body["properties"]))

    def update_object(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        body = self._fields(body, ("properties",), "SimplePublicObjectInput", ("properties",))
        rec = self._live(t, m["id"], q.get("idProperty", [None])[0])
        self._check_properties(t, body["properties"])
        error = self._write(t, rec, body["properties"])
        if error is not None:
            raise validation(error)
        call.records = 1
        return 200, self._render(t, rec, list(body["properties"]))

    def _archive(self, t: str, rec: Record) -> None:
        rec.archived = True
        rec.archived_at = now_ms()
        self._persist(t, rec)
        self._changed()

    def archive_object(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                       ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        rec = self.get(t, m["id"])
        if rec is not None and not rec.archived:
            self._archive(t, rec)
        return 204, None  # HubSpot answers 204 for an unknown id too

    def batch_read(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._read_scope(t)
        started = now_ms()
        body = self._fields(body, ("propertiesWithHistory", "idProperty", "inputs",
                                   "properties"), "BatchReadInputSimplePublicObjectId",
                            ("inputs", "properties", "propertiesWithHistory"))
        history = body.get("propertiesWithHistory") or []
        if history and len(body["inputs"]) > BATCH_HISTORY_MAX:
            raise validation("The maximum number of inputs supported in a batch request for "
                             f"property histories is {BATCH_HISTORY_MAX}",
                             context={"limit": [str(BATCH_HISTORY_MAX)]})
        inputs = self._batch_inputs(body, "BatchReadInputSimplePublicObjectId", BATCH_MAX)
        archived = self._bool(q, "archived")
        results, missing = [], []
        for i in inputs:
            self._fields(i, ("id",), "SimplePublicObjectId", ("id",))
            rec = self._by_id_property(t, str(i["id"]), body.get("idProperty"))
            if rec is None or rec.archived != archived:
                missing.append(str(i["id"]))
            else:
                results.append(self._render(t, rec, body["properties"], history))
        errors = [self._error_entry(f"Could not get some {SINGULAR[t].upper()} objects, they "
                                    "may be deleted or not exist. Check that ids are valid.",
                                    "OBJECT_NOT_FOUND", missing)] if missing else []
        call.records = len(inputs)
        return self._batch(results, errors, started)

    def batch_create(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        started = now_ms()
        body = self._fields(body, ("inputs",), "BatchInputSimplePublicObjectBatchInputForCreate",
                            ("inputs",))
        inputs = self._batch_inputs(body, "BatchInputSimplePublicObjectBatchInputForCreate",
                                    BATCH_MAX)
        for i in inputs:
            self._fields(i, ("associations", "objectWriteTraceId", "properties"),
                         "SimplePublicObjectBatchInputForCreate", ("properties",))
            self._check_properties(t, i["properties"])
        results = []
        for i in inputs:
            rec = self._create(t, i["properties"], i.get("associations"))
            out = self._render(t, rec, list(i["properties"]))
            if i.get("objectWriteTraceId"):
                out["objectWriteTraceId"] = i["objectWriteTraceId"]
            results.append(out)
        call.records = len(inputs)
        return self._batch(results, [], started, 201)

    def batch_update(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        started = now_ms()
        body = self._fields(body, ("inputs",), "BatchInputSimplePublicObjectBatchInput",
                            ("inputs",))
        inputs = self._batch_inputs(body, "BatchInputSimplePublicObjectBatchInput", BATCH_MAX)
        for i in inputs:
            self._fields(i, ("idProperty", "objectWriteTraceId", "id", "properties"),
                         "SimplePublicObjectBatchInput", ("id", "properties"))
            self._check_properties(t, i["properties"])
        ids = [str(i["id"]) for i in inputs]
        if len(set(ids)) != len(ids):
            dup = next(x for x in ids if ids.count(x) > 1)
            raise validation(f"Duplicate IDs found in batch input: [{dup}]. IDs must be unique",
                             context={"ids": [dup]})
        results, missing, invalid, failed = [], [], [], []
        for i in inputs:
            rec = self._by_id_property(t, str(i["id"]), i.get("idProperty"))
            if rec is None or rec.archived:
                missing.append(str(i["id"]))
                continue
            if str(i["id"]) in self.fail_update_ids:
                failed.append(str(i["id"]))
                continue
            error = self._write(t, rec, i["properties"])
            if error is not None:
                invalid.append((str(i["id"]), error))
                continue
            results.append(self._render(t, rec, list(i["properties"])))
        errors = []
        if missing:
            errors.append(self._error_entry(f"Could not update some {SINGULAR[t].upper()} "
                                            "objects, they may be deleted or not exist.",
                                            "OBJECT_NOT_FOUND", missing))
        for oid, message in invalid:
            errors.append(self._error_entry(message, "VALIDATION_ERROR", [oid],
                                            sub="crm.properties.INVALID_PROPERTY_VALUE"))
        if failed:
            errors.append(self._error_entry("The record is locked by another process; try "
                                            "again.", "CONFLICT", failed))
        call.records = len(inputs)
        return self._batch(results, errors, started)

    def batch_archive(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._write_scope(t)
        body = self._fields(body, ("inputs",), "BatchInputSimplePublicObjectId", ("inputs",))
        inputs = self._batch_inputs(body, "BatchInputSimplePublicObjectId", BATCH_MAX)
        for i in inputs:
            self._fields(i, ("id",), "SimplePublicObjectId", ("id",))
            rec = self.get(t, i["id"])
            if rec is not None and not rec.archived:
                self._archive(t, rec)
        call.records = len(inputs)
        return 204, None

    # ---- search ----------------------------------------------------------------------------
    OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
                           "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
                           "NOT_CONTAINS_TOKEN"})

    def search(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
               ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._read_scope(t)
        if body is None:
            body = {}
        if len(json.dumps(body)) > 3000:
            raise validation("The request body is too long: at most 3000 characters.")
        body = self._fields(body, ("query", "limit", "after", "sorts", "properties",
                                   "filterGroups"), "PublicObjectSearchRequest")
        limit = self._int(body.get("limit"), "limit", 10)
        if not 0 <= limit <= SEARCH_PAGE:
            raise validation(f"limit must be between 0 and {SEARCH_PAGE}; got {limit}")
        after = self._int(body.get("after"), "after", 0)
        if after + limit > SEARCH_WALL:
            raise validation("There was a problem with the request.",
                             context={"after": [str(after)], "limit": [str(limit)]},
                             subCategory="crm.search.RESULT_LIMIT_EXCEEDED")
        groups = body.get("filterGroups") or []
        filters = [f for g in groups for f in (self._fields(
            g, ("filters",), "FilterGroup").get("filters") or [])]
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups) \
                or len(filters) > 18:
            raise validation("Too many filters: at most 5 filterGroups, 6 filters in each and "
                             "18 filters in all.")
        for f in filters:
            self._fields(f, ("highValue", "propertyName", "values", "value", "operator"),
                         "Filter", ("propertyName", "operator"))
            if f["propertyName"] not in self.properties[t]:
                raise validation(f"There was a problem with the request: {f['propertyName']} "
                                 f"is not a property of {t}",
                                 context={"propertyName": [f["propertyName"]]})
            if f["operator"] not in self.OPERATORS:
                raise validation(f"Unknown filter operator {f['operator']}")
            if f["operator"] in ("IN", "NOT_IN") and not isinstance(f.get("values"), list):
                raise validation(f"{f['operator']} needs values")
            if f["operator"] == "BETWEEN" and (f.get("value") is None or
                                               f.get("highValue") is None):
                raise validation("BETWEEN needs value and highValue")
            if f["operator"] not in ("IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY") \
                    and f.get("value") is None:
                raise validation(f"{f['operator']} needs a value")
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise validation("Only one sort is allowed in a search request.")
        sort_key: tuple[str, bool] | None = None
        for s in sorts:
            if isinstance(s, str):
                sort_key = (s.lstrip("-"), s.startswith("-"))
            else:
                self._fields(s, ("propertyName", "direction"), "Sort", ("propertyName",))
                if s.get("direction", "ASCENDING") not in ("ASCENDING", "DESCENDING"):
                    raise validation(f"Unknown sort direction {s['direction']}")
                sort_key = (s["propertyName"], s.get("direction") == "DESCENDING")
        key = (t, json.dumps([groups, sort_key, body.get("query")], sort_keys=True))
        ids = None if self.search_lag else self.query_cache.get(key)
        if ids is None:
            ids = self._query(t, groups, sort_key, body.get("query"))
            if not self.search_lag:
                self.query_cache[key] = ids
        page_ids = ids[after:after + limit]
        props = body.get("properties") or None
        results = []
        for oid in page_ids:
            rec = self.get(t, oid)
            assert rec is not None
            results.append(self._render(t, rec, props))
        out: dict[str, Any] = {"total": len(ids), "results": results}
        if after + limit < len(ids) and limit:
            out["paging"] = {"next": {"after": str(after + limit)}}
        call.records = len(results)
        return 200, out

    def _sort_value(self, t: str, name: str, value: str | None) -> tuple[int, Any]:
        spec = self.properties[t].get(name, {})
        if value is None:
            return (1, 0)
        if spec.get("type") in ("datetime", "date"):
            return (0, parse_time(value) or 0)
        if spec.get("type") == "number":
            try:
                return (0, float(value))
            except ValueError:
                return (0, 0.0)
        return (0, value.lower())

    def _query(self, t: str, groups: list[dict[str, Any]], sort_key: tuple[str, bool] | None,
               text: str | None) -> list[int]:
        mod = modified_property(t)
        only_modified = all(f["propertyName"] in (mod, "hs_object_id")
                            for g in groups for f in g.get("filters") or []) \
            and (sort_key is None or sort_key[0] in (mod, "hs_object_id")) and not text
        rows: list[tuple[Any, int]] = []
        cutoff = now_ms() - int(self.search_lag * 1000) if self.search_lag else None
        for oid in self._all_ids(t):
            if cutoff is not None and self._modified_of(t, oid) > cutoff:
                continue  # written too recently: not in the search index yet
            if only_modified:  # answered from the modified-date column: no materialising
                if oid in self.records[t] and self.records[t][oid].archived:
                    continue
                values = {mod: self._modified_of(t, oid), "hs_object_id": oid}
                if groups and not any(all(self._match_raw(f, values[f["propertyName"]])
                                          for f in g.get("filters") or []) for g in groups):
                    continue
                sort = values[sort_key[0]] if sort_key else oid
                rows.append(((0, sort), oid))
                continue
            rec = self.get(t, oid)
            if rec is None or rec.archived:
                continue
            if groups and not any(all(self._match(t, rec, f) for f in g.get("filters") or [])
                                  for g in groups):
                continue
            if text and not any(text.lower() in (v or "").lower() for v in rec.props.values()):
                continue
            sort_v = self._sort_value(t, sort_key[0], self._value(t, rec, sort_key[0])) \
                if sort_key else (0, rec.id)
            rows.append((sort_v, oid))
        descending = bool(sort_key and sort_key[1])
        rows.sort(key=lambda r: (r[0], r[1]), reverse=descending)
        return [oid for _, oid in rows]

    @staticmethod
    def _match_raw(f: dict[str, Any], value: int) -> bool:
        op = f["operator"]
        if op == "HAS_PROPERTY":
            return True
        if op == "NOT_HAS_PROPERTY":
            return False

        def num(v: Any) -> float:
            ms = parse_time(str(v))
            if ms is None:
                raise validation(f"{v} is not a valid value for {f['propertyName']}")
            return ms
        if op in ("IN", "NOT_IN"):
            hit = value in {num(v) for v in f["values"]}
            return hit if op == "IN" else not hit
        target = num(f["value"])
        if op == "BETWEEN":
            return target <= value <= num(f.get("highValue"))
        return {"EQ": value == target, "NEQ": value != target, "LT": value < target,
                "LTE": value <= target, "GT": value > target, "GTE": value >= target,
                "CONTAINS_TOKEN": value == target,
                "NOT_CONTAINS_TOKEN": value != target}[op]

    def _match(self, t: str, rec: Record, f: dict[str, Any]) -> bool:
        name, op = f["propertyName"], f["operator"]
        value = self._value(t, rec, name)
        if op == "HAS_PROPERTY":
            return value not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return value in (None, "")
        if value in (None, ""):
            return op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
        spec = self.properties[t].get(name)
        if spec is None:
            raise validation(f"There was a problem with the request: property {name} does "
                             "not exist")
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(f["value"]).lower().strip("*")
            hit = token in str(value).lower()
            return hit if op == "CONTAINS_TOKEN" else not hit

        def key(v: Any) -> Any:
            if spec["type"] in ("datetime", "date"):
                ms = parse_time(str(v))
                if ms is None:
                    raise validation(f"{v} is not a valid date for {name}")
                return ms
            if spec["type"] == "number":
                try:
                    return float(v)
                except ValueError:
                    raise validation(f"{v} is not a valid number for {name}") from None
            return str(v).lower()
        current = key(value)
        if op in ("IN", "NOT_IN"):
            hit = current in {key(v) for v in f["values"]}
            return hit if op == "IN" else not hit
        target = key(f["value"])
        if op == "BETWEEN":
            return bool(target <= current <= key(f["highValue"]))
        return bool({"EQ": current == target, "NEQ": current != target, "LT": current < target,
                "LTE": current <= target, "GT": current > target,
                "GTE": current >= target}[op])

    # ---- properties ------------------------------------------------------------------------
    def _property_out(self, p: dict[str, Any]) -> dict[str, Any]:
        return dict(p)

    def list_properties(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                        ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, False)
        archived = self._bool(q, "archived")
        results = [self._property_out(p) for p in self.properties[t].values()
                   if p["archived"] == archived]
        call.records = len(results)
        return 200, {"results": results}

    def get_property(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, False)
        p = self.properties[t].get(m["name"])
        if p is None or p["archived"] != self._bool(q, "archived"):
            raise HubSpotError(404, f"Unable to find property {m['name']} for object type "
                               f"{t}", "OBJECT_NOT_FOUND")
        return 200, self._property_out(p)

    PROPERTY_TYPES = {"string": {"text", "textarea", "html", "phonenumber", "file", "select",
                                 "radio"},
                      "number": {"number", "calculation_equation"},
                      "date": {"date"}, "datetime": {"date"},
                      "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
                      "bool": {"booleancheckbox"}, "phone_number": {"phonenumber"}}

    def _new_property(self, t: str, body: Any) -> dict[str, Any]:
        body = self._fields(body, ("hidden", "displayOrder", "description", "label", "type",
                                   "formField", "groupName", "referencedObjectType", "name",
                                   "options", "calculationFormula", "hasUniqueValue",
                                   "fieldType", "externalOptions", "dataSensitivity"),
                            "PropertyCreate", ("name", "label", "type", "fieldType",
                                               "groupName"))
        if body["type"] not in self.PROPERTY_TYPES:
            raise validation(f"{body['type']} is not a valid property type")
        if body["fieldType"] not in self.PROPERTY_TYPES[body["type"]]:
            raise validation(f"fieldType {body['fieldType']} is not valid for type "
                             f"{body['type']}")
        if body["groupName"] not in self.groups[t]:
            raise validation(f"Property group {body['groupName']} does not exist",
                             subCategory="PropertyValidationError.INVALID_GROUP_NAME")
        options = []
        for i, o in enumerate(body.get("options") or []):
            self._fields(o, ("hidden", "displayOrder", "description", "label", "value"),
                         "OptionInput", ("label", "value", "hidden", "displayOrder"))
            options.append({"label": o["label"], "value": o["value"],
                            "displayOrder": o.get("displayOrder", i),
                            "hidden": bool(o.get("hidden")),
                            "description": o.get("description", "")})
        if body["type"] in ("enumeration",) and body["fieldType"] != "booleancheckbox" \
                and not options:
            raise validation("Enumeration properties need at least one option")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", body["name"]):
            raise validation(f"Property name {body['name']} is invalid: lowercase letters, "
                             "digits and underscores, starting with a letter")
        prop = _prop(body["name"], body["label"], body["type"], body["fieldType"],
                     body["groupName"], hubspot_defined=False)
        stamp = iso(now_ms())
        prop.update({"options": options, "description": body.get("description") or "",
                     "displayOrder": body.get("displayOrder", -1),
                     "hidden": bool(body.get("hidden")), "formField": bool(body.get("formField")),
                     "hasUniqueValue": bool(body.get("hasUniqueValue")), "createdAt": stamp,
                     "updatedAt": stamp, "calculated": False,
                     "modificationMetadata": {"readOnlyValue": False,
                                              "readOnlyDefinition": False, "archivable": True}})
        return prop

    def _exists(self, t: str, name: str) -> HubSpotError:
        return HubSpotError(409, f"A property named '{name}' already exists.",
                            "OBJECT_ALREADY_EXISTS", subCategory="PropertyValidationError."
                            "PROPERTY_ALREADY_EXISTS", context={"name": [name]})

    def create_property(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                        ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        prop = self._new_property(t, body)
        existing = self.properties[t].get(prop["name"])
        if existing is not None and not existing["archived"]:
            raise self._exists(t, prop["name"])
        self.properties[t][prop["name"]] = prop
        return 201, self._property_out(prop)

    def batch_create_properties(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                                call: Call) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        started = now_ms()
        body = self._fields(body, ("inputs",), "BatchInputPropertyCreate", ("inputs",))
        inputs = self._batch_inputs(body, "BatchInputPropertyCreate", BATCH_MAX)
        props = [self._new_property(t, i) for i in inputs]
        results, errors = [], []
        for prop in props:
            existing = self.properties[t].get(prop["name"])
            if existing is not None and not existing["archived"]:
                e = self._exists(t, prop["name"])
                errors.append(self._error_entry(e.payload["message"], "OBJECT_ALREADY_EXISTS",
                                                [prop["name"]]))
                continue
            self.properties[t][prop["name"]] = prop
            results.append(self._property_out(prop))
        call.records = len(inputs)
        return self._batch(results, errors, started, 201)

    def batch_read_properties(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                              call: Call) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, False)
        started = now_ms()
        body = self._fields(body, ("archived", "inputs", "dataSensitivity"),
                            "BatchReadInputPropertyName", ("archived", "inputs"))
        results, missing = [], []
        for i in self._batch_inputs(body, "BatchReadInputPropertyName", 1000):
            self._fields(i, ("name",), "PropertyName", ("name",))
            p = self.properties[t].get(i["name"])
            if p is None or p["archived"] != bool(body["archived"]):
                missing.append(i["name"])
            else:
                results.append(self._property_out(p))
        errors = [self._error_entry("Some properties do not exist", "OBJECT_NOT_FOUND",
                                    missing)] if missing else []
        return self._batch(results, errors, started)

    def update_property(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                        ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        body = self._fields(body, ("groupName", "hidden", "options", "displayOrder",
                                   "description", "calculationFormula", "label", "type",
                                   "fieldType", "formField"), "PropertyUpdate")
        p = self.properties[t].get(m["name"])
        if p is None or p["archived"]:
            raise HubSpotError(404, f"Unable to find property {m['name']} for object type "
                               f"{t}", "OBJECT_NOT_FOUND")
        if p["modificationMetadata"]["readOnlyDefinition"]:
            raise validation(f"{m['name']} is a HubSpot-defined property and its definition "
                             "cannot be changed")
        if "groupName" in body and body["groupName"] not in self.groups[t]:
            raise validation(f"Property group {body['groupName']} does not exist")
        for k, v in body.items():
            if k == "options":
                p["options"] = [{"label": o["label"], "value": o["value"],
                                 "displayOrder": o.get("displayOrder", i),
                                 "hidden": bool(o.get("hidden")),
                                 "description": o.get("description", "")}
                                for i, o in enumerate(v)]
            else:
                p[k] = v
        p["updatedAt"] = iso(now_ms())
        return 200, self._property_out(p)

    def archive_property(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                         ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        p = self.properties[t].get(m["name"])
        if p is None or p["archived"]:
            raise HubSpotError(404, f"Unable to find property {m['name']} for object type "
                               f"{t}", "OBJECT_NOT_FOUND")
        if p["hubspotDefined"]:
            raise validation(f"{m['name']} is a HubSpot-defined property and cannot be deleted")
        p["archived"] = True
        p["archivedAt"] = iso(now_ms())
        return 204, None

    def rename_property(self, object_type: str, old: str, new: str) -> None:
        """Seeding: a property renamed under the connector (the old name then 400s)."""
        with self.lock:
            p = self.properties[object_type].pop(old)
            p["name"] = new
            self.properties[object_type][new] = p
            for oid in list(self.records[object_type]):
                rec = self.records[object_type][oid]
                if old in rec.props:
                    rec.props[new] = rec.props.pop(old)
                if old in rec.history:
                    rec.history[new] = rec.history.pop(old)
            self._changed()

    def list_groups(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                    ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, False)
        return 200, {"results": [dict(g) for g in self.groups[t].values() if not g["archived"]]}

    def get_group(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                  ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, False)
        g = self.groups[t].get(m["name"])
        if g is None or g["archived"]:
            raise HubSpotError(404, f"Unable to find property group {m['name']}",
                               "OBJECT_NOT_FOUND")
        return 200, dict(g)

    def create_group(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        body = self._fields(body, ("name", "displayOrder", "label"), "PropertyGroupCreate",
                            ("name", "label"))
        existing = self.groups[t].get(body["name"])
        if existing is not None and not existing["archived"]:
            raise HubSpotError(409, f"A property group named '{body['name']}' already exists.",
                               "OBJECT_ALREADY_EXISTS", subCategory="PropertyGroupError."
                               "GROUP_ALREADY_EXISTS", context={"name": [body["name"]]})
        group = {"name": body["name"], "label": body["label"],
                 "displayOrder": body.get("displayOrder", -1), "archived": False}
        self.groups[t][body["name"]] = group
        return 201, dict(group)

    def update_group(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        body = self._fields(body, ("displayOrder", "label"), "PropertyGroupUpdate")
        g = self.groups[t].get(m["name"])
        if g is None or g["archived"]:
            raise HubSpotError(404, f"Unable to find property group {m['name']}",
                               "OBJECT_NOT_FOUND")
        g.update(body)
        return 200, dict(g)

    def archive_group(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        t = self._object_type(m["type"])
        self._schema_scope(t, True)
        g = self.groups[t].get(m["name"])
        if g is None or g["archived"]:
            raise HubSpotError(404, f"Unable to find property group {m['name']}",
                               "OBJECT_NOT_FOUND")
        g["archived"] = True
        return 204, None

    # ---- associations v4 -------------------------------------------------------------------
    def _assoc_types(self, specs: list[tuple[str, int, str | None]]) -> list[dict[str, Any]]:
        return [{"category": c, "typeId": i, "label": label} for c, i, label in specs]

    def assoc_page(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._read_scope(t)
        limit = min(self._int(q.get("limit", [None])[0], "limit", 500), 500)
        after = self._int(q.get("after", [None])[0], "after", 0)
        rec = self.get(t, m["id"])
        if rec is None or rec.archived:
            raise not_found(m["id"])
        links = self._links(t, rec.id, to_t)
        ordered = [i for i in sorted(links) if i > after]
        page = ordered[:limit]
        out: dict[str, Any] = {"results": [{"toObjectId": i,
                                            "associationTypes": self._assoc_types(links[i])}
                                           for i in page]}
        if len(ordered) > limit:
            out["paging"] = {"next": {"after": str(page[-1]), "link": None}}
        call.records = len(page)
        return 200, out

    def _pair(self, t: str, oid: str, to_t: str, to_id: str) -> tuple[Record, Record]:
        a, b = self.get(t, oid), self.get(to_t, to_id)
        if a is None or a.archived:
            raise not_found(oid)
        if b is None or b.archived:
            raise not_found(to_id)
        return a, b

    def assoc_create_default(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                             call: Call) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._write_scope(t)
        started = now_ms()
        a, b = self._pair(t, m["id"], to_t, m["toid"])
        self._link(t, a.id, to_t, b.id)
        self._changed()
        return self._batch([{"from": {"id": str(a.id)}, "to": {"id": str(b.id)},
                             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                                 "associationTypeId":
                                                     ASSOCIATION_TYPES[(t, to_t)]}}],
                           [], started)

    def assoc_create(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._write_scope(t)
        if not isinstance(body, list) or not body:
            raise validation("Invalid input JSON: expected a list of AssociationSpec")
        a, b = self._pair(t, m["id"], to_t, m["toid"])
        for spec in body:
            self._fields(spec, ("associationCategory", "associationTypeId"), "AssociationSpec",
                         ("associationCategory", "associationTypeId"))
            type_id = int(spec["associationTypeId"])
            if spec["associationCategory"] == "HUBSPOT_DEFINED":
                if ASSOCIATION_TYPES.get((t, to_t)) != type_id:
                    raise validation(f"{type_id} is not a valid association type between {t} "
                                     f"and {to_t}")
                self._link(t, a.id, to_t, b.id)
            else:
                self._link(t, a.id, to_t, b.id, type_id)
        self._changed()
        return 201, {"fromObjectTypeId": OBJECT_TYPE_IDS[t], "fromObjectId": a.id,
                     "toObjectTypeId": OBJECT_TYPE_IDS[to_t], "toObjectId": b.id,
                     "labels": [label for _, _, label in self._links(t, a.id, to_t)[b.id]
                                if label]}

    def assoc_archive(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._write_scope(t)
        a, b = int(m["id"]), int(m["toid"])
        self.assoc.get((t, a), {}).get(to_t, {}).pop(b, None)
        self.assoc.get((to_t, b), {}).get(t, {}).pop(a, None)
        self.unlinked.update({(t, a, to_t, b), (to_t, b, t, a)})
        self._changed()
        return 204, None

    def assoc_batch_read(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                         call: Call) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._read_scope(t)
        started = now_ms()
        body = self._fields(body, ("inputs",), "BatchInputPublicFetchAssociationsBatchRequest",
                            ("inputs",))
        inputs = self._batch_inputs(body, "BatchInputPublicFetchAssociationsBatchRequest",
                                    ASSOC_BATCH_MAX)
        results, errors = [], []
        for i in inputs:
            self._fields(i, ("id", "after"), "PublicFetchAssociationsBatchRequest", ("id",))
            rec = self.get(t, i["id"])
            links = self._links(t, rec.id, to_t) if rec is not None and not rec.archived else {}
            after = self._int(i.get("after"), "after", 0)
            ordered = [x for x in sorted(links) if x > after]
            if not ordered:
                errors.append(self._error_entry(
                    f"No {SINGULAR[to_t]} is associated with {SINGULAR[t]} {i['id']}.",
                    "OBJECT_NOT_FOUND", [str(i["id"])],
                    sub="crm.associations.NO_ASSOCIATIONS_FOUND"))
                continue
            page = ordered[:500]
            item: dict[str, Any] = {"from": {"id": str(i["id"])},
                                    "to": [{"toObjectId": x,
                                            "associationTypes": self._assoc_types(links[x])}
                                           for x in page]}
            if len(ordered) > 500:
                item["paging"] = {"next": {"after": str(page[-1]), "link": None}}
            results.append(item)
        call.records = len(inputs)
        return self._batch(results, errors, started)

    def assoc_batch_default(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                            call: Call) -> tuple[int, Any]:
        t, to_t = self._object_type(m["type"]), self._object_type(m["to"])
        self._write_scope(t)
        started = now_ms()
        body = self._fields(body, ("inputs",), "BatchInputPublicDefaultAssociationMultiPost",
                            ("inputs",))
        results = []
        for i in self._batch_inputs(body, "BatchInputPublicDefaultAssociationMultiPost",
                                    BATCH_MAX):
            self._fields(i, ("from", "to"), "PublicDefaultAssociationMultiPost", ("from", "to"))
            a, b = self._pair(t, i["from"]["id"], to_t, i["to"]["id"])
            self._link(t, a.id, to_t, b.id)
            results.append({"from": {"id": str(a.id)}, "to": {"id": str(b.id)},
                            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                                "associationTypeId":
                                                    ASSOCIATION_TYPES[(t, to_t)]}})
        self._changed()
        call.records = len(results)
        return self._batch(results, [], started)

    # ---- pipelines and owners --------------------------------------------------------------
    def _pipelines(self, name: str) -> list[dict[str, Any]]:
        t = self._object_type(name)
        self._read_scope(t)
        return self.pipelines.get(t, [])

    def list_pipelines(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                       ) -> tuple[int, Any]:
        return 200, {"results": self._pipelines(m["type"])}

    def _pipeline(self, m: re.Match[str]) -> dict[str, Any]:
        pipe = next((p for p in self._pipelines(m["type"]) if p["id"] == m["pid"]), None)
        if pipe is None:
            raise HubSpotError(404, f"Unable to find pipeline {m['pid']}", "OBJECT_NOT_FOUND")
        return pipe

    def get_pipeline(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        return 200, self._pipeline(m)

    def list_stages(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                    ) -> tuple[int, Any]:
        return 200, {"results": self._pipeline(m)["stages"]}

    def pipeline_audit(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                       ) -> tuple[int, Any]:
        pipe = self._pipeline(m)
        return 200, {"results": [{"portalId": PORTAL_ID, "identifier": pipe["id"],
                                  "action": "CREATE", "timestamp": pipe["createdAt"],
                                  "message": "Pipeline created", "rawObject": None,
                                  "fromUserId": None}]}

    def list_owners(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                    ) -> tuple[int, Any]:
        self._need("crm.objects.owners.read")
        limit = min(self._int(q.get("limit", [None])[0], "limit", 100), 500)
        after = self._int(q.get("after", [None])[0], "after", 0)
        archived = self._bool(q, "archived")
        email = q.get("email", [None])[0]
        owners = [o for o in self.owners if o["archived"] == archived
                  and (email is None or o["email"] == email)]
        page = owners[after:after + limit]
        out: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            out["paging"] = {"next": {"after": str(after + limit), "link": None}}
        call.records = len(page)
        return 200, out

    def get_owner(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                  ) -> tuple[int, Any]:
        self._need("crm.objects.owners.read")
        by = q.get("idProperty", ["id"])[0]
        if by not in ("id", "userId"):
            raise validation(f"idProperty must be id or userId, got {by}")
        owner = next((o for o in self.owners if str(o[by]) == m["id"]
                      and o["archived"] == self._bool(q, "archived")), None)
        if owner is None:
            raise HubSpotError(404, f"Owner {m['id']} not found", "OBJECT_NOT_FOUND")
        return 200, owner

    # ---- OAuth -----------------------------------------------------------------------------
    def oauth_token(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                    ) -> tuple[int, Any]:
        """POST /oauth/v1/token (form-encoded): refresh_token grant only."""
        body = body or {}
        unknown = sorted(set(body) - {"grant_type", "client_id", "client_secret",
                                      "refresh_token", "redirect_uri", "code"})
        if unknown:
            raise self._unexpected(f"oauth token field {', '.join(unknown)}",
                                   f"Unknown field {unknown[0]}")
        if body.get("grant_type") != "refresh_token":
            raise HubSpotError(400, "grant_type must be refresh_token", "BAD_GRANT_TYPE")
        app = self.oauth_apps.get(body.get("refresh_token", ""))
        if app is None or app["client_id"] != body.get("client_id") or \
                app["client_secret"] != body.get("client_secret"):
            raise HubSpotError(400, "missing or invalid refresh token", "BAD_REFRESH_TOKEN")
        access = f"oauth-{uuid.uuid4().hex}"
        self.add_token(access, app["scopes"], user_level=True, user_id=app["user_id"],
                       expires_in=app["expires_in"])
        return 200, {"token_type": "bearer", "refresh_token": body["refresh_token"],
                     "access_token": access, "expires_in": app["expires_in"]}

    # ---- marketing emails v3 ---------------------------------------------------------------
    EMAIL_FIELDS = ("rssData", "subject", "testing", "publishDate", "language", "businessUnitId",
                    "content", "webversion", "archived", "subscriptionDetails", "activeDomain",
                    "name", "campaign", "from", "jitterSendTime", "state", "to", "subcategory",
                    "sendOnPublish")
    CONTENT_FIELDS = ("smartFields", "themeSettingsValues", "flexAreas", "widgets",
                      "plainTextVersion", "templatePath", "widgetContainers", "styleSettings")

    def add_marketing_email(self, name: str, subject: str, body: str = "",
                            published: bool = False, stats: dict[str, int] | None = None,
                            email_id: int | str | None = None) -> dict[str, Any]:
        """Seed a marketing email (`body` goes into the primary rich-text widget)."""
        with self.lock:
            eid = str(email_id or self._new_id())
            stamp = iso(now_ms())
            email = {"id": eid, "name": name, "subject": subject,
                     "content": {"widgets": {"primary_rich_text_module": {
                         "body": {"html": body}, "type": "module", "name":
                         "primary_rich_text_module"}}, "plainTextVersion": body},
                     "from": {"fromName": "Sales", "replyTo": "sales@example.com"},
                     "to": {"contactLists": {"include": [], "exclude": []},
                            "suppressGraymail": True, "limitSendFrequency": True},
                     "state": "PUBLISHED" if published else "DRAFT", "subcategory": "batch",
                     "type": "BATCH_EMAIL", "sendOnPublish": True, "isPublished": published,
                     "isTransactional": False, "archived": False, "language": "en",
                     "createdAt": stamp, "updatedAt": stamp, "createdById": "7",
                     "updatedById": "7", "folderId": 0, "campaign": "",
                     "subscriptionDetails": {}, "webversion": {}, "testing": {},
                     "workflowNames": []}
            if published:
                email["publishedAt"] = stamp
            self.marketing_emails[eid] = email
            self.email_stats[eid] = dict(stats or {})
            self.email_revisions[eid] = []
            return email

    def _email(self, eid: str, archived: bool = False) -> dict[str, Any]:
        email = self.marketing_emails.get(eid)
        if email is None or email["archived"] != archived:
            raise HubSpotError(404, f"Email {eid} not found", "OBJECT_NOT_FOUND",
                               context={"id": [eid]})
        return email

    def _email_out(self, email: dict[str, Any], stats: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(email))
        if stats:
            counters = dict(self.email_stats.get(email["id"], {}))
            sent = counters.get("sent", 0)
            out["stats"] = {"counters": counters, "ratios": {
                f"{k}ratio": round(100 * v / sent, 2) for k, v in counters.items()
                if k != "sent" and sent}, "deviceBreakdown": {}, "qualifierStats": {}}
        return out

    def _email_body(self, body: Any, where: str) -> Any:
        body = self._fields(body, self.EMAIL_FIELDS, where)
        if "content" in body:
            self._fields(body["content"], self.CONTENT_FIELDS, "PublicEmailContent")
        if "state" in body and body["state"] not in ("DRAFT", "AUTOMATED_DRAFT"):
            raise validation(f"state {body['state']} cannot be set here: publish the email")
        return body

    @staticmethod
    def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
        for k, v in patch.items():
            if isinstance(v, dict) and isinstance(target.get(k), dict):
                HubSpotEmulator._merge(target[k], v)
            else:
                target[k] = v

    def _revise(self, email: dict[str, Any]) -> None:
        self.email_revisions.setdefault(email["id"], []).append({
            "id": str(len(self.email_revisions.get(email["id"], [])) + 1),
            "user": {"id": "7", "email": "owner@example.com", "fullName": "Email Owner"},
            "object": json.loads(json.dumps(email)), "updatedAt": email["updatedAt"]})

    def me_list(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                ) -> tuple[int, Any]:
        self._need("content")
        limit = self._int(q.get("limit", [None])[0], "limit", 10)
        after = self._int(q.get("after", [None])[0], "after", 0)
        archived = self._bool(q, "archived")
        emails = [e for e in self.marketing_emails.values() if e["archived"] == archived]
        if "isPublished" in q:
            published = self._bool(q, "isPublished")
            emails = [e for e in emails if e["isPublished"] == published]
        page = emails[after:after + limit]
        out: dict[str, Any] = {"total": len(emails), "results": [
            self._email_out(e, self._bool(q, "includeStats")) for e in page]}
        if after + limit < len(emails):
            out["paging"] = {"next": {"after": str(after + limit), "link": None}}
        call.records = len(page)
        return 200, out

    def me_get(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
               ) -> tuple[int, Any]:
        self._need("content")
        return 200, self._email_out(self._email(m["id"], self._bool(q, "archived")),
                                    self._bool(q, "includeStats"))

    def me_create(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                  ) -> tuple[int, Any]:
        self._need("content")
        body = self._fields(body, ("feedbackSurveyId", *self.EMAIL_FIELDS), "EmailCreateRequest",
                            ("name",))
        if "content" in body:
            self._fields(body["content"], self.CONTENT_FIELDS, "PublicEmailContent")
        email = self.add_marketing_email(body["name"], body.get("subject", ""))
        self._merge(email, {k: v for k, v in body.items() if k != "state"})
        return 201, self._email_out(email)

    def me_update(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                  ) -> tuple[int, Any]:
        self._need("content")
        email = self._email(m["id"], self._bool(q, "archived"))
        body = self._email_body(body, "EmailUpdateRequest")
        self._merge(email, body)
        email["updatedAt"] = iso(now_ms())
        self._revise(email)
        return 200, self._email_out(email)

    def me_archive(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        self._need("content")
        email = self._email(m["id"])
        email["archived"] = True
        email["deletedAt"] = iso(now_ms())
        return 204, None

    def me_get_draft(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        self._need("content")
        email = self._email(m["id"])
        return 200, self._email_out(self.email_drafts.get(m["id"], email))

    def me_upsert_draft(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                        ) -> tuple[int, Any]:
        """HubSpot: "If no draft exists, the system creates a draft from the current 'live'
        email then applies the request body"; the live email is left as it is."""
        self._need("content")
        email = self._email(m["id"])
        body = self._email_body(body, "EmailUpdateRequest")
        draft = self.email_drafts.get(m["id"])
        if draft is None:
            draft = json.loads(json.dumps(email))
            self.email_drafts[m["id"]] = draft
        self._merge(draft, body)
        draft["updatedAt"] = iso(now_ms())
        return 200, self._email_out(draft)

    def me_reset_draft(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                       ) -> tuple[int, Any]:
        self._need("content")
        self._email(m["id"])
        self.email_drafts.pop(m["id"], None)
        return 204, None

    def me_publish(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        """Publishing is for Marketing Hub Enterprise or the transactional add-on only."""
        self._need(*sorted(PUBLISH_SCOPES))
        email = self._email(m["id"])
        if not self.enterprise:
            raise HubSpotError(403, "Publishing or sending marketing email through the API "
                               "requires Marketing Hub Enterprise or the transactional email "
                               "add-on.", "MISSING_SCOPES",
                               subCategory="MarketingEmailError.PUBLISH_NOT_ALLOWED")
        draft = self.email_drafts.pop(m["id"], None)
        if draft is not None:
            email.clear()
            email.update(draft)
        email["state"] = {"DRAFT_AB": "PUBLISHED_AB", "DRAFT_AB_VARIANT":
                          "PUBLISHED_AB_VARIANT"}.get(email["state"], "PUBLISHED")
        email["isPublished"] = True
        email["publishedAt"] = email["updatedAt"] = iso(now_ms())
        self._revise(email)
        return 204, None

    def me_unpublish(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        self._need(*sorted(PUBLISH_SCOPES))
        email = self._email(m["id"])
        if not email["isPublished"]:
            raise validation(f"Email {m['id']} is not published")
        email["state"], email["isPublished"] = "DRAFT", False
        return 204, None

    def me_revisions(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        self._need("content")
        self._email(m["id"])
        revisions = list(reversed(self.email_revisions.get(m["id"], [])))
        limit = self._int(q.get("limit", [None])[0], "limit", 100)
        return 200, {"total": len(revisions), "results": revisions[:limit]}

    def me_clone(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                 ) -> tuple[int, Any]:
        self._need("content")
        body = self._fields(body, ("cloneName", "id", "language"), "ContentCloneRequestVNext",
                            ("id",))
        source = self._email(str(body["id"]))
        clone = self.add_marketing_email(body.get("cloneName") or f"{source['name']} (clone)",
                                         source["subject"])
        for k in ("content", "from", "to", "subcategory", "language"):
            clone[k] = json.loads(json.dumps(source[k]))
        return 200, self._email_out(clone)

    def me_create_variation(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                            call: Call) -> tuple[int, Any]:
        """A/B variation, created as a draft; the original becomes the test's master."""
        self._need("content")
        body = self._fields(body, ("variationName", "contentId"), "AbTestCreateRequestVNext",
                            ("variationName", "contentId"))
        master = self._email(str(body["contentId"]))
        if master.get("testing", {}).get("abStatus") in ("master", "variant"):
            raise validation(f"Email {master['id']} is already part of an A/B test",
                             subCategory="MarketingEmailError.AB_TEST_EXISTS")
        if master["isPublished"]:
            raise validation(f"Email {master['id']} is published: A/B variations can only be "
                             "created for drafts")
        variant = self.add_marketing_email(body["variationName"], master["subject"])
        for k in ("content", "from", "to", "subcategory", "language"):
            variant[k] = json.loads(json.dumps(master[k]))
        test_id = str(self._new_id())
        master["testing"] = {"abStatus": "master", "testId": test_id, "abTestPercentage": 50,
                             "hoursToWait": 4, "abSuccessMetric": "OPENS_BY_DELIVERED"}
        variant["testing"] = {**master["testing"], "abStatus": "variant"}
        master["state"], variant["state"] = "DRAFT_AB", "DRAFT_AB_VARIANT"
        master["type"] = variant["type"] = "AB_EMAIL"
        return 201, self._email_out(variant)

    def me_get_variation(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                         call: Call) -> tuple[int, Any]:
        self._need("content")
        email = self._email(m["id"])
        test = email.get("testing", {}).get("testId")
        other = next((e for e in self.marketing_emails.values() if e["id"] != email["id"]
                      and test and e.get("testing", {}).get("testId") == test), None)
        if other is None:
            raise HubSpotError(404, f"Email {m['id']} has no A/B variation",
                               "OBJECT_NOT_FOUND")
        return 200, self._email_out(other)

    def me_statistics(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        self._need("content")
        ids = self._list(q, "emailIds") or list(self.marketing_emails)
        total: dict[str, int] = {}
        for eid in ids:
            for k, v in self.email_stats.get(eid, {}).items():
                total[k] = total.get(k, 0) + v
        return 200, {"emails": [int(i) for i in ids], "campaignAggregations": {},
                     "aggregate": {"counters": total, "ratios": {}, "deviceBreakdown": {},
                                   "qualifierStats": {}}}

    # ---- sequences v4 (read and enroll) ----------------------------------------------------
    def add_seat(self, user_id: int, inbox: str) -> None:
        """A user with a Sales Hub Professional seat and `inbox` connected (enrolls need it)."""
        with self.lock:
            self.seats[int(user_id)] = inbox

    def add_sequence(self, name: str, user_id: int, steps: list[dict[str, Any]],
                     sequence_id: int | str | None = None,
                     performance: dict[int, dict[str, int]] | None = None) -> dict[str, Any]:
        """Seed a sequence. Each step: {"actionType": "EMAIL"|"TASK"|..., "templateId": "42",
        "delayMillis": 0, "variants": [{"templateId": "43", "activated": True}]}."""
        with self.lock:
            sid = str(sequence_id or self._new_id())
            stamp = iso(now_ms())
            seq = {"id": sid, "name": name, "userId": str(user_id), "folderId": "1",
                   "createdAt": stamp, "updatedAt": stamp, "dependencies": [], "dynamic": False,
                   "settings": {"id": str(self._new_id()), "createdAt": stamp,
                                "updatedAt": stamp, "eligibleFollowUpDays": "BUSINESS_DAYS",
                                "individualTaskRemindersEnabled": False,
                                "sellingStrategy": "LEAD_BASED", "sendWindowStartMinute": 480,
                                "sendWindowEndMinute": 1080, "taskReminderMinute": 480},
                   "steps": [self._step(i, s, stamp) for i, s in enumerate(steps)]}
            self.sequences[sid] = seq
            self.sequence_performance[sid] = performance or {}
            return seq

    def _step(self, order: int, s: dict[str, Any], stamp: str) -> dict[str, Any]:
        step: dict[str, Any] = {"id": str(self._new_id()), "stepOrder": order,
                                "actionType": s.get("actionType", "EMAIL"),
                                "delayMillis": int(s.get("delayMillis", 0)),
                                "createdAt": stamp, "updatedAt": stamp}
        if step["actionType"] == "EMAIL":
            step["emailPattern"] = {"id": str(self._new_id()),
                                    "templateId": str(s.get("templateId", "")),
                                    "createdAt": stamp, "updatedAt": stamp}
            step["variants"] = [{"activated": bool(v.get("activated", True)),
                                 "variantOrdinal": i + 1,
                                 "emailPattern": {"templateId": str(v["templateId"])}}
                                for i, v in enumerate(s.get("variants") or [])]
        elif step["actionType"] == "TASK":
            step["taskPattern"] = {"id": str(self._new_id()), "createdAt": stamp,
                                   "updatedAt": stamp, "taskPriority": "NONE",
                                   "taskType": s.get("taskType", "TODO"),
                                   "subject": s.get("subject", "")}
        return step

    def add_enrollment(self, contact_id: int | str, sequence_id: str, user_id: int,
                       enrolled_at: dt.datetime | int | None = None) -> dict[str, Any]:
        with self.lock:
            return self._enroll(str(contact_id), str(sequence_id), int(user_id),
                                to_ms(enrolled_at) if enrolled_at is not None else now_ms())

    def _enroll(self, contact_id: str, sequence_id: str, user_id: int, when: int
                ) -> dict[str, Any]:
        contact = self.get("contacts", contact_id)
        seq = self.sequences[sequence_id]
        enrollment = {"id": str(self._new_id()), "toEmail": (contact.props.get("email") or "")
                      if contact else "", "enrolledAt": iso(when), "updatedAt": iso(when),
                      "sequenceId": sequence_id, "sequenceName": seq["name"],
                      "enrolledBy": str(user_id),
                      "enrolledByEmail": self.seats.get(user_id, f"user{user_id}@example.com"),
                      "contactId": contact_id, "active": True}
        for e in self.enrollments:
            if e["contactId"] == contact_id:
                e["active"] = False
        self.enrollments.append(enrollment)
        return enrollment

    def _user_id(self, q: dict[str, list[str]]) -> int:
        raw = q.get("userId", [""])[0]
        if not raw:
            raise validation("userId is required", context={"userId": ["required"]})
        return self._int(raw, "userId", 0)

    @staticmethod
    def _seq_lite(seq: dict[str, Any]) -> dict[str, Any]:
        return {k: seq[k] for k in ("id", "name", "userId", "folderId", "createdAt",
                                    "updatedAt")}

    @staticmethod
    def _seq_v4(seq: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(seq))
        out.pop("dynamic", None)
        for step in out["steps"]:
            step.pop("variants", None)
        return out

    def _page(self, items: list[Any], q: dict[str, list[str]], default: int,
              with_total: bool = True) -> dict[str, Any]:
        limit = self._int(q.get("limit", [None])[0], "limit", default)
        after = self._int(q.get("after", [None])[0], "after", 0)
        out: dict[str, Any] = {"results": items[after:after + limit]}
        if with_total:
            out["total"] = len(items)
        if after + limit < len(items):
            out["paging"] = {"next": {"after": str(after + limit), "link": None}}
        return out

    def seq_list(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                 ) -> tuple[int, Any]:
        self._need("automation.sequences.read")
        self._user_id(q)
        name = q.get("name", [None])[0]
        seqs = [self._seq_lite(s) for s in self.sequences.values()
                if name is None or name.lower() in s["name"].lower()]
        return 200, self._page(seqs, q, 100)

    def seq_get(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                ) -> tuple[int, Any]:
        self._need("automation.sequences.read")
        self._user_id(q)
        seq = self.sequences.get(m["sid"])
        if seq is None:
            raise HubSpotError(404, f"Sequence {m['sid']} not found", "OBJECT_NOT_FOUND")
        return 200, self._seq_v4(seq)

    def seq_enroll(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        self._need("automation.sequences.enrollments.write")
        user_id = self._user_id(q)
        body = self._fields(body, ("contactId", "sequenceId", "senderEmail",
                                   "senderAliasAddress"), "PublicSequenceEnrollmentRequest",
                            ("contactId", "sequenceId", "senderEmail"))
        if user_id not in self.seats:
            raise HubSpotError(403, "Permission Denied: the user needs a Sales Hub or Service "
                               "Hub Professional or Enterprise seat to enroll contacts.",
                               "MISSING_SCOPES")
        if self.seats[user_id] != body["senderEmail"]:
            raise validation(f"User {user_id} has no connected inboxes for specified user "
                             "email")
        seq = self.sequences.get(str(body["sequenceId"]))
        if seq is None:
            raise HubSpotError(404, f"Sequence {body['sequenceId']} not found",
                               "OBJECT_NOT_FOUND")
        contact = self.get("contacts", body["contactId"])
        if contact is None or contact.archived:
            raise not_found(str(body["contactId"]))
        seeded = self.enrollment_source(str(body["contactId"])) \
            if self.enrollment_source is not None else None
        if any(e["contactId"] == str(body["contactId"]) and e["active"]
               for e in self.enrollments) or (seeded is not None and not any(
                   e["contactId"] == str(body["contactId"]) for e in self.enrollments)):
            raise validation("Contact already enrolled in a sequence")
        e = self._enroll(str(body["contactId"]), seq["id"], user_id, now_ms())
        return 200, {k: e[k] for k in ("id", "toEmail", "enrolledAt", "updatedAt")}

    def seq_enrollment(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                       ) -> tuple[int, Any]:
        self._need("automation.sequences.read")
        current = [e for e in self.enrollments if e["contactId"] == m["cid"] and e["active"]]
        if not current and self.enrollment_source is not None and \
                not any(e["contactId"] == m["cid"] for e in self.enrollments):
            seeded = self.enrollment_source(m["cid"])
            current = [seeded] if seeded else []
        if not current:
            raise HubSpotError(404, f"Contact {m['cid']} is not enrolled in a sequence",
                               "OBJECT_NOT_FOUND")
        e = current[-1]
        return 200, {k: e[k] for k in ("id", "toEmail", "enrolledAt", "updatedAt",
                                       "sequenceId", "sequenceName", "enrolledBy",
                                       "enrolledByEmail")}

    # ---- 2026-09-beta: sequences and sales email templates (user-level tokens only) --------
    def _user_level(self, *scopes: str) -> None:
        assert self.caller is not None
        if not self.caller.user_level:
            raise HubSpotError(
                403, "This endpoint requires user-level access and will not work for apps "
                "with portal-level access (such as a private app).", "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": list(scopes)}}],
                links={"scopes": "https://developers.hubspot.com/scopes"})
        self._need(*scopes)

    def beta_seq_list(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                      ) -> tuple[int, Any]:
        self._user_level("automation.sequences.read")
        if "userId" in q:
            self._user_id(q)
        name = q.get("name", [None])[0]
        return 200, self._page([self._seq_lite(s) for s in self.sequences.values()
                                if name is None or name.lower() in s["name"].lower()], q, 100)

    def _beta_seq(self, sid: str) -> dict[str, Any]:
        seq = self.sequences.get(sid)
        if seq is None:
            raise HubSpotError(404, f"Sequence {sid} not found", "OBJECT_NOT_FOUND")
        return seq

    def beta_seq_get(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        self._user_level("automation.sequences.read")
        return 200, json.loads(json.dumps(self._beta_seq(m["sid"])))

    def _sequence_request(self, body: Any) -> Any:
        body = self._fields(body, ("name", "settings", "steps", "dependencies", "dynamic",
                                   "folderId", "userId"), "PublicSequenceRequest",
                            ("name", "settings", "steps", "dependencies", "dynamic"))
        if not isinstance(body["steps"], list) or not body["steps"]:
            raise validation("A sequence needs at least one step")
        for step in body["steps"]:
            self._fields(step, ("actionType", "delayMillis", "stepOrder", "emailPattern",
                                "taskPattern", "variants", "steps", "id"), "PublicSequenceStep",
                         ("actionType", "delayMillis"))
            if step["actionType"] not in ("ADAPTIVE_CONTAINER", "EMAIL", "FINISH_ENROLLMENT",
                                          "TASK"):
                raise validation(f"actionType {step['actionType']} is not valid")
            for v in step.get("variants") or []:
                self._fields(v, ("activated", "variantOrdinal", "emailPattern"),
                             "PublicSequenceStepVariant", ("activated", "variantOrdinal",
                                                           "emailPattern"))
                tid = str(v["emailPattern"].get("templateId", ""))
                if tid not in self.templates:
                    raise validation(f"Template {tid} does not exist")
            if step["actionType"] == "EMAIL":
                tid = str((step.get("emailPattern") or {}).get("templateId", ""))
                if tid not in self.templates:
                    raise validation(f"Template {tid} does not exist")
        return body

    def _apply_sequence(self, seq: dict[str, Any], body: dict[str, Any]) -> None:
        stamp = iso(now_ms())
        seq.update({"name": body["name"], "dependencies": body["dependencies"],
                    "dynamic": bool(body["dynamic"]), "updatedAt": stamp})
        if isinstance(body["settings"], dict):
            seq["settings"].update({k: v for k, v in body["settings"].items()
                                    if k in seq["settings"] and k not in ("id", "createdAt")})
        seq["steps"] = [self._step(i, {"actionType": s["actionType"],
                                       "delayMillis": s["delayMillis"],
                                       "templateId": (s.get("emailPattern") or {}).get(
                                           "templateId", ""),
                                       "variants": [{"templateId": v["emailPattern"][
                                           "templateId"], "activated": v["activated"]}
                                           for v in s.get("variants") or []]}, stamp)
                        for i, s in enumerate(body["steps"])]

    def beta_seq_create(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                        call: Call) -> tuple[int, Any]:
        self._user_level("automation.sequences.write")
        body = self._sequence_request(body)
        assert self.caller is not None
        seq = self.add_sequence(body["name"], self.caller.user_id or 0, [])
        self._apply_sequence(seq, body)
        return 200, json.loads(json.dumps(seq))

    def beta_seq_put(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                     ) -> tuple[int, Any]:
        self._user_level("automation.sequences.write")
        seq = self._beta_seq(m["sid"])
        self._apply_sequence(seq, self._sequence_request(body))
        return 200, json.loads(json.dumps(seq))

    def beta_seq_delete(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                        ) -> tuple[int, Any]:
        self._user_level("automation.sequences.write")
        self._beta_seq(m["sid"])
        active = [e for e in self.enrollments if e["sequenceId"] == m["sid"] and e["active"]]
        if active and not self._bool(q, "overrideActiveEnrollment"):
            raise validation(f"Sequence {m['sid']} has active enrollments")
        del self.sequences[m["sid"]]
        return 204, None

    def beta_seq_performance(self, m: re.Match[str], q: dict[str, list[str]], body: Any,
                             call: Call) -> tuple[int, Any]:
        self._user_level("automation.sequences.read")
        seq = self._beta_seq(m["sid"])
        perf = self.sequence_performance.get(seq["id"], {})
        return 200, {"sequenceId": seq["id"], "steps": [
            {"stepOrder": s["stepOrder"], "actionType": s["actionType"],
             **{k: perf.get(s["stepOrder"], {}).get(k, 0) for k in (
                 "executionCount", "opened", "clicked", "replied", "meetingsBooked")}}
            for s in seq["steps"]]}

    def add_template(self, name: str, subject: str, body: str, template_id: int | str | None
                     = None, folder_id: str = "1", owner_id: str = "7") -> dict[str, Any]:
        """Seed a sales email template (timestamps are epoch ms, as the beta spec says)."""
        with self.lock:
            tid = str(template_id or self._new_id())
            stamp = now_ms()
            tpl = {"id": tid, "name": name, "subject": subject, "body": body,
                   "folderId": folder_id, "ownerId": owner_id, "createdAt": stamp,
                   "updatedAt": stamp}
            self.templates[tid] = tpl
            return tpl

    def tpl_list(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                 ) -> tuple[int, Any]:
        self._user_level("sales-templates-public-read")
        return 200, self._page(list(self.templates.values()), q, 20, with_total=False)

    def tpl_folders(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                    ) -> tuple[int, Any]:
        self._user_level("sales-templates-public-read")
        return 200, self._page(self.template_folders, q, 20, with_total=False)

    def tpl_get(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                ) -> tuple[int, Any]:
        self._user_level("sales-templates-public-read")
        tpl = self.templates.get(m["tid"])
        if tpl is None:
            raise HubSpotError(404, f"Template {m['tid']} not found", "OBJECT_NOT_FOUND")
        return 200, dict(tpl)

    def tpl_create(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        self._user_level("sales-templates-public-write")
        body = self._fields(body, ("body", "folderId", "name", "subject"), "PublicTemplateInput",
                            ("body", "name"))
        tpl = self.add_template(body["name"], body.get("subject", ""), body["body"],
                                folder_id=body.get("folderId") or "1")
        return 201, dict(tpl)

    def tpl_update(self, m: re.Match[str], q: dict[str, list[str]], body: Any, call: Call
                   ) -> tuple[int, Any]:
        """PATCH needs all of body, folderId, name and subject (PublicTemplateUpdate)."""
        self._user_level("sales-templates-public-write")
        body = self._fields(body, ("body", "folderId", "name", "subject"),
                            "PublicTemplateUpdate", ("body", "folderId", "name", "subject"))
        tpl = self.templates.get(m["tid"])
        if tpl is None:
            raise HubSpotError(404, f"Template {m['tid']} not found", "OBJECT_NOT_FOUND")
        tpl.update({k: body[k] for k in ("body", "folderId", "name", "subject")})
        tpl["updatedAt"] = now_ms()
        return 200, dict(tpl)
