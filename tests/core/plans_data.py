"""A plan file synced three times: the plan, one open item's due date pushed, that item done."""

from __future__ import annotations

from pathlib import Path

HEAD = "Key,Summary,Team,Estimate,Spent,Start,Due,Done,Status\n"
MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate", "actual_effort": "Spent",
       "actual_start": "Start", "planned_due": "Due", "actual_end": "Done", "status": "Status",
       "segments": ["Team"]}
MAP_ARGS = [a for k, v in MAP.items() if k != "segments"
            for a in ("--map", f"{k}={v}")] + ["--map", "segments=Team"]


def write_plan(path: Path, version: int) -> None:
    """Version 1: the plan; 2: P-1 (in progress) due 10 days later; 3: P-1 done on that day."""
    due, done, status, spent = "2025-03-20", "", "In progress", ""
    if version >= 2:
        due = "2025-03-30"
    if version >= 3:
        done, status, spent = "2025-03-30", "Done", "9"
    rows = [f"P-1,Open item,PAY,8,{spent},2025-03-01,{due},{done},{status}"]
    for i in range(2, 7):
        rows.append(f"P-{i},Task {i},PAY,4,5,2025-02-0{i},2025-02-1{i},2025-02-1{i},Done")
    path.write_text(HEAD + "\n".join(rows) + "\n")
