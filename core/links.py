"""Links and enrollments: stored from a connector's batch, and read by learning (segments
inherited through links, the account an item belongs to)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import exists, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from core.contract import EnrollmentRecord, LinkRecord, Problem
from core.model import RELATIONS, Enrollment, Item, ItemLink

CHUNK = 500
ALL_LINKS = 5_000  # asked about more items than this, read every resolved link at once
MAX_ID = 200
INHERIT_DEPTH = 2  # an enrollment's contact's company is two links away
ACCOUNT_RELATIONS = ("company",)
VIA = ("contact", "enrollment_of", "deal", "parent")  # where an item's account may be found


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _item_ids(session: Session, conn_id: int, ext_ids: Iterable[str],
              known: Mapping[str, Item]) -> dict[str, int]:
    """Stored item id per external id (the batch's items first, then the store)."""
    out = {e: known[e].id for e in ext_ids if e in known}
    rest = sorted({e for e in ext_ids if e not in out})
    for chunk in _chunks(rest):
        out.update({e: i for e, i in session.execute(select(Item.external_id, Item.id).where(
            Item.connection_id == conn_id, Item.external_id.in_(chunk)))})
    return out


def _link_problem(link: LinkRecord) -> str | None:
    if link.relation not in RELATIONS:
        return f"unknown link relation {link.relation!r} (known: {', '.join(RELATIONS)})"
    if not link.from_external_id or not link.to_external_id:
        return "a link needs both ids"
    if "\x00" in link.from_external_id + link.to_external_id:
        return "an id contains a NUL character"
    if link.from_external_id == link.to_external_id:
        return "an item cannot link to itself"
    if max(len(link.from_external_id), len(link.to_external_id)) > MAX_ID:
        return f"an id longer than {MAX_ID} characters"
    return None


def store_links(session: Session, conn_id: int, links: Sequence[LinkRecord],
                known: Mapping[str, Item]) -> list[Problem]:
    """Upsert a batch's links; a (from item, relation) in the batch replaces its stored links.

    A link whose items are not stored yet is kept pending and resolved by `resolve_pending`.

    Args:
        session: the batch's session (items already flushed).
        conn_id: the connection.
        links: the batch's links.
        known: the batch's items by external id.

    Returns:
        One Problem per link that cannot be stored (unknown relation, self link, id too long).
    """
    problems: list[Problem] = []
    wanted: dict[tuple[str, str, str], LinkRecord] = {}
    cleared: set[tuple[str, str]] = set()
    for link in links:
        if not link.to_external_id and link.from_external_id and link.relation in RELATIONS:
            cleared.add((link.from_external_id, link.relation))  # none of it any more
            continue
        reason = _link_problem(link)
        if reason:
            problems.append(Problem(f"link {link.from_external_id} -> {link.to_external_id}",
                                    reason, {"relation": link.relation}))
        else:
            wanted[(link.from_external_id, link.to_external_id, link.relation)] = link
    if not wanted and not cleared:
        return problems
    pairs = {(f, r) for f, _, r in wanted} | cleared
    froms = sorted({f for f, _ in pairs})
    stored: dict[tuple[str, str, str], ItemLink] = {}
    for chunk in _chunks(froms):
        for row in session.scalars(select(ItemLink).where(
                ItemLink.connection_id == conn_id, ItemLink.from_external_id.in_(chunk))):
            stored[(row.from_external_id, row.to_external_id, row.relation)] = row
    for key, row in stored.items():
        if (key[0], key[2]) in pairs and key not in wanted:
            session.delete(row)  # the deal's company changed: the old link goes
    ids = _item_ids(session, conn_id, {e for k in wanted for e in k[:2]}, known)
    rows: list[dict[str, Any]] = []
    for key in wanted:
        old = stored.get(key)
        if old is None:
            rows.append({"connection_id": conn_id, "from_external_id": key[0],
                         "to_external_id": key[1], "relation": key[2],
                         "from_item_id": ids.get(key[0]), "to_item_id": ids.get(key[1])})
        else:
            old.from_item_id = old.from_item_id or ids.get(key[0])
            old.to_item_id = old.to_item_id or ids.get(key[1])
    session.flush()  # the replaced links go first
    if rows:  # one executemany, not one ORM INSERT per link (what add() does on SQLite)
        session.execute(insert(ItemLink), rows)
    return problems


def resolve_pending(session: Session, conn_id: int) -> None:
    """Point the connection's pending links at the items that have arrived since."""
    pending = or_(ItemLink.to_item_id.is_(None), ItemLink.from_item_id.is_(None))
    if not session.scalar(select(exists().where(ItemLink.connection_id == conn_id, pending))):
        return
    for column, ext in ((ItemLink.to_item_id, ItemLink.to_external_id),
                        (ItemLink.from_item_id, ItemLink.from_external_id)):
        found = (select(Item.id).where(Item.connection_id == ItemLink.connection_id,
                                       Item.external_id == ext).scalar_subquery())
        session.execute(update(ItemLink).where(
            ItemLink.connection_id == conn_id, column.is_(None)).values({column: found})
            .execution_options(synchronize_session=False))


def _enrollment_problem(rec: EnrollmentRecord) -> str | None:
    if not rec.test.strip() or not rec.arm.strip():
        return "an enrollment needs a test and an arm"
    if "\x00" in rec.test + rec.arm + (rec.unit or ""):
        return "a test, arm or unit contains a NUL character"
    if max(len(rec.test), len(rec.arm), len(rec.unit or "")) > MAX_ID:
        return f"a test, arm or unit longer than {MAX_ID} characters"
    split = rec.expected_split or {}
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
           for v in split.values()) or (split and sum(split.values()) <= 0):
        return f"expected split {split!r}: shares must be numbers >= 0, not all 0"
    return None


def store_enrollments(session: Session, conn_id: int, records: Sequence[EnrollmentRecord],
                      known: Mapping[str, Item]) -> list[Problem]:
    """Upsert a batch's enrollments, one per item and test.

    Returns:
        One Problem per enrollment of an item that is not stored, or that is malformed.
    """
    problems: list[Problem] = []
    wanted: dict[tuple[str, str], EnrollmentRecord] = {}
    for rec in records:
        reason = _enrollment_problem(rec)
        if reason:
            problems.append(Problem(f"enrollment {rec.item_external_id} in {rec.test}", reason))
        else:
            wanted[(rec.item_external_id, rec.test.strip())] = rec
    ids = _item_ids(session, conn_id, {e for e, _ in wanted}, known)
    for ext, test in list(wanted):
        if ext not in ids:
            problems.append(Problem(f"enrollment {ext} in {test}",
                                    f"enrollment for unknown item {ext}"))
            del wanted[(ext, test)]
    stored: dict[tuple[int, str], Enrollment] = {}
    keys = sorted({(ids[e], t) for e, t in wanted})
    for chunk in _chunks(keys):
        for row in session.scalars(select(Enrollment).where(
                tuple_(Enrollment.item_id, Enrollment.test).in_(chunk))):
            stored[(row.item_id, row.test)] = row
    rows: list[dict[str, Any]] = []
    for (ext, test), rec in wanted.items():
        values = {"arm": rec.arm.strip(), "unit": rec.unit, "assigned_at": rec.assigned_at,
                  "random": rec.random, "expected_split": rec.expected_split}
        existing = stored.get((ids[ext], test))
        if existing is None:
            rows.append({"connection_id": conn_id, "item_id": ids[ext], "test": test, **values})
            continue
        for name, value in values.items():
            if getattr(existing, name) != value:
                setattr(existing, name, value)
    if rows:  # one executemany, not one ORM INSERT per enrollment
        session.execute(insert(Enrollment), rows)
    return problems


def _resolved_links(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
    """from item -> [(relation, to item)], in RELATIONS order, then by the target's id."""
    query = select(ItemLink.from_item_id, ItemLink.relation, ItemLink.to_item_id).where(
        ItemLink.to_item_id.is_not(None), ItemLink.from_item_id.is_not(None))
    rows: list[tuple[int, str, int]] = []
    if len(ids) > ALL_LINKS:
        wanted = set(ids)
        rows = [(a, b, c) for a, b, c in session.execute(query)
                if a is not None and c is not None and a in wanted]
    else:
        for chunk in _chunks(list(ids)):
            rows.extend((a, b, c) for a, b, c in session.execute(
                query.where(ItemLink.from_item_id.in_(chunk))) if a is not None and c is not None)
    order = {r: i for i, r in enumerate(RELATIONS)}
    out: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for src, relation, dst in sorted(rows, key=lambda r: (order.get(r[1], 99), r[2])):
        out[src].append((relation, dst))
    return out


def _segments(session: Session, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        out.update({i: seg for i, seg in session.execute(select(Item.id, Item.segments).where(
            Item.id.in_(chunk)))})
    return out


def inherited_segments(session: Session, item_ids: Sequence[int],
                       depth: int = INHERIT_DEPTH,
                       known: Mapping[int, dict[str, Any]] | None = None
                       ) -> dict[int, dict[str, Any]]:
    """Each item's segments completed through its links: a deal's industry from its company,
    an enrollment's seniority from its contact (and that contact's company's industry).

    A linked item's segments fill only keys the item lacks; nearer links win over farther
    ones, then relations in RELATIONS order.

    Args:
        session: a session on the store.
        item_ids: the items wanted.
        depth: how many links away segments may come from.
        known: segments the caller already read, by item id (not read again); with them,
            a store without links costs one query.

    Returns:
        item id -> its segments with the inherited ones added (every id asked for that exists).
    """
    ids = list(dict.fromkeys(item_ids))
    levels: list[dict[int, list[tuple[str, int]]]] = []
    frontier = ids
    for _ in range(depth):
        links = _resolved_links(session, frontier)
        if not links:
            break
        levels.append(links)
        frontier = sorted({dst for targets in links.values() for _, dst in targets})
    known = known or {}
    if not levels and all(i in known for i in ids):
        return {i: dict(known[i] or {}) for i in ids}
    reach = {i: [i] for i in ids}
    paths: dict[int, list[int]] = {i: [] for i in ids}
    for links in levels:
        for i in ids:
            nxt = [dst for src in reach[i] for _, dst in links.get(src, ())
                   if dst != i and dst not in paths[i]]
            paths[i].extend(dict.fromkeys(nxt))
            reach[i] = list(dict.fromkeys(nxt))
    wanted = [*ids, *(d for p in paths.values() for d in p)]
    seg = {**_segments(session, [i for i in wanted if i not in known]),
           **{i: known[i] for i in wanted if i in known}}
    out: dict[int, dict[str, Any]] = {}
    for i in ids:
        if i not in seg:
            continue
        merged = dict(seg[i] or {})
        for other in paths[i]:
            for key, value in (seg.get(other) or {}).items():
                if key not in merged and value not in (None, ""):
                    merged[key] = value
        out[i] = merged
    return out


def account_of(session: Session, item_ids: Sequence[int]) -> dict[int, int]:
    """The account (company item) of each item that has one linked: its own company link, else
    the company of its contact, of the contact it is an enrollment of, of its deal or parent.

    Returns:
        item id -> company item id, for the items with a linked account.
    """
    ids = list(dict.fromkeys(item_ids))
    first = _resolved_links(session, ids)
    out: dict[int, int] = {}
    via: dict[int, list[int]] = {}
    for i in ids:
        links = first.get(i, [])
        company = next((dst for rel, dst in links if rel in ACCOUNT_RELATIONS), None)
        if company is not None:
            out[i] = company
        else:
            via[i] = [dst for rel, dst in links if rel in VIA]
    second = _resolved_links(session, sorted({d for v in via.values() for d in v}))
    for i, hops in via.items():
        company = next((dst for h in hops for rel, dst in second.get(h, [])
                        if rel in ACCOUNT_RELATIONS), None)
        if company is not None:
            out[i] = company
    return out
