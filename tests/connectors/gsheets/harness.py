"""A plan tab in the Sheets emulator, reached through the real gspread client."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators.gsheets.server import Book, Emulator

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


PLAN = [
    ["Q3 delivery plan", "", "", "", "", "", ""],
    ["Key", "Summary", "Type", "Estimate", "Spent", "Due", "Done"],
]


class GSheetsHarness:
    """Twenty tasks on a tab called Plan, below a title row."""

    sdk_modules = ("gspread", "google.auth")

    def __init__(self, tmp_path: Path | None = None) -> None:
        self.emu, self.base = emulator()
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

    def targets(self) -> list[str]:
        return ["T-1", "T-4", "T-20"]

    def count_written(self, target: str) -> int:
        sheet = self.book.sheet("Plan")
        assert sheet is not None
        header = sheet.values[1]
        assert header.count("learnloop P80") == 1, header
        col = header.index("learnloop P80")
        return sum(1 for r in sheet.values[2:] if r and r[0] == target and len(r) > col
                   and r[col] != "")
