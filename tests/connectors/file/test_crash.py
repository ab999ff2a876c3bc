"""A sync killed after its last batch: the next one still marks the removed rows deleted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.file import FileConfig, FileConnector
from core.connections import add_connection
from core.contract import Batch
from core.model import Item
from core.store import unit_of_work
from core.sync import run_sync

MAP = {"id": "Key", "title": "Summary", "planned_estimate": "Estimate"}


class DiesAfterTheLastBatch(FileConnector):
    """The real file connector, killed once every batch is stored, before the snapshot ends."""

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        yield from super().pull(cursor)
        raise SystemExit("killed")


def _write(path: Path, ids: range) -> None:
    path.write_text("Key,Summary,Estimate\n" + "".join(f"K-{i},task {i},{i % 5 + 1}\n"
                                                      for i in ids))


def _live(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Item).where(
            Item.deleted.is_(False))) or 0)


def test_a_crash_between_the_last_batch_and_the_deletions_is_repaired_by_the_next_sync(
        engine: Engine, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    _write(plan, range(2500))  # three batches
    config = FileConfig(path=str(plan))
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "plan", {"path": str(plan)}, MAP)
    assert run_sync(engine, "plan", FileConnector(config, MAP)).created == 2500
    _write(plan, range(2450))  # 50 rows removed from the file
    with pytest.raises(SystemExit):
        run_sync(engine, "plan", DiesAfterTheLastBatch(config, MAP))
    assert _live(engine) == 2500, "the killed sync stored its batches, no deletions"
    again = run_sync(engine, "plan", FileConnector(config, MAP))
    assert again.deleted == 50 and _live(engine) == 2450
    assert run_sync(engine, "plan", FileConnector(config, MAP)).batches == 0, \
        "then the file is unchanged: its hash was stored with the deletions"
