"""The board's storage: one JSON file, read whole and replaced atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.errors import InputError
from learnloop_sample.config import BoardConfig


def read(config: BoardConfig) -> dict[str, Any]:
    """The board.

    Raises:
        InputError: when the file is missing or not a board.
    """
    try:
        board: dict[str, Any] = json.loads(Path(config.path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"board {config.path}: {exc}") from None
    if not isinstance(board.get("cards"), list):
        raise InputError(f"board {config.path}: no 'cards' list")
    return board


def write(config: BoardConfig, board: dict[str, Any]) -> None:
    """Replace the board file in one step."""
    out = Path(config.path)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".board-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(board, fh, indent=1)
    os.replace(tmp, out)
