"""The core model: one table per entity of DESIGN.md, SQLAlchemy 2.x typed ORM."""

from __future__ import annotations

from core.model.access import (
    ROLES,
    Activity,
    ApiToken,
    LoginFailure,
    SetupClaim,
    User,
    WebSession,
)
from core.model.base import Base, utcnow
from core.model.learning import Audit, Finding, Forecast, LearningRun
from core.model.lessons import LESSON_STATUSES, Lesson
from core.model.links import RELATIONS, Enrollment, ItemLink
from core.model.ops import JobRun, WriteIntent
from core.model.policy import Policy, Proposal, Rule, Template
from core.model.process import ProcessExperiment
from core.model.tracking import Connection, Deviation, Event, Item, QuarantinedRow

__all__ = [
    "LESSON_STATUSES",
    "RELATIONS",
    "ROLES",
    "Activity",
    "ApiToken",
    "Audit",
    "Base",
    "Connection",
    "Deviation",
    "Enrollment",
    "Event",
    "Finding",
    "Forecast",
    "Item",
    "ItemLink",
    "JobRun",
    "LearningRun",
    "Lesson",
    "LoginFailure",
    "Policy",
    "ProcessExperiment",
    "Proposal",
    "QuarantinedRow",
    "Rule",
    "SetupClaim",
    "Template",
    "User",
    "WebSession",
    "WriteIntent",
    "utcnow",
]
