"""Find the header row of a table and give every column a usable, unique name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.tabular.cells import Cell, cell_text, is_missing

SCAN_ROWS = 30
"""How many rows from the top are searched for the header (title rows above it are fine)."""


def normalise(name: str) -> str:
    """How column names are compared: trimmed, case-folded, inner whitespace collapsed."""
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class Header:
    """The header row: its 1-based row number, unique column names and the names as written.

    A blank header is named `Column 7` (its 1-based position); a repeated one `Due (2)`.
    """

    row_number: int
    names: list[str]
    original: list[str]
    positions: dict[str, list[int]] = field(default_factory=dict, compare=False)

    @classmethod
    def from_row(cls, row: Sequence[Cell], row_number: int) -> Header:
        """Name the columns of `row`, the header found at 1-based `row_number`."""
        original = [" ".join(cell_text(c).split()) for c in row]
        names: list[str] = []
        taken: set[str] = set()
        positions: dict[str, list[int]] = {}
        for i, written in enumerate(original):
            base = written or f"Column {i + 1}"
            name, n = base, 1
            while normalise(name) in taken:
                n += 1
                name = f"{base} ({n})"
            taken.add(normalise(name))
            names.append(name)
            positions.setdefault(normalise(base), []).append(i)
            if name != base:
                positions.setdefault(normalise(name), []).append(i)
        return cls(row_number, names, original, positions)

    def index(self) -> dict[str, int]:
        """Normalised unique name -> 0-based column position."""
        return {normalise(n): i for i, n in enumerate(self.names)}

    def find(self, column: str) -> list[int]:
        """Every position whose header is `column` (trimmed, case-insensitive)."""
        return self.positions.get(normalise(column), [])


def _is_text(cell: Cell) -> bool:
    return isinstance(cell, str) and any(ch.isalpha() for ch in cell)


def _mostly_text(row: Sequence[Cell]) -> bool:
    filled = [c for c in row if not is_missing(c)]
    return bool(filled) and 2 * sum(_is_text(c) for c in filled) >= len(filled)


def find_header(rows: Sequence[Sequence[Cell]], id_column: str | None,
                header_row: int | None = None, scan: int = SCAN_ROWS) -> Header | None:
    """The header row of a table.

    With `header_row`, that row. Else the first of the first `scan` rows that holds the id
    column's name and whose filled cells are mostly text (so a data row that happens to hold
    the word is passed over); failing that, the first row holding the name at all. Without an
    id column, the first mostly-text row at least half as wide as the widest row scanned.

    Args:
        rows: the table, top to bottom.
        id_column: the name of the mapped id column, or None when there is no mapping yet.
        header_row: the 1-based header row, when configured.
        scan: how many rows to search.

    Returns:
        The header, or None when no row qualifies.
    """
    if header_row is not None:
        if not 1 <= header_row <= len(rows):
            return None
        return Header.from_row(rows[header_row - 1], header_row)
    top = rows[:scan]
    if id_column is None:
        widest = max((sum(not is_missing(c) for c in r) for r in top), default=0)
        for i, row in enumerate(top):
            filled = sum(not is_missing(c) for c in row)
            if filled and 2 * filled >= widest and _mostly_text(row):
                return Header.from_row(row, i + 1)
        return None
    wanted = normalise(id_column)
    holding = [i for i, row in enumerate(top)
               if any(isinstance(c, str) and normalise(c) == wanted for c in row)]
    if not holding:
        return None
    best = next((i for i in holding if _mostly_text(top[i])), holding[0])
    return Header.from_row(top[best], best + 1)
