"""What a reader could not read faithfully: rows to quarantine and cells that read as blank."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Flaw:
    """Why a row cannot be read; `column` is the 0-based position of the cell at fault."""

    reason: str
    column: int | None = None


@dataclass
class Flaws:
    """Flaws found while reading a table, keyed by 1-based row number as a spreadsheet shows.

    `rows` quarantine their row whatever is mapped (an unterminated quote, an oversized cell);
    `blank_cells` are cells that read as blank but are not (a formula with no saved value):
    their row is quarantined only when their column is mapped.
    """

    rows: dict[int, Flaw] = field(default_factory=dict)
    blank_cells: dict[int, dict[int, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.blank_cells)
