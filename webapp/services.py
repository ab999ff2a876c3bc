"""The activity log (the audit trail), written by pages and the API alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.model import Activity, User
from core.secrets import redact, redact_value


def log(session: Session, actor: User | str, action: str, subject_type: str,
        subject_id: object = None, note: str | None = None, **detail: Any) -> None:
    """Add a line to the audit trail: who did what to which object (secrets redacted)."""
    who = actor.email if isinstance(actor, User) else actor
    session.add(Activity(actor=who, action=action, subject_type=subject_type,
                         subject_id=None if subject_id is None else str(subject_id),
                         detail=redact_value(detail), note=None if note is None else redact(note)))
