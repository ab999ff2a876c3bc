"""Find the header row of a table and give every column a usable, unique name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.tabular.values import Cell, is_missing


@dataclass(frozen=True)
class Header:
    """The header row: its 1-based row number and the column names (unique, non-blank)."""

    row_number: int
    names: list[str]
    original: list[str]

    def index(self) -> dict[str, int]:
        """Normalised name -> column position."""
        return {normalise(n): i for i, n in enumerate(self.names)}


def normalise(name: str) -> str:
    """How column names are compared: trimmed, case-folded, inner spaces collapsed."""
    return " ".join(str(name).split()).casefold()


def _names(row: Sequence[Cell]) -> tuple[list[str], list[str]]:
    original = ["" if is_missing(c) else " ".join(str(c).split()) for c in row]
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(original):
        base = name or f"Column {i + 1}"
        key = normalise(base)
        seen[key] = seen.get(key, 0) + 1
        names.append(base if seen[key] == 1 else f"{base} ({seen[key]})")
    return names, original


def find_header(rows: Sequence[Sequence[Cell]], id_column: str,
                header_row: int | None = None, scan: int = 20) -> Header | None:
    """The header: the configured row, else the first of the first `scan` rows that holds
    the id column's name; None when there is none."""
    if header_row is not None:
        if header_row < 1 or header_row > len(rows):
            return None
        names, original = _names(rows[header_row - 1])
        return Header(header_row, names, original)
    wanted = normalise(id_column)
    for i, row in enumerate(rows[:scan]):
        names, original = _names(row)
        if wanted in {normalise(o) for o in original if o}:
            return Header(i + 1, names, original)
    return None
