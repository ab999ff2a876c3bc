"""A small CSV plan, and what learnloop wrote into its copy (the kit's harness protocol)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from connectors.file.writeback import COLUMNS
from core.contract import FIELDS, TEMPLATE

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

    def targets(self, surface: str = FIELDS) -> list[str]:
        """Ids present in the plan: done and open ones; for templates, two template names."""
        if surface == TEMPLATE:
            return ["bugfix", "release"]
        return ["T-1", "T-4", "T-20"]

    def _templates(self) -> list[list[str]]:
        path = self.output.with_name(f"{self.output.stem}-templates.csv")
        if not path.exists():
            return []
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.reader(fh))[1:]

    def _copy(self) -> tuple[list[str], list[list[str]]]:
        if not self.output.exists():
            return [], []
        with self.output.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        return rows[0], rows[1:]

    def count(self, target: str, surface: str) -> int:
        """Cells of `target` under every column of the copy headed like learnloop's P80
        column: a second column or a second row of the item counts twice."""
        if surface == TEMPLATE:  # one version's block of rows per template
            return len({tuple(r[:2]) for r in self._templates() if r and r[0] == target})
        header, rows = self._copy()
        title = COLUMNS["forecast_p80"]
        cols = [i for i, name in enumerate(header) if name.startswith(title)]
        return sum(1 for r in rows if r and r[0] == target for i in cols
                   if i < len(r) and r[i] != "")

    def read_back(self, target: str, surface: str) -> str:
        """The insight cells of `target`'s rows in the copy (a template's reasons)."""
        if surface == TEMPLATE:
            return " | ".join(r[-1] for r in self._templates() if r and r[0] == target)
        header, rows = self._copy()
        cols = [i for i, name in enumerate(header) if name.startswith(COLUMNS["insight"])]
        return " | ".join(r[i] for r in rows if r and r[0] == target for i in cols
                          if i < len(r))

    def unexpected(self) -> list[str]:
        """A file has no emulator to refuse anything."""
        return []
