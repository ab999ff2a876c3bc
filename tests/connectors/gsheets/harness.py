"""A plan tab in the Sheets emulator, reached through the real gspread client."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.contract import FIELDS, INSIGHTS, TEMPLATE
from core.testing import TEMPLATE_TASKS
from tests.emulators.gsheets.server import Book, Emulator, Sheet

_ids = itertools.count(1)


@functools.cache
def emulator() -> tuple[Emulator, str]:
    """One emulator for the test session (each harness gets its own spreadsheet)."""
    emu = Emulator()
    return emu, emu.start()


@functools.cache
def private_key() -> str:
    """A throwaway RSA key, generated at test time (never a real-looking secret in the repo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def key_json(base: str) -> str:
    return json.dumps({
        "type": "service_account", "project_id": "emu", "private_key_id": "k1",
        "private_key": private_key(), "client_email": "learnloop@emu.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{base}/token",
    })


TEMPLATE_TAB = "Sprint template"
PLAN = [
    ["Q3 delivery plan", "", "", "", "", "", ""],
    ["Key", "Summary", "Type", "Estimate", "Spent", "Due", "Done"],
]


class GSheetsHarness:
    """Twenty tasks on a tab called Plan, below a title row."""

    sdk_modules = ("gspread", "google.auth")

    def __init__(self, tmp_path: Path | None = None) -> None:
        self.emu, self.base = emulator()
        self._seen = (len(self.emu.unexpected), len(self.emu.spec_errors))
        self.book_id = f"book{next(_ids)}"
        rows = [list(r) for r in PLAN]
        for i in range(1, 21):
            done = i % 4 != 0
            rows.append([f"T-{i}", f"Task {i}", "Bug" if i % 3 == 0 else "Story", i % 5 + 1,
                         (i % 7 + 1) if done else "", 45658 + i,  # serial dates (2025-01-01 + i)
                         (45689 + i) if done else ""])
        self.book = Book()
        self.book.add("Plan", rows)
        self.emu.books[self.book_id] = self.book

    def config(self) -> dict[str, Any]:
        return {"spreadsheet_id": self.book_id, "worksheet": "Plan",
                "service_account_key": key_json(self.base), "endpoint": self.base}

    def mapping(self) -> dict[str, Any]:
        return {"id": "Key", "title": "Summary", "planned_estimate": "Estimate",
                "actual_effort": "Spent", "planned_due": "Due", "actual_end": "Done",
                "segments": ["Type"]}

    def targets(self, surface: str = FIELDS) -> list[str]:
        """Rows of the plan for item surfaces; the insights tab; a template tab (seeded)."""
        if surface == INSIGHTS:
            return ["learnloop insights"]
        if surface == TEMPLATE:
            if self.book.sheet(TEMPLATE_TAB) is None:
                self.book.add(TEMPLATE_TAB, [["Task", "Estimate"],
                                             *([n, e] for n, e in TEMPLATE_TASKS)])
            return [TEMPLATE_TAB]
        return ["T-1", "T-4", "T-20"]

    def _plan_cells(self, target: str, title: str) -> list[tuple[int, int]]:
        sheet = self.book.sheet("Plan")
        assert sheet is not None
        header = sheet.values[1]
        cols = [i for i, name in enumerate(header) if str(name).startswith(title)]
        return [(r, c) for r, row in enumerate(sheet.values) if r > 1 and row
                and row[0] == target for c in cols if c < len(row) and row[c] != ""]

    def _versions(self, target: str) -> list[Sheet]:
        return [s for s in self.book.sheets if (s.title != target
                and any(v == "learnloop plan P80" for v in (s.values or [[]])[0]))
                or s.title.startswith(f"{target} v")]

    def _insights(self) -> list[tuple[Sheet, int]]:
        return [(s, r) for s in self.book.sheets for r, row in enumerate(s.values)
                if row and str(row[0]).startswith("learnloop findings as of")]

    def count(self, target: str, surface: str) -> int:
        """From the emulated spreadsheet: P80 cells of the row (fields); blocks headed
        "learnloop findings as of" in any tab (insights); sets of plan columns, or notes,
        on the template's version tabs, whichever is more (template)."""
        if surface == INSIGHTS:
            return len(self._insights())
        if surface == TEMPLATE:
            tabs = self._versions(target)
            sets = sum(list((s.values or [[]])[0]).count("learnloop plan P80") for s in tabs)
            return max(sets, sum(len(s.notes) for s in tabs))
        return len(self._plan_cells(target, "learnloop P80"))

    def read_back(self, target: str, surface: str) -> str:
        """Every value and note learnloop's object holds."""
        if surface == INSIGHTS:
            return " | ".join(str(v) for s, _ in self._insights() for row in s.values
                              for v in row)
        if surface == TEMPLATE:
            return " | ".join([*(n for s in self._versions(target) for n in s.notes.values()),
                               *(str(v) for s in self._versions(target) for row in s.values
                                 for v in row)])
        sheet = self.book.sheet("Plan")
        assert sheet is not None
        cells = self._plan_cells(target, "learnloop insight")
        rows = {r for r, _ in self._plan_cells(target, "learnloop P80")}
        return " | ".join([*(str(sheet.values[r][c]) for r, c in cells),
                           *(n for (r, _), n in sheet.notes.items() if r in rows)])

    def unexpected(self) -> list[str]:
        """Unknown routes and answers off Google's discovery documents (the emulator is shared
        by the session's harnesses: only what came after this harness was built)."""
        return [*self.emu.unexpected[self._seen[0]:], *self.emu.spec_errors[self._seen[1]:]]
