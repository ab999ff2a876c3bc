"""The board connector's settings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BoardConfig(BaseModel):
    """Where the board lives."""

    path: str = Field(description="Path of the board's JSON file.")
