"""The learning run's lessons step on a large store: five lessons over N finished items.

    python -m benchmarks.lessons --items 50000

Items come from the tests' generator (five projects, integration tasks overrunning in four),
stored through the real sync path in a temporary SQLite store; the lessons step
(`judge_all`) and the write-back's lesson lookup (`LessonIndex.for_item` on every item) are
timed, wall clock and CPU, with the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

PREDICTIONS = ("component=integration takes 1.5x", "component=api takes longer",
               "project=P1 takes 1.2x", "component=web finishes late",
               "project=P2 and component=integration takes 2x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    args = parser.parse_args()
    from sqlalchemy import select

    from core.lessons import store
    from core.lessons.evaluate import judge_all
    from core.lessons.status import LessonIndex
    from core.model import Item
    from core.store import open_store, unit_of_work
    from tests.core.learning_data import load
    from tests.core.lessons_data import LESSON_AT, work

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        load(engine, work(n=args.items))
        with unit_of_work(engine) as s:
            for words in PREDICTIONS:
                store.add(s, words, predicts=words, created_at=LESSON_AT)
        with unit_of_work(engine) as s:
            wall, cpu = time.perf_counter(), time.process_time()
            counts = judge_all(s, None)
            judged = (time.perf_counter() - wall, time.process_time() - cpu)
            items = list(s.scalars(select(Item)))
            wall, cpu = time.perf_counter(), time.process_time()
            index = LessonIndex.load(s)
            lines = sum(len(index.for_item(i, {})) for i in items)
            looked = (time.perf_counter() - wall, time.process_time() - cpu)
        engine.dispose()
    print(json.dumps({"items": args.items, "lessons": counts,
                      "judge_s": {"wall": round(judged[0], 2), "cpu": round(judged[1], 2)},
                      "lookup_s": {"wall": round(looked[0], 2), "cpu": round(looked[1], 2),
                                   "lines": lines},
                      "load_average": [round(v, 2) for v in os.getloadavg()]}))


if __name__ == "__main__":
    main()
