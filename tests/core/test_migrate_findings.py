"""Upgrading a store of the previous release: findings keep their numbers, under their names."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text

from core.model import Finding
from core.store import alembic_config, make_engine, migrate, unit_of_work


def test_old_estimation_findings_move_their_spread_and_evidence_to_their_own_columns(
        empty_url: str) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0003")
    evidence = {"n": 12, "effect": 1.8, "interval_80": [1.2, 3.1], "median_ci_90": [1.5, 2.1],
                "p": 0.001, "q": 0.004}
    with engine.begin() as c:
        c.execute(text("INSERT INTO learning_runs (id, started_at, status, model_version, inputs,"
                       " outputs, timings) VALUES (1, '2026-01-01', 'ok', 'm1', '{}', '{}', '{}')"))
        for fid, kind, ids in ((1, "estimation", {"ids": [4, 5], "evidence": evidence}),
                               (2, "experiment", {"ids": [7]})):
            c.execute(text(
                "INSERT INTO findings (id, run_id, kind, measure, segment, statement, n, effect,"
                " interval_low, interval_high, interval_level, p_value, q_value, impact, item_ids,"
                " created_at) VALUES (:id, 1, :kind, 'effort', '{}', 'old', 12, 1.8, 1.2, 3.1,"
                " 0.8, 0.001, 0.004, 2.0, :ids, '2026-01-01')"),
                {"id": fid, "kind": kind, "ids": json.dumps(ids)})
    migrate(engine)
    with unit_of_work(engine) as s:
        old = s.get_one(Finding, 1)
        assert (old.interval_low, old.interval_high, old.interval_level) == (1.5, 2.1, 0.9)
        assert (old.spread_low, old.spread_high) == (1.2, 3.1)
        assert old.item_ids == {"ids": [4, 5]} and old.evidence == evidence
        assert (old.p_value, old.q_value) == (0.001, 0.004)
        other = s.get_one(Finding, 2)
        assert (other.interval_low, other.interval_high, other.spread_low) == (1.2, 3.1, None)
        assert other.item_ids == {"ids": [7]} and other.evidence == {}
    engine.dispose()
