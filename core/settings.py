"""Process-wide settings read from the environment (LEARNLOOP_*)."""

from __future__ import annotations

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

    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, else SQLite under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'learnloop.db'}"


def get_settings() -> Settings:
    """Read settings fresh from the environment (cheap; no caching so tests can change env)."""
    return Settings()


def public_url() -> str:
    """The web app's address as people reach it, without a trailing slash."""
    return get_settings().public_url.rstrip("/")
