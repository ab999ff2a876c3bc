"""Links and enrollments: stored by sync (pending until their items arrive, idempotent),
segments inherited through links, the account of an item, and the back-fill of old stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.contract import Batch, EnrollmentRecord, ItemRecord, LinkRecord
from core.links import account_of, inherited_segments
from core.model import Connection, Enrollment, Item, ItemLink, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from tests.core.learning_data import ListConnector

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


class BatchConnector(ListConnector):
    """Yields the batches it is given, in order."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        super().__init__([])
        self.batches = list(batches)

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        yield from self.batches


def _sync(engine: Engine, *batches: Batch) -> Any:
    with unit_of_work(engine) as s:
        if s.scalar(select(Connection).where(Connection.name == "crm")) is None:
            s.add(Connection(kind="list", name="crm"))
    return run_sync(engine, "crm", BatchConnector(batches))


def _links(engine: Engine) -> set[tuple[str, str, str, bool]]:
    with unit_of_work(engine) as s:
        return {(r.from_external_id, r.to_external_id, r.relation, r.to_item_id is not None)
                for r in s.scalars(select(ItemLink))}


def test_links_wait_for_their_items_and_resync_changes_nothing(engine: Engine) -> None:
    deal = ItemRecord("D-1", kind="deal", segments={"stage": "won"})
    first = Batch(items=[deal], links=[LinkRecord("D-1", "C-9", "company"),
                                       LinkRecord("D-1", "P-1", "contact")])
    report = _sync(engine, first, Batch(items=[ItemRecord("C-9", kind="company")]))
    assert report.quarantined == 0
    # the company came in the second batch: resolved; the contact never came: still pending
    assert _links(engine) == {("D-1", "C-9", "company", True), ("D-1", "P-1", "contact", False)}
    again = _sync(engine, Batch(items=[deal, ItemRecord("C-9", kind="company"),
                                       ItemRecord("P-1", kind="contact")],
                                links=[LinkRecord("D-1", "C-9", "company"),
                                       LinkRecord("D-1", "P-1", "contact")]))
    assert again.quarantined == 0
    assert _links(engine) == {("D-1", "C-9", "company", True), ("D-1", "P-1", "contact", True)}
    # the deal moved to another company: the old company link is replaced, the contact stays
    _sync(engine, Batch(items=[ItemRecord("C-2", kind="company")],
                        links=[LinkRecord("D-1", "C-2", "company")]))
    assert _links(engine) == {("D-1", "C-2", "company", True), ("D-1", "P-1", "contact", True)}
    # the deal's company was removed in the tool: the link goes, quietly; the contact stays
    report = _sync(engine, Batch(items=[deal], links=[LinkRecord.cleared("D-1", "company")]))
    assert report.quarantined == 0
    assert _links(engine) == {("D-1", "P-1", "contact", True)}
    # said again (no company still), nothing changes
    _sync(engine, Batch(items=[deal], links=[LinkRecord.cleared("D-1", "company")]))
    assert _links(engine) == {("D-1", "P-1", "contact", True)}


def test_a_bad_link_or_enrollment_is_quarantined_not_dropped(engine: Engine) -> None:
    report = _sync(engine, Batch(
        items=[ItemRecord("E-1", kind="enrollment")],
        links=[LinkRecord("E-1", "X", "cousin"), LinkRecord("E-1", "E-1", "contact")],
        enrollments=[EnrollmentRecord("E-404", "seq", "A"),
                     EnrollmentRecord("E-1", "seq", "A", expected_split={"A": -1.0})]))
    reasons = sorted(p.reason for p in report.problems)
    assert any("unknown link relation 'cousin'" in r for r in reasons)
    assert any("cannot link to itself" in r for r in reasons)
    assert any("enrollment for unknown item E-404" in r for r in reasons)
    assert any("expected split" in r for r in reasons)
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(QuarantinedRow)) == 4
        assert s.scalar(select(func.count()).select_from(Enrollment)) == 0


def test_enrollments_are_upserted_per_item_and_test(engine: Engine) -> None:
    items = [ItemRecord(f"E-{i}", kind="enrollment") for i in range(3)]
    enrolled = [EnrollmentRecord(f"E-{i}", "seq1", "A" if i % 2 else "control",
                                 unit=f"acct-{i}", assigned_at=T0, random=True,
                                 expected_split={"A": 0.5, "control": 0.5}) for i in range(3)]
    _sync(engine, Batch(items=items, enrollments=enrolled))
    _sync(engine, Batch(items=items, enrollments=enrolled))
    moved = EnrollmentRecord("E-0", "seq1", "A", unit="acct-0", assigned_at=T0, random=True)
    _sync(engine, Batch(items=items, enrollments=[moved, EnrollmentRecord("E-0", "seq2", "B")]))
    with unit_of_work(engine) as s:
        rows = {(e.test, s.get_one(Item, e.item_id).external_id): e
                for e in s.scalars(select(Enrollment))}
        assert len(rows) == 4
        assert rows[("seq1", "E-0")].arm == "A" and rows[("seq1", "E-0")].expected_split is None
        assert rows[("seq1", "E-1")].expected_split == {"A": 0.5, "control": 0.5}
        assert rows[("seq1", "E-1")].assigned_at == T0 and rows[("seq1", "E-1")].random
        assert rows[("seq2", "E-0")].arm == "B" and not rows[("seq2", "E-0")].random


def test_segments_come_through_links_and_the_account_is_found(engine: Engine) -> None:
    _sync(engine, Batch(
        items=[ItemRecord("ACME", kind="company", segments={"industry": "finance",
                                                            "region": "EU"}),
               ItemRecord("ann@acme", kind="contact", segments={"seniority": "VP",
                                                                "region": "US"}),
               ItemRecord("E-1", kind="enrollment", segments={"channel": "email"}),
               ItemRecord("D-1", kind="deal", segments={"industry": "retail"}),
               ItemRecord("E-2", kind="enrollment")],
        links=[LinkRecord("ann@acme", "ACME", "company"),
               LinkRecord("E-1", "ann@acme", "enrollment_of"),
               LinkRecord("D-1", "ACME", "company")]))
    with unit_of_work(engine) as s:
        ids = {e: i for e, i in s.execute(select(Item.external_id, Item.id))}
        got = inherited_segments(s, [ids["E-1"], ids["D-1"], ids["E-2"]])
        own = {i: seg for i, seg in s.execute(select(Item.id, Item.segments))}
        assert inherited_segments(s, [ids["E-1"], ids["D-1"], ids["E-2"]], known=own) == got
        accounts = account_of(s, [ids["E-1"], ids["D-1"], ids["E-2"], ids["ann@acme"]])
    # the contact's region wins over its company's (nearer); own keys are never overwritten
    assert got[ids["E-1"]] == {"channel": "email", "seniority": "VP", "region": "US",
                               "industry": "finance"}
    assert got[ids["D-1"]] == {"industry": "retail", "region": "EU"}
    assert got[ids["E-2"]] == {}
    assert accounts == {ids["E-1"]: ids["ACME"], ids["D-1"]: ids["ACME"],
                        ids["ann@acme"]: ids["ACME"]}


def test_an_old_store_gets_its_enrollments_from_variant_segments(
        empty_url: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from core.model.base import JSONType
    from core.store import alembic_config, make_engine, migrate

    old = make_engine(empty_url)
    command.upgrade(alembic_config(old), "0003")  # the previous release's schema
    connections = sa.table("connections", *(sa.column(c) for c in (
        "id", "kind", "name", "health", "created_at")), sa.column("config", JSONType),
        sa.column("mapping", JSONType), sa.column("scope", JSONType))
    items = sa.table("items", *(sa.column(c) for c in (
        "connection_id", "external_id", "kind", "title", "unit", "status", "deleted",
        "created_at", "updated_at", "planned_at")), sa.column("segments", JSONType),
        sa.column("raw", JSONType))
    now = dt.datetime(2025, 1, 1)
    with old.begin() as c:
        c.execute(connections.insert().values(id=1, kind="list", name="old", health="ok",
                                               created_at=now, config={}, mapping={}, scope={}))
        base = {"connection_id": 1, "kind": "enrollment", "title": "", "unit": "hours",
                "status": "done", "deleted": False, "created_at": now, "updated_at": now,
                "raw": {}, "planned_at": now}
        c.execute(items.insert(), [
            {**base, "external_id": "E-1", "segments": {
                "variant": "B", "sequence": "seq1", "assignment": "random", "account": "acme",
                "industry": "fin"}},
            {**base, "external_id": "E-2", "segments": {"variant": "control", "campaign": "c9"}},
            {**base, "external_id": "T-1", "kind": "task", "segments": {"team": "PAY"}},
        ])
    old.dispose()
    engine = make_engine(empty_url)
    migrate(engine)
    with unit_of_work(engine) as s:
        got = {s.get_one(Item, e.item_id).external_id: (e.test, e.arm, e.random, e.unit,
                                                          e.assigned_at)
               for e in s.scalars(select(Enrollment))}
        kept = s.scalars(select(Item.segments).where(Item.external_id == "E-1")).one()
    engine.dispose()
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert got == {"E-1": ("seq1", "B", True, "acme", when),
                   "E-2": ("c9", "control", False, None, when)}
    assert kept["industry"] == "fin" and kept["variant"] == "B"  # nothing removed


def test_learning_reads_a_deals_industry_from_its_company(engine: Engine) -> None:
    """Deals carry no industry of their own; their companies do. Learning's finished and open
    items see it through the link, so a finding can name it."""
    from core.learning import dataset
    from core.learning.run import run_learning

    companies = [ItemRecord(f"CO-{c}", kind="company", status="open",
                            segments={"industry": "finance" if c % 2 else "retail"})
                 for c in range(10)]
    deals, links = [], []
    for i in range(120):
        company = i % 10
        late = 30.0 if company % 2 else 2.0  # finance deals close a month late
        due = T0 + dt.timedelta(days=20 + i % 7)
        done = i < 100
        deals.append(ItemRecord(
            f"D-{i}", kind="deal", status="done" if done else "open", outcome="won" if done
            else None, planned_due=due, planned_amount=1000.0, estimated_at=T0,
            actual_end=due + dt.timedelta(days=late + i % 3) if done else None,
            actual_amount=1000.0 if done else None, segments={"owner": f"rep{i % 3}"}))
        links.append(LinkRecord(f"D-{i}", f"CO-{company}", "company"))
    _sync(engine, Batch(items=[*companies, *deals], links=links))
    with unit_of_work(engine) as s:
        finished = dataset.finished(s)["deal/finish"]
        assert {o.segments.get("industry") for o in finished} == {"finance", "retail"}
        assert all(o.segments["owner"].startswith("rep") for o in finished)  # own keys kept
        open_deals = [i for i in dataset.open_items(s) if i.kind == "deal"]
        assert len(open_deals) == 20 and all("industry" in i.segments for i in open_deals)
    report = run_learning(engine)
    assert any(f["statement"].startswith("industry finance deals") for f in report.findings), \
        report.findings
