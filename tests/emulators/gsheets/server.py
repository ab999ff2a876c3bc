"""A local Google Sheets v4 + Drive v3 + OAuth token server that gspread talks to over HTTP.

Strict: an unknown route is a 404 with Google's error body and is recorded in `unexpected`.
Faults on demand: `quota_left` (per-minute quota; 429 RESOURCE_EXHAUSTED when used up).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

A1 = re.compile(r"^([A-Z]*)(\d*)$")


def col_index(letters: str) -> int:
    """A -> 0, Z -> 25, AA -> 26."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


@dataclass
class Sheet:
    """One tab: a grid of values, notes and conditional-format rules."""

    sheet_id: int
    title: str
    values: list[list[Any]] = field(default_factory=list)
    notes: dict[tuple[int, int], str] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)

    def put(self, row: int, col: int, value: Any) -> None:
        while len(self.values) <= row:
            self.values.append([])
        line = self.values[row]
        while len(line) <= col:
            line.append("")
        line[col] = "" if value is None else value

    def trimmed(self) -> list[list[Any]]:
        rows = [list(r) for r in self.values]
        for r in rows:
            while r and r[-1] == "":
                r.pop()
        while rows and not rows[-1]:
            rows.pop()
        return rows


@dataclass
class Book:
    """One spreadsheet."""

    sheet_id_seq: int = 0
    title: str = "Plan"
    time_zone: str = "Europe/London"
    sheets: list[Sheet] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def sheet(self, title: str) -> Sheet | None:
        return next((s for s in self.sheets if s.title == title), None)

    def add(self, title: str, values: list[list[Any]] | None = None) -> Sheet:
        self.sheet_id_seq += 1
        sheet = Sheet(self.sheet_id_seq * 1000 + 7, title, [list(r) for r in values or []])
        self.sheets.append(sheet)
        return sheet

    def touch(self) -> None:
        self.modified = max(dt.datetime.now(dt.UTC), self.modified + dt.timedelta(milliseconds=1))


class Emulator:
    """State and server; `start()` returns the base URL."""

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[str] = []
        self.quota_left: int | None = None
        self.spec_errors: list[str] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                    return parse_qs(raw.decode())
                return json.loads(raw) if raw else {}

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), parse_qs(parts.query)
                with emulator.lock:
                    emulator.requests.append((method, self.path))
                    request = self._body()
                    code, body = emulator.route(method, path, query, request,
                                                self.headers.get("Authorization"))
                    if code == 200 and path != "/token" and not path.endswith("/allowedLocations"):
                        from tests.emulators.gsheets.spec import validate

                        emulator.spec_errors += validate(
                            method, path, request if isinstance(request, dict) else None, body)
                self._send(code, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # ---- routing --------------------------------------------------------------------------
    @staticmethod
    def error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
        return code, {"error": {"code": code, "message": message, "status": status}}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any,
              auth: str | None) -> tuple[int, Any]:
        if method == "POST" and path == "/token":
            return 200, {"access_token": "emu-token", "expires_in": 3599, "token_type": "Bearer"}
        if method == "GET" and path.endswith("/allowedLocations"):  # google-auth's boundary lookup
            return 200, {"encodedLocations": "0x0", "locations": []}
        if auth != "Bearer emu-token":
            return self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if self.quota_left is not None:
            if self.quota_left <= 0:
                return self.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric "
                                  "'Read requests' and limit 'Read requests per minute per user'")
            self.quota_left -= 1
        m = re.match(r"^/drive/v3/files/([^/]+)$", path)
        if m and method == "GET":
            book = self.books.get(m.group(1))
            if book is None:
                return self.error(404, "NOT_FOUND", f"File not found: {m.group(1)}.")
            return 200, {"id": m.group(1), "name": book.title,
                         "modifiedTime": book.modified.isoformat().replace("+00:00", "Z"),
                         "createdTime": "2025-01-01T00:00:00Z"}
        m = re.match(r"^/v4/spreadsheets/([^/:]+)(.*)$", path)
        if not m:
            return self._unknown(method, path)
        book = self.books.get(m.group(1))
        if book is None:
            return self.error(404, "NOT_FOUND", "Requested entity was not found.")
        rest = m.group(2)
        if rest == "" and method == "GET":
            return 200, self.metadata(m.group(1), book)
        if rest == ":batchUpdate" and method == "POST":
            return self.batch_update(m.group(1), book, body)
        if rest == "/developerMetadata:search" and method == "POST":
            return 200, self.search(book, body)
        if rest == "/values:batchUpdate" and method == "POST":
            return self.values_batch_update(m.group(1), book, body)
        if rest == "/values:batchGet" and method == "GET":
            code, body = self.values_batch_get(book, query.get("ranges", []))
            if code == 200:
                body["spreadsheetId"] = m.group(1)
            return code, body
        vm = re.match(r"^/values/(.+?)(:append)?$", rest)
        if vm and method == "POST" and vm.group(2):
            if query.get("valueInputOption", [""])[0] != "RAW":
                return self.error(400, "INVALID_ARGUMENT", "learnloop writes RAW only")
            return self.values_append(m.group(1), book, vm.group(1), body["values"])
        if vm and method == "GET":
            return self.values_get(book, vm.group(1))
        if vm and method == "PUT" and not vm.group(2):
            if query.get("valueInputOption", [""])[0] != "RAW":
                return self.error(400, "INVALID_ARGUMENT", "learnloop writes RAW only")
            return self.values_update(m.group(1), book, vm.group(1), body["values"])
        return self._unknown(method, path)

    def _unknown(self, method: str, path: str) -> tuple[int, Any]:
        self.unexpected.append(f"{method} {path}")
        return self.error(404, "NOT_FOUND", f"unknown route {method} {path}")

    # ---- ranges ---------------------------------------------------------------------------
    def parse_range(self, book: Book, text: str) -> tuple[Sheet, int, int, int | None, int | None]:
        """(sheet, row0, col0, row1, col1) with exclusive ends (None = to the end)."""
        title, _, cells = text.partition("!")
        title = title.strip("'").replace("''", "'")
        sheet = book.sheet(title)
        if sheet is None:
            raise KeyError(f"Unable to parse range: {text}")
        if not cells:
            return sheet, 0, 0, None, None
        start, _, end = cells.partition(":")
        a, b = A1.match(start), A1.match(end or start)
        if not a or not b:
            raise KeyError(f"Unable to parse range: {text}")
        r0 = int(a.group(2)) - 1 if a.group(2) else 0
        c0 = col_index(a.group(1)) if a.group(1) else 0
        r1 = int(b.group(2)) if b.group(2) else None
        c1 = col_index(b.group(1)) + 1 if b.group(1) else None
        return sheet, r0, c0, r1, c1

    def values_get(self, book: Book, text: str) -> tuple[int, Any]:
        try:
            sheet, r0, c0, r1, c1 = self.parse_range(book, text)
        except KeyError as exc:
            return self.error(400, "INVALID_ARGUMENT", str(exc))
        rows = [r[c0:c1] for r in sheet.trimmed()[r0:r1]]
        body: dict[str, Any] = {"range": f"'{sheet.title}'!A1", "majorDimension": "ROWS"}
        while rows and not rows[-1]:
            rows.pop()
        if rows:
            body["values"] = rows
        return 200, body

    def values_update(self, book_id: str, book: Book, text: str,
                      values: list[list[Any]]) -> tuple[int, Any]:
        try:
            sheet, r0, c0, _, _ = self.parse_range(book, text)
        except KeyError as exc:
            return self.error(400, "INVALID_ARGUMENT", str(exc))
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if isinstance(v, str) and v.startswith("="):
                    pass  # RAW: stored as text, never evaluated
                sheet.put(r0 + i, c0 + j, v)
        book.touch()
        cells = sum(len(r) for r in values)
        return 200, {"spreadsheetId": book_id, "updatedRange": text, "updatedRows": len(values),
                     "updatedCells": cells}

    def values_batch_update(self, book_id: str, book: Book, body: Any) -> tuple[int, Any]:
        if body.get("valueInputOption") != "RAW":
            return self.error(400, "INVALID_ARGUMENT", "learnloop writes RAW only")
        responses = []
        for item in body.get("data", []):
            code, res = self.values_update(book_id, book, item["range"], item["values"])
            if code != 200:
                return code, res
            responses.append(res)
        return 200, {"spreadsheetId": book_id, "responses": responses,
                     "totalUpdatedCells": sum(r["updatedCells"] for r in responses)}

    # ---- spreadsheet ----------------------------------------------------------------------
    def metadata(self, book_id: str, book: Book) -> dict[str, Any]:
        return {
            "spreadsheetId": book_id,
            "properties": {"title": book.title, "locale": "en_GB", "timeZone": book.time_zone},
            "sheets": [{"properties": {
                "sheetId": s.sheet_id, "title": s.title, "index": i, "sheetType": "GRID",
                "gridProperties": {"rowCount": max(1000, len(s.values)),
                                   "columnCount": max(26, *(len(r) for r in s.values or [[]]))}}}
                for i, s in enumerate(book.sheets)],
        }

    def batch_update(self, book_id: str, book: Book, body: Any) -> tuple[int, Any]:
        replies: list[dict[str, Any]] = []
        for req in body.get("requests", []):
            (kind, args), = req.items()
            if kind == "addSheet":
                title = args["properties"]["title"]
                if book.sheet(title):
                    return self.error(400, "INVALID_ARGUMENT",
                                      f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists.')
                sheet = book.add(title)
                replies.append({"addSheet": {"properties": {"sheetId": sheet.sheet_id,
                                                            "title": title}}})
            elif kind == "duplicateSheet":
                src = next((s for s in book.sheets if s.sheet_id == args["sourceSheetId"]), None)
                title = args.get("newSheetName") or f"Copy of {src.title if src else ''}"
                if src is None or book.sheet(title):
                    return self.error(400, "INVALID_ARGUMENT", "Invalid duplicateSheet request")
                copy = book.add(title, src.values)
                copy.notes = dict(src.notes)
                replies.append({"duplicateSheet": {"properties": {
                    "sheetId": copy.sheet_id, "title": title, "index": len(book.sheets) - 1,
                    "sheetType": "GRID", "gridProperties": {"rowCount": 1000,
                                                            "columnCount": 26}}}})
            elif kind in ("insertDimension", "deleteDimension"):
                rng = args["range"]
                sheet = next((s for s in book.sheets if s.sheet_id == rng["sheetId"]), None)
                if sheet is None or rng["dimension"] != "ROWS":
                    return self.error(400, "INVALID_ARGUMENT", f"unsupported {kind}")
                self._shift_rows(book, sheet, rng["startIndex"], rng["endIndex"],
                                 insert=kind == "insertDimension")
                replies.append({})
            elif kind == "createDeveloperMetadata":
                meta = dict(args["developerMetadata"])
                meta["metadataId"] = len(book.metadata) + 1
                book.metadata.append(meta)
                replies.append({"createDeveloperMetadata": {"developerMetadata": meta}})
            elif kind == "updateCells":
                sheet = next(s for s in book.sheets if s.sheet_id == args["start"]["sheetId"])
                r0, c0 = args["start"].get("rowIndex", 0), args["start"].get("columnIndex", 0)
                for i, row in enumerate(args.get("rows", [])):
                    for j, cell in enumerate(row.get("values", [])):
                        if "note" in cell:
                            sheet.notes[(r0 + i, c0 + j)] = cell["note"]
                replies.append({})
            elif kind == "addConditionalFormatRule":
                rule = args["rule"]
                sheet_ids = {r["sheetId"] for r in rule["ranges"]}
                for s in book.sheets:
                    if s.sheet_id in sheet_ids:
                        s.rules.append(rule)
                replies.append({})
            else:
                return self.error(400, "INVALID_ARGUMENT", f"unsupported request {kind}")
        book.touch()
        return 200, {"spreadsheetId": book_id, "replies": replies}

    @staticmethod
    def _shift_rows(book: Book, sheet: Sheet, start: int, end: int, insert: bool) -> None:
        """Insert or delete rows the way Sheets does: values, notes and row metadata move."""
        n = end - start
        if insert:
            sheet.values[start:start] = [[] for _ in range(n)]
        else:
            del sheet.values[start:end]
        moved = {}
        for (r, c), note in sheet.notes.items():
            if r < start:
                moved[(r, c)] = note
            elif insert:
                moved[(r + n, c)] = note
            elif r >= end:
                moved[(r - n, c)] = note
        sheet.notes = moved
        keep = []
        for meta in book.metadata:
            where = meta.get("location", {}).get("dimensionRange", {})
            if where.get("sheetId") != sheet.sheet_id or where.get("dimension") != "ROWS":
                keep.append(meta)
                continue
            i = where["startIndex"]
            if i >= start:
                if not insert and i < end:
                    continue  # the row is gone, and its metadata with it
                where["startIndex"] = i + n if insert else i - n
                where["endIndex"] = where["startIndex"] + 1
            keep.append(meta)
        book.metadata = keep

    def values_append(self, book_id: str, book: Book, text: str,
                      values: list[list[Any]]) -> tuple[int, Any]:
        """Write after the table at `text`: from its row, at the first empty row."""
        try:
            sheet, r0, c0, _, _ = self.parse_range(book, text)
        except KeyError as exc:
            return self.error(400, "INVALID_ARGUMENT", str(exc))
        r = r0
        while r < len(sheet.values) and any(v != "" for v in sheet.values[r]):
            r += 1
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                sheet.put(r + i, c0 + j, v)
        book.touch()
        return 200, {"spreadsheetId": book_id, "tableRange": text,
                     "updates": {"spreadsheetId": book_id, "updatedRows": len(values),
                                 "updatedCells": sum(len(x) for x in values)}}

    def values_batch_get(self, book: Book, ranges: list[str]) -> tuple[int, Any]:
        out = []
        for text in ranges:
            code, body = self.values_get(book, text)
            if code != 200:
                return code, body
            out.append(body)
        return 200, {"valueRanges": out}

    def search(self, book: Book, body: Any) -> dict[str, Any]:
        found = []
        for flt in body.get("dataFilters", []):
            lookup = flt.get("developerMetadataLookup", {})
            for meta in book.metadata:
                if all(meta.get(k) == v for k, v in lookup.items()
                       if k in ("metadataKey", "metadataValue")):
                    found.append({"developerMetadata": meta})
        return {"matchedDeveloperMetadata": found} if found else {}
