"""Process-wide settings read from the environment (LEARNLOOP_*)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where learnloop keeps its data and how it reaches its database."""

    model_config = SettingsConfigDict(env_prefix="LEARNLOOP_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(os.path.expanduser("~/.learnloop")),
        description="Directory for the embedded SQLite store and the secret key file.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to SQLite under `home`."
    )
    public_url: str = Field(
        default="http://localhost:8000",
        description="Where people reach the learnloop web app (for links written into tools).",
    )
    file_roots: str | None = Field(
        default=None,
        description="Directories (os.pathsep-separated) a file connection added or edited "
        "through the web app or the API may read and write in; default: `home`/files.",
    )
    claim_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a claim (a write being delivered, a running "
        "sync or learning run) lasts unless its process renews it; a dead process's claims "
        "are taken over after this.",
    )
    file_max_mb: float = Field(
        default=200.0, gt=0, description="Largest CSV or XLSX file the file connector reads, "
        "in megabytes (checked before reading).",
    )

    lesson_rule_after: int = Field(
        default=3, ge=1, description="A lesson that failed again in this many projects since "
        "its date (or in this many learning runs in a row) is proposed as an estimation rule.",
    )

    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, else SQLite under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'learnloop.db'}"

    def allowed_file_roots(self) -> list[Path]:
        """The directories web and API file connections are confined to, symlinks resolved."""
        given = [p for p in (self.file_roots or "").split(os.pathsep) if p.strip()]
        roots = [Path(p.strip()).expanduser() for p in given] or [self.home.expanduser() / "files"]
        return [r.resolve() for r in roots]

    def file_max_bytes(self) -> int:
        """The size cap of a file the file connector reads, in bytes."""
        return int(self.file_max_mb * 1_000_000)


def get_settings() -> Settings:
    """Read settings fresh from the environment (cheap; no caching so tests can change env)."""
    return Settings()


def public_url() -> str:
    """The web app's address as people reach it, without a trailing slash."""
    return get_settings().public_url.rstrip("/")


def claim_timeout() -> dt.timedelta:
    """How long a claim lasts unless its process renews it (LEARNLOOP_CLAIM_TIMEOUT seconds)."""
    return dt.timedelta(seconds=get_settings().claim_timeout)
