"""Configuration of a Jira Cloud connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class JiraConfig(BaseModel):
    """Which Jira, which issues, and how they map onto plans and actuals."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The Jira site, e.g. https://yourteam.atlassian.net.")
    email: str = Field(description="The Atlassian account learnloop acts as.")
    api_token: SecretStr = Field(description="An API token of that account "
                                 "(id.atlassian.com > Security > API tokens).")
    jql: str = Field(default="", description="Which issues to learn from, e.g. "
                     "'project in (PAY, WEB)'; empty means every issue the account can see.")
    lookback_minutes: int = Field(default=10, ge=0, description="Incremental syncs re-read this "
                                  "much before the last one, so late writes are never missed.")
    timeout_seconds: int = Field(default=30, ge=1, description="How long to wait for Jira "
                                   "before a call counts as failed (and is retried later).")
    reconcile_hours: float = Field(default=24, gt=0, description="How often a sync re-reads "
                                   "the whole scope, so issues deleted in Jira are noticed.")
    in_progress_statuses: list[str] = Field(
        default_factory=lambda: ["In Progress", "In Review", "Doing"],
        description="Statuses whose first entry marks when work started.")
    hours_per_estimate_unit: float = Field(default=1 / 3600, gt=0, description="Hours per unit "
                                           "of the estimate fields (Jira stores seconds).")
    lesson_issue_types: list[str] = Field(
        default_factory=list, description="Issue types whose issues are lessons, not work "
        "(e.g. 'Post-mortem'): each becomes a lesson that learnloop tests on later issues.")
    lesson_labels: list[str] = Field(
        default_factory=list, description="Labels that make an issue a lesson (e.g. "
        "'lesson'), whatever its type.")
