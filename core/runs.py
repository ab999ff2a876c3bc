"""Who runs a sync or learning run, so a run whose process was killed is closed, not left running."""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.model import JobRun, LearningRun, utcnow

INTERRUPTED = "interrupted"


def owner() -> dict[str, Any]:
    """This process, as recorded on the run row it starts."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _dead(record: Any) -> int | None:
    """The pid of the process that recorded `record`, when it ran here and has ended."""
    if not isinstance(record, dict) or record.get("host") != socket.gethostname():
        return None
    pid = record.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or _alive(pid):
        return None
    return pid


def close_abandoned(session: Session) -> int:
    """Mark `interrupted` every running sync and learning run whose process on this machine
    has ended (killed, or lost with its machine's power) without finishing; returns how many.

    A run started on another machine is left alone: whether it still runs cannot be told here.
    """
    closed = 0
    now = utcnow()
    rows: list[tuple[JobRun | LearningRun, Any]] = [
        (r, r.stats) for r in session.scalars(select(JobRun).where(JobRun.status == "running"))]
    rows += [(r, r.inputs) for r in session.scalars(
        select(LearningRun).where(LearningRun.status == "running"))]
    for row, record in rows:
        pid = _dead(record)
        if pid is None:
            continue
        row.status, row.finished_at = INTERRUPTED, now
        row.error = (f"interrupted: the process (pid {pid}) ended before the run finished; "
                     "what it had stored is kept")
        closed += 1
    return closed
