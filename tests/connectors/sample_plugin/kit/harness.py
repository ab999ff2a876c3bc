"""A board file in the test's directory, and what learnloop wrote onto its cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.contract import COMMENT, FIELDS


class BoardHarness:
    """Six cards: four done, two open."""

    sdk_modules: tuple[str, ...] = ()

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "board.json"
        cards = [{"id": f"C-{i}", "title": f"Card {i}", "estimate": float(i), "due": "2025-03-10",
                  "status": "done" if i <= 4 else "doing", "spent": float(i + 1) if i <= 4
                  else None, "done": "2025-03-12" if i <= 4 else None} for i in range(1, 7)]
        self.path.write_text(json.dumps({"cards": cards}), encoding="utf-8")

    def config(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    def mapping(self) -> dict[str, Any]:
        return {"id": "id", "title": "title"}

    def targets(self, surface: str = FIELDS) -> list[str]:
        return ["C-1", "C-5"]

    def _card(self, target: str) -> dict[str, Any]:
        board = json.loads(self.path.read_text(encoding="utf-8"))
        card: dict[str, Any] = next(c for c in board["cards"] if c["id"] == target)
        return card

    def count(self, target: str, surface: str) -> int:
        card = self._card(target)
        if surface == FIELDS:
            return int("learnloop P80" in card.get("custom_fields", {}))
        entries = card.get("comments" if surface == COMMENT else "notes", [])
        return sum(1 for e in entries if e.get("by") == "learnloop")

    def read_back(self, target: str, surface: str) -> str:
        card = self._card(target)
        if surface == FIELDS:
            return str(card.get("custom_fields", {}).get("learnloop insight", ""))
        entries = card.get("comments" if surface == COMMENT else "notes", [])
        return " | ".join(str(e.get("text")) for e in entries)

    def unexpected(self) -> list[str]:
        return []
