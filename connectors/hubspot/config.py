"""Configuration of a HubSpot connection: a private-app token, or a user-level OAuth app."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class HubSpotConfig(BaseModel):
    """Which HubSpot account, how learnloop signs in, and how deals become plans."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr | None = Field(
        default=None, description="A private app's access token (Settings > Integrations > "
        "Private apps); the scopes it needs are listed in the connector's README.")
    base_url: str = Field(default="https://api.hubapi.com",
                          description="HubSpot's API address (change it only for a proxy).")
    client_id: str = Field(default="", description="OAuth (second option, needed only to "
                           "write sequences): the user-level app's client id.")
    client_secret: SecretStr | None = Field(default=None, description="OAuth: the app's "
                                            "client secret.")
    refresh_token: SecretStr | None = Field(default=None, description="OAuth: the refresh "
                                            "token of the user who authorised the app; the "
                                            "new tokens HubSpot hands out are stored "
                                            "encrypted next to the store.")
    pipelines: list[str] = Field(default_factory=list, description="Deal pipelines to learn "
                                 "from (ids or labels); empty means every pipeline.")
    lookback_minutes: int = Field(default=10, ge=0, description="Incremental syncs re-read "
                                  "this much before the last one (HubSpot's search index lags "
                                  "behind writes by a few moments).")
    reconcile_hours: float = Field(default=24, gt=0, description="How often a sync lists "
                                   "archived records, so deals deleted in HubSpot are "
                                   "marked deleted here.")
    timeout_seconds: float = Field(default=30, gt=0, description="How long to wait for one "
                                   "answer before the call counts as failed (and is retried).")
    max_retries: int = Field(default=6, ge=0, description="Retries of one call after a 429, "
                             "a 5xx or a dropped connection, before the sync or delivery "
                             "fails and is retried later.")
    backoff_seconds: float = Field(default=1.0, gt=0, description="First wait after a 5xx or "
                                   "a 429 without Retry-After (doubled on each retry; a "
                                   "ten-secondly limit waits ten times this).")
    max_wait_seconds: float = Field(default=60, gt=0, description="The longest single wait; "
                                    "a longer Retry-After (the daily limit) fails the call "
                                    "with that wait, for the outbox or the scheduler.")
    search_per_second: float = Field(default=4.0, gt=0, description="Pace of search calls "
                                     "(HubSpot allows 5 per second per account).")
    sender_email: str = Field(default="", description="Sequences: the email address "
                              "enrollments are sent from (for the checklist's wording).")

    @model_validator(mode="after")
    def _one_way_in(self) -> HubSpotConfig:
        oauth = bool(self.client_id or self.client_secret or self.refresh_token)
        if self.access_token is None and not oauth:
            raise ValueError("give access_token (a private app's token), or client_id, "
                             "client_secret and refresh_token (a user-level OAuth app)")
        if oauth and not (self.client_id and self.client_secret and self.refresh_token):
            raise ValueError("OAuth needs all of client_id, client_secret and refresh_token")
        return self

    @property
    def oauth(self) -> bool:
        """Whether learnloop signs in as a user (OAuth) rather than as a private app."""
        return self.refresh_token is not None
