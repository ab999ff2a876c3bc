"""A local Jira Cloud REST server that the `jira` and `atlassian-python-api` clients talk to.

Cloud semantics: serverInfo says Cloud (so clients use /search/jql with nextPageToken and no
total), changelogs inside a search are truncated at 100 histories (the rest is paged from
/issue/{key}/changelog), `notifyUsers=false` needs Administer Projects (403 otherwise).
Writes behave as Jira's do: every write bumps the issue's `updated`, and field edits and new
remote links add a change-history entry authored by the account that made them (the Basic-auth
email's account, also what /myself answers). Faults on demand: `throttle` answers the next N
calls with 429 and Retry-After; `echo_status` answers every call (of `echo_methods`, all when
empty) with that status and an error body that echoes the request's Authorization header and
the token it carries, raw, URL-encoded and base64 (a careless tool or proxy), and
`echo_server_info` answers serverInfo with such an echo instead of its version (the `jira`
client then logs the answer). Unknown routes are 404s recorded in `unexpected`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CHANGELOG_IN_SEARCH = 100
COMMENT_PAGE = 100  # the most comments one GET /issue/{key}/comment returns
COMMENT_FIELDS = {"body", "visibility", "properties"}  # what a comment create/update may carry


def jira_time(value: dt.datetime) -> str:
    """Jira's timestamp format: 2025-03-01T12:00:00.000+0000."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass
class Issue:
    """One issue: its fields and its change history."""

    id: str
    key: str
    fields: dict[str, Any]
    histories: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, Any] = field(default_factory=dict)  # id -> body (ADF dict or text)
    comment_properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> key -> value
    properties: dict[str, Any] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # globalId -> link
    updated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class JiraEmulator:
    """State and server."""

    def __init__(self) -> None:
        self.issues: dict[str, Issue] = {}
        self.fields: list[dict[str, Any]] = [
            {"id": fid, "key": fid, "name": name, "custom": False, "clauseNames": [fid],
             "schema": {"type": typ}}
            for fid, name, typ in (("summary", "Summary", "string"),
                                   ("duedate", "Due date", "date"),
                                   ("timeoriginalestimate", "Original estimate", "number"),
                                   ("timespent", "Time Spent", "number"),
                                   ("resolutiondate", "Resolved", "datetime"),
                                   ("status", "Status", "status"),
                                   ("issuetype", "Issue Type", "issuetype"),
                                   ("project", "Project", "project"),
                                   ("priority", "Priority", "priority"),
                                   ("assignee", "Assignee", "user"),
                                   ("components", "Components", "array"),
                                   ("labels", "Labels", "array"),
                                   ("updated", "Updated", "datetime"))]
        self.on_screen: set[str] = set()
        self.admin = False
        self.throttle = 0
        self.fail_5xx = 0  # answer the next N calls with 503
        self.delay = 0.0  # seconds to stall every answer (timeouts)
        # Stall the requests matching `stall_match` ("METHOD path" regex) after the first
        # `stall_after` of them until `unstall` is set; a stalled write is applied when
        # released, answered or not (the client may have died meanwhile).
        self.stall_after: int | None = None
        self.stall_match = r"^(POST|PUT) /rest/api/"
        self.stall_seen = 0
        self.stalled = threading.Event()
        self.unstall = threading.Event()
        self.echo_status = 0  # answer with this status and the request's credentials echoed
        self.echo_methods: set[str] = set()  # which methods echo_status applies to (all: empty)
        self.echo_server_info = False  # serverInfo echoes the credentials, without a version
        self.write_limit: int | None = None  # edits allowed per issue before Jira refuses
        self.writes: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.spec_errors: list[str] = []
        self.webhooks: list[dict[str, Any]] = []
        self.deliveries: list[tuple[str, int]] = []  # (url, status) of webhook posts
        self.unexpected: list[str] = []
        self.accounts: dict[str, dict[str, Any]] = {  # email -> the account it signs in as
            "bot@example.com": {"accountId": "bot-1", "displayName": "learnloop"}}
        self.caller: dict[str, Any] = {}  # the account of the request being answered
        self.history_ids = 900_000_000  # ids of the histories writes add (above seeded ones)
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""

    # ---- seeding ---------------------------------------------------------------------------
    def add_issue(self, key: str, fields: dict[str, Any], histories: list[dict[str, Any]] = (),
                  updated: dt.datetime | None = None) -> Issue:
        issue = Issue(id=str(10000 + len(self.issues)), key=key, fields=dict(fields),
                      histories=list(histories), updated=updated or dt.datetime.now(dt.UTC))
        self.issues[key] = issue
        return issue

    def touch(self, issue: Issue, when: dt.datetime | None = None) -> None:
        issue.updated = when or max(dt.datetime.now(dt.UTC),
                                    issue.updated + dt.timedelta(milliseconds=1))

    def account(self, email: str) -> dict[str, Any]:
        """The account an email signs in as (a new one for an email not seen before)."""
        if email not in self.accounts:
            self.accounts[email] = {"accountId": f"acct-{len(self.accounts) + 1}",
                                    "displayName": email.split("@")[0]}
        return self.accounts[email]

    def record(self, issue: Issue, items: list[dict[str, Any]]) -> None:
        """A change-history entry by the calling account, and the `updated` bump of any write."""
        self.touch(issue)
        if not items:
            return
        author = {"accountId": self.caller.get("accountId", "anonymous"),
                  "displayName": self.caller.get("displayName", "Anonymous"), "active": True,
                  "accountType": "atlassian"}
        self.history_ids += 1
        issue.histories.append({"id": str(self.history_ids), "author": author, "created": jira_time(issue.updated),
                                "items": items})

    # ---- server ----------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                # Logged on arrival: a stalled request a client gave up on is counted when it
                # was made, not seconds later in whatever test runs then.
                with emulator.lock:
                    emulator.requests.append((method, self.path))
                    stall = emulator.stall_after is not None and re.match(
                        emulator.stall_match, f"{method} {self.path}") is not None
                    if stall:
                        emulator.stall_seen += 1
                        stall = emulator.stall_seen > (emulator.stall_after or 0)
                if stall:
                    emulator.stalled.set()
                    emulator.unstall.wait(120)
                if emulator.delay:
                    import time

                    time.sleep(emulator.delay)
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with emulator.lock:
                    code, payload, headers = emulator.route(
                        method, parts.path, parse_qs(parts.query, keep_blank_values=True), body,
                        self.headers.get("Authorization"))
                    if code < 300 and parts.path.startswith("/rest/api/") \
                            and not emulator.echo_server_info:
                        from tests.emulators.jira import spec

                        if spec.available():
                            emulator.spec_errors += spec.validate(method, parts.path, code,
                                                                  payload)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                if payload is not None:
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client died while its request was stalled: it was applied

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.base

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @staticmethod
    def echo(auth: str) -> dict[str, Any]:
        """An error body quoting the request's credentials in the forms tools echo them."""
        from urllib.parse import quote

        token = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")[2]
        return {"errorMessages": [f"Access denied for Authorization: {auth}",
                                  f"token {token} is not allowed here"],
                "errors": {"token": quote(token, safe=""),
                           "token_base64": base64.b64encode(token.encode()).decode()},
                "request": {"headers": {"Authorization": auth}, "token": token}}

    @staticmethod
    def _error(code: int, *messages: str) -> tuple[int, Any, dict[str, str]]:
        return code, {"errorMessages": list(messages), "errors": {}}, {}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any,
              auth: str | None) -> tuple[int, Any, dict[str, str]]:
        if not auth or not auth.startswith("Basic "):
            return self._error(401, "You are not authenticated. Authentication required.")
        email = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")[0]
        self.caller = self.account(email)
        if self.echo_status and (not self.echo_methods or method in self.echo_methods):
            return self.echo_status, self.echo(auth), {}
        if self.throttle > 0:
            self.throttle -= 1
            return 429, {"errorMessages": ["Rate limit exceeded."]}, {"Retry-After": "1"}
        if self.fail_5xx > 0:
            self.fail_5xx -= 1
            return 503, {"errorMessages": ["Service Unavailable"]}, {}
        if path == "/rest/webhooks/1.0/webhook" and method == "POST":
            hook = {**(body or {}), "self": f"{self.base}/rest/webhooks/1.0/webhook/"
                                            f"{len(self.webhooks) + 1}"}
            if not hook.get("url") or not hook.get("events"):
                return self._error(400, "A webhook needs a url and events.")
            self.webhooks.append(hook)
            return 201, {k: v for k, v in hook.items() if k != "secret"}, {}
        version = "3" if path.startswith("/rest/api/3/") else "2"
        path = re.sub(r"^/rest/api/[23]", "/api", path)
        if method == "GET" and path == "/api/serverInfo" and self.echo_server_info:
            return 200, {"deploymentType": "Cloud", **self.echo(auth)}, {}
        if method == "GET" and path == "/api/serverInfo":
            return 200, {"baseUrl": self.base, "version": "1001.0.0-SNAPSHOT",
                         "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud",
                         "buildNumber": 100242, "serverTitle": "Emulated Jira"}, {}
        if method == "GET" and path == "/api/myself":
            return 200, {**self.caller, "emailAddress": email, "timeZone": "Europe/Berlin"}, {}
        if method == "GET" and path == "/api/field":
            return 200, self.fields, {}
        if method == "POST" and path == "/api/field":
            return self.create_field(body)
        m = re.match(r"^/api/screens/addToDefault/([\w-]+)$", path)
        if m and method == "POST":
            self.on_screen.add(m.group(1))
            return 200, {}, {}
        if method in ("GET", "POST") and path == "/api/search/jql":
            return self.search(query if method == "GET" else {k: [v] if not isinstance(v, list)
                                                               else v for k, v in body.items()})
        m = re.match(r"^/api/issue/([\w-]+)/comment(?:/(\d+))?$", path)
        if m and method in ("POST", "PUT"):
            return self.comment(m.group(1), m.group(2), version, body or {})
        if m and method == "GET" and m.group(2) is None:
            return self.comments_page(m.group(1), query, version)
        m = re.match(r"^/api/issue/([\w-]+)/properties/([\w.-]+)$", path)
        if m and method == "PUT":
            issue = self._issue(m.group(1))
            if issue is None:
                return self._error(404, "Issue does not exist or you do not have permission to see it.")
            created = m.group(2) not in issue.properties
            issue.properties[m.group(2)] = body
            self.record(issue, [])
            return (201 if created else 200), None, {}
        m = re.match(r"^/api/issue/([\w-]+)/remotelink$", path)
        if m and method == "POST":
            return self.remote_link(m.group(1), body or {})
        m = re.match(r"^/api/issue/([\w-]+)/changelog$", path)
        if m and method == "GET":
            return self.changelog(m.group(1), query)
        m = re.match(r"^/api/issue/([\w-]+)$", path)
        if m and method == "GET":
            issue = self._issue(m.group(1))
            if issue is None:
                return self._error(404, "Issue does not exist or you do not have permission to see it.")
            return 200, self.issue_json(issue, "changelog" in query.get("expand", [""])[0]), {}
        if m and method == "PUT":
            return self.edit(m.group(1), query, body or {})
        self.unexpected.append(f"{method} {path}")
        return self._error(404, f"No route for {method} {path}")

    def _issue(self, key_or_id: str) -> Issue | None:
        return self.issues.get(key_or_id) or next(
            (i for i in self.issues.values() if i.id == key_or_id), None)

    def create_field(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        name = str(body.get("name", "")).strip()
        if not name or not body.get("type"):
            return self._error(400, "Field name and type are required.")
        fid = f"customfield_{10050 + len([f for f in self.fields if f['custom']])}"
        entry = {"id": fid, "key": fid, "name": name, "custom": True,
                 "clauseNames": [f"cf[{fid.split('_')[1]}]", name],
                 "schema": {"type": "string", "custom": body["type"],
                            "customId": int(fid.split("_")[1])}}
        self.fields.append(entry)
        return 201, entry, {}

    def issue_json(self, issue: Issue, with_changelog: bool,
                   fields: list[str] | None = None) -> dict[str, Any]:
        data = {**issue.fields, "updated": jira_time(issue.updated)}
        if fields and "*all" not in fields:
            data = {k: v for k, v in data.items() if k in fields}
        out: dict[str, Any] = {"expand": "renderedFields,names,changelog", "id": issue.id,
                               "self": f"{self.base}/rest/api/2/issue/{issue.id}",
                               "key": issue.key, "fields": data}
        if with_changelog:
            shown = issue.histories[:CHANGELOG_IN_SEARCH]
            out["changelog"] = {"startAt": 0, "maxResults": len(shown),
                                "total": len(issue.histories), "histories": shown}
        return out

    def search(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        jql = query.get("jql", [""])[0]
        issues = sorted(self.issues.values(), key=lambda i: (i.updated, int(i.id)))
        since = re.search(r"updated\s*>=\s*(\d{10,})", jql)
        if since:
            cut = dt.datetime.fromtimestamp(int(since.group(1)) / 1000, tz=dt.UTC)
            issues = [i for i in issues if i.updated >= cut]
        parent = re.search(r'parent\s*=\s*"?([A-Z][A-Z0-9]*-\d+)"?', jql)
        if parent:
            issues = [i for i in issues
                      if (i.fields.get("parent") or {}).get("key") == parent.group(1)]
        project = re.search(r'project\s*=\s*"?([A-Z][A-Z0-9]*)"?', jql)
        if project:
            issues = [i for i in issues if i.fields.get("project", {}).get("key") == project.group(1)]
        fields = [f for v in query.get("fields", []) for f in v.split(",") if f]
        size = min(int(query.get("maxResults", ["50"])[0] or 50), 100)
        token = query.get("nextPageToken", [None])[0]
        start = int(base64.b64decode(token).decode()) if token else 0
        page = issues[start:start + size]
        expand = query.get("expand", [""])[0] or ""
        out: dict[str, Any] = {"issues": [self.issue_json(i, "changelog" in expand, fields)
                                          for i in page],
                               "isLast": start + size >= len(issues)}
        if not out["isLast"]:
            out["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
        return 200, out, {}

    def changelog(self, key: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(key)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        start = int(query.get("startAt", ["0"])[0])
        size = min(int(query.get("maxResults", ["100"])[0]), 100)
        values = issue.histories[start:start + size]
        return 200, {"startAt": start, "maxResults": size, "total": len(issue.histories),
                     "isLast": start + size >= len(issue.histories), "values": values}, {}

    def comment(self, key: str, comment_id: str | None, version: str,
                body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(key)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        unknown = sorted(set(body) - COMMENT_FIELDS)
        if unknown:
            self.unexpected.append(f"comment body field {', '.join(unknown)}")
            return self._error(400, f"Unrecognized field {unknown[0]!r} in the comment.")
        text = body.get("body")
        if version == "3" and not (isinstance(text, dict) and text.get("type") == "doc"):
            return 400, {"errorMessages": [], "errors": {
                "comment": "Comment body is not valid Atlassian Document Format"}}, {}
        if comment_id is None:
            comment_id = str(len(issue.comments) + 20000)
            code = 201
        elif comment_id not in issue.comments:
            return self._error(404, "Can not find a comment for the id: " + comment_id)
        else:
            code = 200
        issue.comments[comment_id] = text
        if code == 201:
            issue.comment_properties[comment_id] = {}
        props = issue.comment_properties.setdefault(comment_id, {})
        for prop in body.get("properties") or []:  # set on create and update, never removed
            if not isinstance(prop, dict) or not prop.get("key"):
                return self._error(400, "A comment property needs a key.")
            props[str(prop["key"])] = prop.get("value")
        self.record(issue, [])  # a comment bumps `updated` but leaves no change history
        return code, self.comment_json(issue, comment_id, version, False), {}

    def comment_json(self, issue: Issue, comment_id: str, version: str,
                     with_properties: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": comment_id, "self": f"{self.base}/rest/api/{version}/issue/"
                                                       f"{issue.id}/comment/{comment_id}",
                               "body": issue.comments[comment_id]}
        if with_properties:
            out["properties"] = [{"key": k, "value": v} for k, v in
                                 issue.comment_properties.get(comment_id, {}).items()]
        return out

    def comments_page(self, key: str, query: dict[str, list[str]], version: str,
                      ) -> tuple[int, Any, dict[str, str]]:
        """GET /issue/{key}/comment: paged by startAt/maxResults (at most 100 a page)."""
        unknown = sorted(set(query) - {"startAt", "maxResults", "orderBy", "expand"})
        if unknown:
            self.unexpected.append(f"comment list parameter {', '.join(unknown)}")
            return self._error(400, f"Unrecognized parameter {unknown[0]!r}.")
        issue = self._issue(key)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        start = int(query.get("startAt", ["0"])[0] or 0)
        size = min(int(query.get("maxResults", ["100"])[0] or 100), COMMENT_PAGE)
        ids = sorted(issue.comments, key=int)
        expand = {e.strip() for v in query.get("expand", []) for e in v.split(",")}
        page = [self.comment_json(issue, c, version, "properties" in expand)
                for c in ids[start:start + size]]
        return 200, {"startAt": start, "maxResults": size, "total": len(ids),
                     "comments": page}, {}

    def remote_link(self, key: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(key)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        gid = str(body.get("globalId") or f"auto-{len(issue.links)}")
        created = gid not in issue.links
        issue.links[gid] = body
        title = (body.get("object") or {}).get("title", "")
        self.record(issue, [{"field": "RemoteIssueLink", "fieldtype": "jira", "from": None,
                             "fromString": None, "to": str(len(issue.links)),
                             "toString": f'This issue links to "{title} (Web Link)"'}]
                    if created else [])
        return (201 if created else 200), {"id": len(issue.links), "self": f"{self.base}/x"}, {}

    def edit(self, key: str, query: dict[str, list[str]], body: dict[str, Any]
             ) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(key)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        if query.get("notifyUsers", ["true"])[0] == "false" and not self.admin:
            return self._error(403, "To discard the user's notification either admin or "
                                    "project admin permissions are required.")
        tracking = (body.get("fields") or {}).pop("timetracking", None)
        if tracking is not None:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)h", str(tracking.get("originalEstimate", "")))
            if not m:
                return 400, {"errorMessages": [], "errors": {
                    "timetracking": "Original estimate must be like 3h"}}, {}
            body["fields"]["timeoriginalestimate"] = round(float(m.group(1)) * 3600)
        known = {f["id"] for f in self.fields}
        bad = {k: "Field does not exist" for k in body.get("fields", {}) if k not in known}
        if bad:
            return 400, {"errorMessages": [], "errors": bad}, {}
        off_screen = {k: f"Field '{k}' cannot be set. It is not on the appropriate screen, "
                         "or unknown." for k in body.get("fields", {})
                      if k.startswith("customfield_") and k not in self.on_screen}
        if off_screen:
            return 400, {"errorMessages": [], "errors": off_screen}, {}
        done = self.writes.get(issue.key, 0)
        if self.write_limit is not None and done >= self.write_limit:
            return 429, {"errorMessages": ["This issue has exceeded its update limit; try "
                                           "again later."]}, {"Retry-After": "60"}
        self.writes[issue.key] = done + 1
        changed = list(body.get("fields", {}))
        items = [self.change_item(k, issue.fields.get(k), v)
                 for k, v in body.get("fields", {}).items() if issue.fields.get(k) != v]
        issue.fields.update(body.get("fields", {}))
        self.record(issue, items)
        self.fire("jira:issue_updated", issue, changed)
        return 204, None, {}

    def change_item(self, fid: str, old: Any, new: Any) -> dict[str, Any]:
        """One changed field as Jira's change history shows it (custom fields by name)."""
        known = next((f for f in self.fields if f["id"] == fid), {"custom": False})

        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        if known["custom"]:
            return {"field": known["name"], "fieldtype": "custom", "fieldId": fid, "from": None,
                    "fromString": text(old), "to": None, "toString": text(new)}
        return {"field": fid, "fieldtype": "jira", "fieldId": fid, "from": text(old),
                "fromString": text(old), "to": text(new), "toString": text(new)}

    def fire(self, event: str, issue: Issue, changed: list[str]) -> None:
        """POST the event to every registered webhook, signed like Jira's admin webhooks."""
        import hashlib
        import hmac
        import urllib.request

        payload = json.dumps({
            "timestamp": int(dt.datetime.now(dt.UTC).timestamp() * 1000),
            "webhookEvent": event, "issue_event_type_name": "issue_generic",
            "issue": self.issue_json(issue, False),
            "changelog": {"id": str(len(issue.histories) + 1),
                          "items": [{"field": f} for f in changed]},
        }).encode()
        for hook in self.webhooks:
            if event not in hook.get("events", []):
                continue
            headers = {"Content-Type": "application/json"}
            if hook.get("secret"):
                digest = hmac.new(str(hook["secret"]).encode(), payload, hashlib.sha256)
                headers["X-Hub-Signature"] = "sha256=" + digest.hexdigest()
            request = urllib.request.Request(hook["url"], data=payload, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    self.deliveries.append((hook["url"], answer.status))
            except OSError:
                self.deliveries.append((hook["url"], 0))
