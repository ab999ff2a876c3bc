"""A small CSV plan, and how to count what learnloop wrote into its copy (conformance suite)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from connectors.file.writeback import COLUMNS

HEADER = ["Key", "Summary", "Type", "Estimate", "Spent", "Due", "Done", "Status"]


class FileHarness:
    """Twenty tasks in a CSV under tmp_path: three in four done (estimate, actual, due and done
    dates), the rest open."""

    sdk_modules = ("openpyxl",)

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "plan.csv"
        self.output = tmp_path / "plan.learnloop.csv"
        with self.path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            for i in range(1, 21):
                done = i % 4 != 0
                writer.writerow([
                    f"T-{i}", f"Task {i}", "Bug" if i % 3 == 0 else "Story", i % 5 + 1,
                    i % 7 + 1 if done else "", f"2025-01-{i:02d}",
                    f"2025-02-{i:02d}" if done else "", "Done" if done else "Open",
                ])

    def config(self) -> dict[str, Any]:
        """Raw config values for the connection."""
        return {"path": str(self.path)}

    def mapping(self) -> dict[str, Any]:
        """The column mapping of the plan."""
        return {"id": "Key", "title": "Summary", "planned_estimate": "Estimate",
                "actual_effort": "Spent", "planned_due": "Due", "actual_end": "Done",
                "status": "Status", "segments": ["Type"]}

    def targets(self) -> list[str]:
        """Ids present in the plan: done and open ones."""
        return ["T-1", "T-4", "T-20"]

    def count_written(self, target: str) -> int:
        """Rows of `target` in the copy holding a learnloop value (0 or 1); asserts that the
        copy's header has each learnloop column exactly once."""
        if not self.output.exists():
            return 0
        with self.output.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        header = rows[0]
        for title in COLUMNS.values():
            assert header.count(title) == 1, header
        ours = [header.index(title) for title in COLUMNS.values()]
        return sum(1 for r in rows[1:] if r[0] == target and any(r[i] for i in ours))
