"""Configuration of a file connection (CSV or XLSX)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FileConfig(BaseModel):
    """Where the table is and how to read it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path of the CSV or XLSX file with the plan and the actuals.")
    sheet: str | None = Field(default=None, description="XLSX sheet name (default: the first).")
    encoding: str = Field(default="auto", description="Text encoding of a CSV; 'auto' tries "
                          "UTF-8 then Windows-1252.")
    delimiter: str | None = Field(default=None, description="CSV delimiter (default: sniffed "
                                  "among , ; tab |).")
    header_row: int | None = Field(default=None, ge=1, description="1-based header row "
                                   "(default: the first row holding the id column).")
    dayfirst: bool | None = Field(default=None, description="Numeric dates are day-first "
                                  "(31/01/2025); default: inferred per column.")
    timezone: str = Field(default="UTC", description="Time zone of dates without one.")
    unit: str = Field(default="hours", description="Unit of estimates and effort.")
    done_statuses: list[str] | None = Field(default=None, description="Status values that mean "
                                            "done (default: done, closed, finished, ...).")
    cancelled_statuses: list[str] | None = Field(default=None, description="Status values that "
                                                 "mean cancelled.")
    output_path: str | None = Field(default=None, description="Where the copy with learnloop's "
                                    "columns is written (default: <name>.learnloop.<ext>).")
