"""Configuration of a Google Sheets connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class GSheetsConfig(BaseModel):
    """Which sheet and tab, and the service account that reads and writes it."""

    model_config = ConfigDict(extra="forbid")

    spreadsheet_id: str = Field(description="The id in the sheet's URL: /spreadsheets/d/<id>/edit.")
    worksheet: str = Field(description="Title of the tab with the plan (Planned and Actual columns).")
    service_account_key: SecretStr = Field(
        description="The service account's JSON key file, as text. Share the sheet with the "
        "account's client_email as Editor.")
    header_row: int | None = Field(default=None, ge=1, description="1-based header row "
                                   "(default: the first row holding the id column).")
    dayfirst: bool | None = Field(default=None, description="Text dates are day-first "
                                  "(default: inferred per column).")
    timezone: str | None = Field(default=None, description="Time zone of dates without one "
                                 "(default: the spreadsheet's own time zone).")
    unit: str = Field(default="hours", description="Unit of estimates and effort.")
    endpoint: str | None = Field(default=None, description="Base URL that replaces Google's "
                                 "(an emulator or a proxy); default: Google.")
    lessons_worksheet: str | None = Field(
        default=None, description="Title of a tab of lessons (columns words, segment, "
        "predicts, behaviour; optional date and id), each tested on later work; default: none.")
