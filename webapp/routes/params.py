"""Path and query parameters bounded to the columns they look up (never a 500 for a huge id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ID = 2**31 - 1
"""The largest id a store holds: PostgreSQL's integer columns are 32-bit."""

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (1 to 2^31-1).")]
"""A path parameter naming one stored row; out of range answers 422."""

BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Rows with a smaller id.")]
"""A query parameter paging back through rows by id."""
