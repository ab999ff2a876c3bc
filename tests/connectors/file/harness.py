"""A small CSV plan and how to read back what learnloop wrote into its copy (conformance)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from connectors.file.writeback import COLUMNS

CSV = """Key,Summary,Type,Estimate,Spent,Due,Done,Status
{rows}"""


class FileHarness:
    """Twenty tasks in a CSV under tmp_path."""

    sdk_modules = ("openpyxl",)

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "plan.csv"
        rows = []
        for i in range(1, 21):
            done = i % 4 != 0
            rows.append(f"T-{i},Task {i},{'Bug' if i % 3 == 0 else 'Story'},{i % 5 + 1},"
                        f"{i % 7 + 1 if done else ''},2025-01-{i:02d},"
                        f"{f'2025-02-{i:02d}' if done else ''},{'Done' if done else 'Open'}")
        self.path.write_text(CSV.format(rows="\n".join(rows)) + "\n", encoding="utf-8")

    def config(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    def mapping(self) -> dict[str, Any]:
        return {"id": "Key", "title": "Summary", "planned_estimate": "Estimate",
                "actual_effort": "Spent", "planned_due": "Due", "actual_end": "Done",
                "status": "Status", "segments": ["Type"]}

    def targets(self) -> list[str]:
        return ["T-1", "T-4", "T-20"]

    def count_written(self, target: str) -> int:
        out = self.path.with_name("plan.learnloop.csv")
        if not out.exists():
            return 0
        with out.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        header = rows[0]
        for title in COLUMNS.values():
            assert header.count(title) == 1, header
        pos = header.index("learnloop P80")
        return sum(1 for r in rows[1:] if r[0] == target and r[pos] != "")
