"""Configuration of a file connection (a CSV or XLSX table); it needs no secrets."""

from __future__ import annotations

import codecs
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.file.access import confined
from connectors.file.client import is_xlsx
from core.errors import ConfigError
from core.tabular.dates import zone


class FileConfig(BaseModel):
    """Where the table is, how to read it, and where learnloop writes its copy."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path of the CSV or XLSX file with the plan and the actuals.")
    sheet: str | None = Field(default=None, description="XLSX sheet name (default: the first "
                              "sheet).")
    encoding: str = Field(default="auto", description="Text encoding of a CSV; 'auto' tries "
                          "UTF-8 (with or without BOM), then Windows-1252.")
    delimiter: str | None = Field(default=None, description="CSV delimiter (default: sniffed "
                                  "among , ; tab |); write 'tab' for a tab.")
    header_row: int | None = Field(default=None, ge=1, description="1-based row number of the "
                                   "header (default: the first mostly-text row holding the id "
                                   "column, in the first 30 rows).")
    dayfirst: bool | None = Field(default=None, description="Numeric dates are day-first "
                                  "(31/01/2025); default: inferred per column, month-first "
                                  "when nothing shows it.")
    timezone: str = Field(default="UTC", description="IANA time zone of dates written without "
                          "one.")
    unit: str = Field(default="hours", description="Unit of estimates and effort; values with a "
                      "time suffix (3h, 2d, 1w) are converted into it.")
    hours_per_day: float = Field(default=8.0, gt=0, le=24, description="Hours in a day of "
                                 "effort, for converting 2d into hours and back.")
    done_statuses: list[str] | None = Field(default=None, description="Status values that mean "
                                            "done, a list or comma-separated (default: done, closed, finished, completed, "
                                            "resolved, released, ...).")
    cancelled_statuses: list[str] | None = Field(default=None, description="Status values that "
                                                 "mean cancelled (default: cancelled, canceled, "
                                                 "won't do, rejected, ...).")
    output_path: str | None = Field(default=None, description="Where the copy with learnloop's "
                                    "columns is written (default: <name>.learnloop.<ext> "
                                    "beside the input).")

    @field_validator("path", "output_path")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Stored absolute: the worker that syncs may run from another directory than the CLI.
        if value is None:
            return None
        path = Path(value).expanduser()
        roots = _roots(info)
        if roots is None:
            return str(path.absolute())
        # Confined (the web app, the API): relative to the first allowed directory, stored
        # with its symlinks resolved, so neither `..` nor a link leads outside.
        return str(confined(path if path.is_absolute() else roots[0] / path, roots,
                            str(info.field_name)))

    @field_validator("done_statuses", "cancelled_statuses", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value in (None, "", "tab", "TAB", "\\t"):
            return value or None
        if len(value) != 1 or value in "\"\r\n":
            raise ValueError("a delimiter is one character (or 'tab')")
        return value

    @model_validator(mode="after")
    def _copy_is_another_file_of_the_same_kind(self, info: ValidationInfo) -> FileConfig:
        roots = _roots(info)
        if roots is not None:
            confined(self.copy_path(), roots, "output_path (default: beside path)")
        if self.output_path is None:
            return self
        src, out = Path(self.path).expanduser(), Path(self.output_path).expanduser()
        if src.resolve() == out.resolve():
            raise ValueError("output_path must differ from path: your file is never overwritten")
        if is_xlsx(src) != is_xlsx(out):
            raise ValueError("output_path must be the same format as path (.csv or .xlsx)")
        return self

    def input_path(self) -> Path:
        """The input file."""
        return Path(self.path).expanduser()

    def copy_path(self) -> Path:
        """Where the copy goes: `output_path`, else `<stem>.learnloop<suffix>` beside the input."""
        if self.output_path:
            return Path(self.output_path).expanduser()
        src = self.input_path()
        return src.with_name(f"{src.stem}.learnloop{src.suffix}")


def _roots(info: ValidationInfo) -> list[Path] | None:
    """The directories paths are confined to, when the caller asked for it (None: anywhere)."""
    context = info.context if isinstance(info.context, dict) else {}
    roots = context.get("file_roots")
    return [Path(r) for r in roots] if roots is not None else None
