"""Pulls: deals, their contacts and companies, and email engagements, page by page.

The first sync lists deals (with their property histories and associations, 50 a page) and
emails (100 a page); later syncs search on the modified-date property (`hs_lastmodifieddate`,
`lastmodifieddate` for contacts) from the last watermark minus a lookback, 200 a page, then
batch-read the deals found with their histories (50 a request) and their associations (1,000
a request). A search answers at most 10,000 results: a window about to hit that wall is
restarted from the newest modified date it reached, and when one timestamp alone fills a
window it is pinned (`EQ`) and paged by `hs_object_id`. Every page is stored with the cursor
after it, so a crash resumes where the last stored page ended.

Contacts and companies are read when a deal or email that references them is read, and every
`reconcile_hours` by their own modified date; archived deals and emails are listed then too,
and marked deleted. A sync that finds nothing new costs two searches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.hubspot import mapping as m
from connectors.hubspot.client import READ, SEARCH, SEQUENCES, Hub, HubSpotError
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.enrollments import ENROLLMENT_PROPERTIES, email_records
from core.contract import Batch, LinkRecord, Problem

WALL = 10_000  # HubSpot answers no search result past the 10,000th
SEARCH_PAGE = 200
HISTORY_BATCH = 50  # batch read with propertiesWithHistory
BATCH = 100
ASSOC_BATCH = 1000
LIST_HISTORY_PAGE = 50
LIST_PAGE = 100
EMAIL_PROPERTIES = tuple(sorted({
    "hs_email_subject", "hs_email_text", "hs_email_html", "hs_email_direction",
    "hs_email_status", "hs_timestamp", "hubspot_owner_id", "hs_createdate",
    "hs_lastmodifieddate", "hs_object_id", *ENROLLMENT_PROPERTIES}))


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Reader:
    """One pull's reads: the lookups it needs, and what it has read already."""

    def __init__(self, config: HubSpotConfig, mapping: Mapping[str, Any], hub: Hub) -> None:
        self.config, self.mapping, self.hub = config, dict(mapping), hub
        self._lookups: m.Lookups | None = None
        self._templates: dict[str, str | None] = {}
        self._sequences: dict[str, dict[str, frozenset[str]]] = {}
        self.contacts_read: set[str] = set()
        self.companies_read: set[str] = set()
        # Contacts and companies referenced but not read yet: read 1,000 at a time (10 batch
        # reads and one association read), not per page of deals; kept in the cursor.
        self.pending_contacts: set[str] = set()
        self.pending_companies: set[str] = set()
        self.objects = hub.api("crm.objects")
        self.assoc = hub.api("crm.associations.v4.batch_api")

    def template_body(self, template_id: str) -> str | None:
        """A sales template's body, read once per pull: only a user-level (OAuth) token may
        read sales templates (HubSpot's `2026-09-beta` API); None without one."""
        if template_id not in self._templates:
            found = self.hub.sales_template(template_id) or {}
            self._templates[template_id] = str(found.get("body") or "") or None
        return self._templates[template_id]

    def ab_arms(self, sequence_id: str, step: str | None) -> frozenset[str]:
        """The templates of a sequence step's A/B test (HubSpot splits the step's sends between
        them at random), read with a user-level token through the `2026-09-beta` sequences
        API once per sequence and pull; empty without one (a private app cannot read a step's
        variants, so its sends count as observational). Without a step, the A/B templates of
        any step of the sequence."""
        if not self.config.oauth or not str(sequence_id).isdigit():
            return frozenset()
        if sequence_id not in self._sequences:
            try:
                found = self.hub.request(f"read sequence {sequence_id}", "GET",
                                         f"{SEQUENCES}/{sequence_id}") or {}
            except HubSpotError as exc:
                if exc.status not in (403, 404):
                    raise
                found = {}
            steps: dict[str, frozenset[str]] = {}
            for st in found.get("steps") or []:
                if st.get("actionType") != "EMAIL":
                    continue
                arms = {str((st.get("emailPattern") or {}).get("templateId") or "")}
                arms |= {str((v.get("emailPattern") or {}).get("templateId") or "")
                         for v in st.get("variants") or [] if v.get("activated", True)}
                arms.discard("")
                if len(arms) >= 2:
                    steps[str(st.get("stepOrder"))] = frozenset(arms)
            self._sequences[sequence_id] = steps
        steps = self._sequences[sequence_id]
        if step not in (None, ""):
            return steps.get(str(step), frozenset())
        return frozenset().union(*steps.values()) if steps else frozenset()

    @property
    def lookups(self) -> m.Lookups:
        """Deal pipelines and owners, read once per pull (when the first deal arrives)."""
        if self._lookups is None:
            found = m.Lookups()
            pipes = self.hub.json("read the deal pipelines",
                                  self.hub.api("crm.pipelines.pipelines_api").get_all, "deals")
            m.pipelines_from((pipes or {}).get("results") or [], found)
            after = None
            owners = self.hub.api("crm.owners.owners_api")
            while True:
                kwargs: dict[str, Any] = {"limit": 100}
                if after:
                    kwargs["after"] = after
                page = self.hub.json("read the owners", owners.get_page, **kwargs) or {}
                for o in page.get("results") or []:
                    name = o.get("email") or " ".join(
                        str(o.get(k) or "") for k in ("firstName", "lastName")).strip()
                    found.owners[str(o.get("id"))] = str(name or o.get("id"))
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
            self._lookups = found
        return self._lookups

    def pipeline_filter(self) -> list[dict[str, Any]]:
        if not self.config.pipelines:
            return []
        wanted = {p.strip().casefold() for p in self.config.pipelines}
        ids = sorted(pid for pid, label in self.lookups.pipelines.items()
                     if pid.casefold() in wanted or label.casefold() in wanted)
        return [{"propertyName": "pipeline", "operator": "IN", "values": ids or ["-"]}]

    def in_scope(self, record: Mapping[str, Any]) -> bool:
        if not self.config.pipelines:
            return True
        pipeline = str((record.get("properties") or {}).get("pipeline"))
        wanted = {p.strip().casefold() for p in self.config.pipelines}
        label = self.lookups.pipelines.get(pipeline, pipeline)
        return pipeline.casefold() in wanted or label.casefold() in wanted

    # -- reads --------------------------------------------------------------------------
    def list_page(self, otype: str, after: str | None, properties: Sequence[str],
                  history: Sequence[str] = (), associations: Sequence[str] = (),
                  archived: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """One page of `GET /crm/v3/objects/{otype}` and the next page's token."""
        kwargs: dict[str, Any] = {"limit": LIST_HISTORY_PAGE if history else LIST_PAGE,
                                  "archived": archived}
        if properties:
            kwargs["properties"] = list(properties)
        if history:
            kwargs["properties_with_history"] = list(history)
        if associations:
            kwargs["associations"] = list(associations)
        if after:
            kwargs["after"] = after
        data = self.hub.json(f"list {'archived ' if archived else ''}{otype}",
                             self.objects.basic_api.get_page, otype, **kwargs) or {}
        nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
        return list(data.get("results") or []), str(nxt) if nxt else None

    def search(self, otype: str, body: dict[str, Any]) -> dict[str, Any]:
        data = self.hub.json(f"search {otype}", self.objects.search_api.do_search, otype, body,
                             kind=SEARCH)
        return dict(data or {})

    def batch_read(self, otype: str, ids: Sequence[str], properties: Sequence[str],
                   history: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The records with these ids (50 a request with histories, else 100)."""
        out: list[dict[str, Any]] = []
        for part in chunks(list(ids), HISTORY_BATCH if history else BATCH):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in part],
                                    "properties": list(properties),
                                    "propertiesWithHistory": list(history)}
            data = self.hub.json(f"read {otype}", self.objects.batch_api.read, otype, body,
                                 archived=False, kind=READ) or {}
            out.extend(data.get("results") or [])
        return out

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]
                     ) -> dict[str, list[str]]:
        """from id -> associated `to_type` ids (v4 batch read, 1,000 a request)."""
        out: dict[str, list[str]] = {}
        for part in chunks(sorted(set(ids)), ASSOC_BATCH):
            data = self.hub.json(f"read the {to_type} of {from_type}", self.assoc.get_page,
                                 from_type, to_type, {"inputs": [{"id": i} for i in part]},
                                 kind=READ) or {}
            for row in data.get("results") or []:
                src = str((row.get("from") or {}).get("id"))
                out[src] = sorted({str(t.get("toObjectId")) for t in row.get("to") or []
                                   if t.get("toObjectId") is not None})
        return out

    # -- windows ------------------------------------------------------------------------
    def windows(self, otype: str, state: dict[str, Any], properties: Sequence[str],
                filters: list[dict[str, Any]]) -> Iterator[tuple[list[dict[str, Any]],
                                                                 dict[str, Any]]]:
        """Search pages of records modified since `state['since']`, each with the state that
        resumes after it, never past the 10,000-result wall (see the module docstring)."""
        mod = m.modified_property(otype)
        since = state.get("since")
        pin = state.get("pin")
        top = since
        first: int | None = None  # the oldest modified date of the current window
        after: str | None = None
        props = sorted({*properties, mod, "hs_object_id"})
        while True:
            if pin:
                group = [{"propertyName": mod, "operator": "EQ", "value": str(pin["ts"])},
                         {"propertyName": "hs_object_id", "operator": "GT",
                          "value": str(pin["id"])}, *filters]
                body = {"filterGroups": [{"filters": group}], "properties": props,
                        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                        "limit": SEARCH_PAGE}
                data = self.search(otype, body)
                results = list(data.get("results") or [])
                more = bool(((data.get("paging") or {}).get("next") or {}).get("after"))
                if results:
                    pin = {"ts": pin["ts"], "id": int(results[-1]["id"])}
                if not more or len(results) < SEARCH_PAGE:
                    since, top, pin = int(pin["ts"]) + 1, int(pin["ts"]) + 1, None
                yield results, {"since": since, "pin": pin}
                continue
            group = ([{"propertyName": mod, "operator": "GTE", "value": str(since)}]
                     if since is not None else []) + filters
            body = {"properties": props, "limit": SEARCH_PAGE,
                    "sorts": [{"propertyName": mod, "direction": "ASCENDING"}]}
            if group:
                body["filterGroups"] = [{"filters": group}]
            if after:
                body["after"] = after
            data = self.search(otype, body)
            results = list(data.get("results") or [])
            stamps = [t for t in (_stamp(r, mod) for r in results) if t is not None]
            if stamps:
                top = max(stamps) if top is None else max(top, max(stamps))
                first = min(stamps) if first is None else first
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                yield results, {"since": top, "pin": None, "done": True}
                return
            if int(nxt) + SEARCH_PAGE > WALL:
                after, oldest, first = None, first, None
                if top is not None and oldest is not None and oldest < top:
                    since = top  # restart the window at the newest time reached
                else:
                    pin = {"ts": top, "id": 0}  # one timestamp fills the window: by id
                yield results, {"since": since, "pin": pin}
                continue
            after = str(nxt)
            yield results, {"since": top, "pin": None}


def _stamp(record: Mapping[str, Any], prop: str) -> int | None:
    when = m.parse_time((record.get("properties") or {}).get(prop)) or \
        m.parse_time(record.get("updatedAt"))
    return m.millis(when) if when else None


# -- building batches ---------------------------------------------------------------------
def deal_batch(reader: Reader, records: list[dict[str, Any]],
               contacts: Mapping[str, list[str]] | None = None,
               companies: Mapping[str, list[str]] | None = None) -> Batch:
    """Deals (read with histories) as items and events, with their contacts and companies
    (their associations from `contacts`/`companies`, else from the records themselves)."""
    batch = Batch()
    refs_contacts: set[str] = set()
    refs_companies: set[str] = set()
    for record in records:
        if not reader.in_scope(record):
            continue
        try:
            item, events = m.deal_item(record, reader.mapping, reader.lookups)
        except (KeyError, TypeError, ValueError) as exc:
            batch.problems.append(Problem(f"deal {record.get('id', '?')}",
                                          f"malformed deal: {exc}", {"id": record.get("id")}))
            continue
        rid = str(record["id"])
        cs = contacts.get(rid, []) if contacts is not None else m.associated_ids(record,
                                                                                 "contacts")
        cos = companies.get(rid, []) if companies is not None else m.associated_ids(
            record, "companies")
        batch.items.append(item)
        batch.events.extend(events)
        batch.links += [LinkRecord(item.external_id, f"contact:{c}", "contact") for c in cs]
        batch.links += [LinkRecord(item.external_id, f"company:{c}", "company")
                        for c in cos[:1]]
        refs_contacts.update(cs)
        refs_companies.update(cos[:1])
    queue_people(reader, batch, refs_contacts, refs_companies)
    return batch


PEOPLE_FLUSH = 1000


def queue_people(reader: Reader, batch: Batch, contacts: set[str], companies: set[str],
                 flush: bool = False) -> None:
    """Remember the contacts and companies a batch references; read them into the batch once
    1,000 are waiting (or when `flush`)."""
    reader.pending_contacts |= contacts - reader.contacts_read
    reader.pending_companies |= companies - reader.companies_read
    waiting = len(reader.pending_contacts) + len(reader.pending_companies)
    if waiting and (flush or waiting >= PEOPLE_FLUSH):
        contacts, companies = reader.pending_contacts, reader.pending_companies
        reader.pending_contacts, reader.pending_companies = set(), set()
        add_people(reader, batch, contacts, companies)


def add_people(reader: Reader, batch: Batch, contacts: set[str], companies: set[str],
               force: bool = False) -> None:
    """Read the contacts and companies `batch` references that this pull has not read yet
    (all of them when `force`), with each contact's company, into the batch."""
    new_contacts = sorted(contacts if force else contacts - reader.contacts_read)
    if new_contacts:
        records = reader.batch_read("contacts", new_contacts, m.CONTACT_PROPERTIES)
        reader.contacts_read.update(new_contacts)
        their = reader.associations("contacts", "companies", [str(r["id"]) for r in records])
        for record in records:
            try:
                item, _ = m.contact_item(record)
            except (KeyError, TypeError, ValueError) as exc:
                batch.problems.append(Problem(f"contact {record.get('id', '?')}",
                                              f"malformed contact: {exc}"))
                continue
            batch.items.append(item)
            cos = their.get(str(record["id"]), [])[:1]
            batch.links += [LinkRecord(item.external_id, f"company:{c}", "company")
                            for c in cos]
            companies.update(cos)
    new_companies = sorted(companies if force else companies - reader.companies_read)
    if new_companies:
        for record in reader.batch_read("companies", new_companies, m.COMPANY_PROPERTIES):
            try:
                batch.items.append(m.company_item(record))
            except (KeyError, TypeError, ValueError) as exc:
                batch.problems.append(Problem(f"company {record.get('id', '?')}",
                                              f"malformed company: {exc}"))
        reader.companies_read.update(new_companies)


def email_batch(reader: Reader, records: list[dict[str, Any]],
                contacts: Mapping[str, list[str]] | None = None,
                deals: Mapping[str, list[str]] | None = None) -> Batch:
    """Email engagements as enrollment items (see `mapping.email_item`)."""
    batch = Batch()
    refs: set[str] = set()
    now = time.time()
    for record in records:
        rid = str(record.get("id", "?"))
        cs = contacts.get(rid, []) if contacts is not None else m.associated_ids(record,
                                                                                 "contacts")
        ds = deals.get(rid, []) if deals is not None else m.associated_ids(record, "deals")
        try:
            got = email_records(record, cs, ds, reader.config, now, reader.template_body,
                                reader.ab_arms)
        except (KeyError, TypeError, ValueError) as exc:
            batch.problems.append(Problem(f"email {rid}", f"malformed email: {exc}",
                                          {"id": rid}))
            continue
        if got is None:
            continue
        item, enrollment, links, events = got
        batch.items.append(item)
        if enrollment is not None:
            batch.enrollments.append(enrollment)
        batch.links += links
        batch.events += events
        refs.update(cs[:1])
    queue_people(reader, batch, refs, set())
    return batch


GROUP = 1000
"""Records per batch handed to the store: pages are stored together, one transaction per
1,000 records or so rather than one per page of 50 deals (the store's cost per transaction,
not the requests, dominated a first sync). A crash loses at most the pages of one group, which
the next pull reads again from the cursor of the last group stored."""


def _size(batch: Batch) -> int:
    return len(batch.items) + len(batch.deleted) + len(batch.problems)


def _merge(into: Batch, batch: Batch) -> None:
    into.items += batch.items
    into.events += batch.events
    into.problems += batch.problems
    into.deleted += batch.deleted
    into.links += batch.links
    into.enrollments += batch.enrollments
    into.cursor = batch.cursor if batch.cursor is not None else into.cursor


def pull(config: HubSpotConfig, mapping: Mapping[str, Any], cursor: Mapping[str, Any] | None,
         hub: Hub) -> Iterator[Batch]:
    """Batches of deals, contacts, companies and emails changed since the cursor, the pages
    of `pages` grouped into batches of about GROUP records, each with the cursor after its
    last page."""
    group: Batch | None = None
    for batch in pages(config, mapping, cursor, hub):
        if group is None:
            group = batch
        else:
            _merge(group, batch)
        if _size(group) >= GROUP:
            yield group
            group = None
    if group is not None:
        yield group


def pages(config: HubSpotConfig, mapping: Mapping[str, Any], cursor: Mapping[str, Any] | None,
          hub: Hub) -> Iterator[Batch]:
    """Deals, contacts, companies and emails changed since the cursor, one batch a page.

    The cursor: `{"deals": state, "emails": state, "people": state, "reconciled_ms": ms}`,
    a state being `{"list": after-token}` while the first listing runs, else
    `{"since": ms, "pin": {"ts", "id"} | None}` for searches.
    """
    cursor = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (cursor or {}).items()}
    reader = Reader(config, mapping, hub)
    now_ms = int(time.time() * 1000)
    started = now_ms
    lookback = config.lookback_minutes * 60_000
    reconciled = int(cursor.get("reconciled_ms") or 0)
    reconcile = bool(cursor) and now_ms - reconciled > config.reconcile_hours * 3_600_000
    if not cursor:
        cursor = {"deals": {"list": None}, "emails": {"list": None}, "reconciled_ms": now_ms}
    deal_props, deal_history = m.deal_properties(reader.mapping)

    reader.pending_contacts = {str(c) for c in cursor.pop("pending_contacts", None) or []}
    reader.pending_companies = {str(c) for c in cursor.pop("pending_companies", None) or []}

    def save(**changes: Any) -> dict[str, Any]:
        cursor.update(changes)
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cursor.items()}
        if reader.pending_contacts or reader.pending_companies:  # not read yet: on resume
            out["pending_contacts"] = sorted(reader.pending_contacts)
            out["pending_companies"] = sorted(reader.pending_companies)
        return out

    for otype, key in (("deals", "deals"), ("emails", "emails")):
        state = dict(cursor.get(key) or {"since": None})
        if "list" in state:  # the first sync: list everything, with associations
            after = state.get("list")
            list_started = int(state.get("started") or started)
            while True:
                if otype == "deals":
                    records, after = reader.list_page(otype, after, deal_props, deal_history,
                                                      ("contacts", "companies"))
                    batch = deal_batch(reader, records)
                else:
                    records, after = reader.list_page(otype, after, EMAIL_PROPERTIES, (),
                                                      ("contacts", "deals"))
                    batch = email_batch(reader, records)
                done = after is None
                batch.cursor = save(**{key: {"since": list_started, "pin": None} if done
                                       else {"list": after, "started": list_started}})
                yield batch
                if done:
                    break
            continue
        since = state.get("since")
        search_state = {"since": max(0, int(since) - lookback) if since is not None else None,
                        "pin": state.get("pin")}
        props = deal_props if otype == "deals" else EMAIL_PROPERTIES
        filters = reader.pipeline_filter() if otype == "deals" and config.pipelines else []
        seen: dict[str, int | None] = {}
        for results, after_state in reader.windows(otype, search_state, ["hs_object_id"],
                                                   filters):
            mod = m.modified_property(otype)
            fresh = []
            for r in results:
                stamp = _stamp(r, mod)
                rid = str(r.get("id"))
                if rid in seen and seen[rid] == stamp:
                    continue  # a restarted window reads its newest timestamp again
                seen[rid] = stamp
                fresh.append(rid)
            if otype == "deals":
                records = reader.batch_read("deals", fresh, props, deal_history) if fresh else []
                ids = [str(r["id"]) for r in records]
                batch = deal_batch(reader, records, reader.associations("deals", "contacts", ids)
                                   if ids else {},
                                   reader.associations("deals", "companies", ids)
                                   if ids else {})
            else:
                records = reader.batch_read("emails", fresh, props) if fresh else []
                ids = [str(r["id"]) for r in records]
                batch = email_batch(reader, records, reader.associations("emails", "contacts", ids)
                                    if ids else {},
                                    reader.associations("emails", "deals", ids) if ids else {})
            reached = after_state.get("since")  # never behind the stored watermark
            new_since = since if reached is None else max(int(reached), int(since or 0))
            batch.cursor = save(**{key: {"since": new_since, "pin": after_state.get("pin")}})
            yield batch
    if reader.pending_contacts or reader.pending_companies:
        batch = Batch()
        queue_people(reader, batch, set(), set(), flush=True)
        batch.cursor = save()
        yield batch
    if reconcile:
        yield from reconcile_pull(reader, cursor, reconciled, started, save)


def reconcile_pull(reader: Reader, cursor: dict[str, Any], since_ms: int, started: int,
                   save: Any) -> Iterator[Batch]:
    """Contacts and companies changed since the last reconcile, and archived deals and
    emails, marked deleted."""
    for otype in ("contacts", "companies"):
        for results, _ in reader.windows(otype, {"since": since_ms, "pin": None},
                                         ["hs_object_id"], []):
            batch = Batch()
            ids = {str(r["id"]) for r in results}
            if otype == "contacts":
                add_people(reader, batch, ids, set(), force=True)
            else:
                add_people(reader, batch, set(), ids, force=True)
            yield batch
    for otype, prefix in (("deals", "deal"), ("emails", "email")):
        after = None
        while True:
            records, after = reader.list_page(otype, after, ["hs_object_id"], archived=True)
            batch = Batch(deleted=[f"{prefix}:{r['id']}" for r in records if r.get("id")])
            if after is None:
                batch.cursor = save(reconciled_ms=started)
            yield batch
            if after is None:
                break

