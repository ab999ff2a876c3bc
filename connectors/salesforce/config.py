"""Configuration of a Salesforce connection: JWT bearer (the default), client credentials, or
username, password and security token as a fallback on its way out."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

JWT, CLIENT_CREDENTIALS, PASSWORD = "jwt", "client_credentials", "password"
RETIREMENT = ("Salesforce retires username/password sign-in (SOAP login() is gone from API "
              "65.0 and off by default in orgs made since Winter '26): switch this connection "
              "to the JWT bearer flow (consumer_key, username, private_key)")


class SalesforceConfig(BaseModel):
    """Which org, how learnloop signs in, and how opportunities are read."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(description="The org's My Domain without '.salesforce.com' (for "
                        "https://acme.my.salesforce.com: 'acme.my'); the token endpoint and "
                        "the JWT audience are https://{domain}.salesforce.com.")
    consumer_key: SecretStr | None = Field(default=None, description="The connected app's "
                                           "consumer key (JWT bearer and client "
                                           "credentials); kept as a secret like the rest.")
    username: str = Field(default="", description="The integration user learnloop signs in "
                          "as (JWT bearer; the username/password fallback). With client "
                          "credentials, the app's Run As user (install assigns it the "
                          "permission set).")
    private_key: SecretStr | None = Field(default=None, description="JWT bearer (the "
                                          "default): the PEM private key whose certificate is "
                                          "uploaded to the connected app.")
    consumer_secret: SecretStr | None = Field(default=None, description="Client credentials "
                                              "(second option): the connected app's consumer "
                                              "secret.")
    password: SecretStr | None = Field(default=None, description="Fallback only, being "
                                       "retired by Salesforce: the user's password.")
    security_token: SecretStr | None = Field(default=None, description="Fallback only: the "
                                             "user's security token (appended to the "
                                             "password).")
    api_version: str = Field(default="62.0", pattern=r"^\d{2}\.0$",
                             description="The REST API version (62.0; the password "
                             "fallback needs below 65.0).")
    login_url: str = Field(default="", description="Send requests for "
                           "https://{domain}.salesforce.com to this address instead (a "
                           "proxy, or a test org); empty for Salesforce itself.")
    ca_file: str = Field(default="", description="A CA bundle to trust instead of the "
                         "system's (a TLS-inspecting proxy); empty for the system's.")
    lookback_minutes: int = Field(default=10, ge=0, description="Incremental syncs re-read "
                                  "this much before the last SystemModstamp seen (late "
                                  "commits land there).")
    bulk_threshold: int = Field(default=10_000, ge=1, description="A read of more records "
                                "than this goes through Bulk API 2.0 (REST for objects Bulk "
                                "does not support, and when a Bulk job fails).")
    quota_share: float = Field(default=0.8, gt=0, le=1, description="Stop syncing and "
                               "writing when this share of the org's daily API allowance is "
                               "used; the work resumes at the next slot.")
    quota_pause_minutes: float = Field(default=60, gt=0, description="How long a sync or "
                                       "delivery stopped by the quota guard waits before the "
                                       "next slot.")
    timeout_seconds: float = Field(default=60, gt=0, description="How long to wait for one "
                                   "answer before the call counts as failed (and is retried).")
    max_retries: int = Field(default=5, ge=0, description="Retries of one call after a 429, "
                             "a 5xx, a transient REQUEST_LIMIT_EXCEEDED or a dropped "
                             "connection.")
    backoff_seconds: float = Field(default=1.0, gt=0, description="First wait after a 5xx or "
                                   "a 429 without Retry-After (doubled on each retry).")
    max_wait_seconds: float = Field(default=60, gt=0, description="The longest single wait "
                                    "between retries.")
    bulk_poll_seconds: float = Field(default=2.0, gt=0, description="Wait between polls of "
                                     "a Bulk API 2.0 job.")

    @field_validator("private_key")
    @classmethod
    def _pem(cls, value: SecretStr | None) -> SecretStr | None:
        """A key pasted into a one-line form field (or an environment variable with `\\n`)
        loses its line breaks: put them back, as PEM needs them."""
        if value is None:
            return None
        text = value.get_secret_value().strip().replace("\\n", "\n")
        found = re.fullmatch(r"(-----BEGIN [A-Z ]+-----)\s*(.+?)\s*(-----END [A-Z ]+-----)", text,
                             re.S)
        if found is None:
            raise ValueError("private_key must be a PEM private key (-----BEGIN PRIVATE KEY----- "
                             "...)")
        body = "".join(found.group(2).split())
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return SecretStr("\n".join([found.group(1), *lines, found.group(3)]) + "\n")

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesforceConfig:
        domain = self.domain.strip().removeprefix("https://").removesuffix("/")
        self.domain = domain.removesuffix(".salesforce.com")
        if not self.domain:
            raise ValueError("give domain: the org's My Domain, e.g. 'acme.my' for "
                             "https://acme.my.salesforce.com")
        mode = self.auth
        if mode == JWT and not (self.consumer_key is not None and self.username):
            raise ValueError("the JWT bearer flow needs consumer_key, username and "
                             "private_key")
        if mode == CLIENT_CREDENTIALS:
            if self.consumer_key is None:
                raise ValueError("client credentials need consumer_key and consumer_secret")
            if self.domain in ("login", "test"):
                raise ValueError("client credentials need the org's My Domain as domain "
                                 "(e.g. 'acme.my'), not login or test")
        if mode == PASSWORD and not (self.username and self.security_token is not None):
            raise ValueError("the username/password fallback needs username, password and "
                             "security_token")
        return self

    @property
    def auth(self) -> str:
        """How learnloop signs in: jwt, client_credentials or password."""
        if self.private_key is not None:
            return JWT
        if self.password is not None:
            return PASSWORD
        if self.consumer_secret is not None:
            return CLIENT_CREDENTIALS
        raise ValueError("give private_key (JWT bearer, with consumer_key and username), or "
                         "consumer_key and consumer_secret (client credentials)")
