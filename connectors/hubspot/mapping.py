"""HubSpot records (as JSON) -> learnloop items, events, links and enrollments.

Deals are items of kind `deal`: the close date and amount as they stand are the plan
(`planned_due`, `planned_amount`), the stage's probability the stated win probability; every
stage change is a `status_changed` event (stage labels, so `commit_on: stage:<label>` finds the
commit stage), every close-date push and amount change a `plan_changed` event, all from the
property histories (`propertiesWithHistory`), so core.plans reads the committed plan at the
configured commit stage. Contacts and companies are items linked to their deals; email
engagements are items of kind `enrollment`, enrolled in their sequence or template.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.contract import EventRecord, ItemRecord, LinkRecord, MappingField
from core.segments import employee_band

MAPPING_FIELDS = (
    MappingField("id", "Record id (always hs_object_id)", required=False),
    MappingField("planned_due", "Deal close date property (default closedate)"),
    MappingField("planned_amount", "Deal amount property (default amount)"),
)
DEFAULTS = {"planned_due": "closedate", "planned_amount": "amount"}
STATUS_CHANGED, PLAN_CHANGED, DRAFT_EDITED = "status_changed", "plan_changed", "draft_edited"

DEAL_PROPERTIES = ("dealname", "dealstage", "pipeline", "dealtype", "hubspot_owner_id",
                   "createdate", "hs_lastmodifieddate", "hs_is_closed", "hs_is_closed_won",
                   "hs_deal_stage_probability", "hs_object_id")
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "jobtitle", "lifecyclestage",
                      "createdate", "lastmodifieddate", "hs_object_id")
COMPANY_PROPERTIES = ("name", "domain", "industry", "numberofemployees", "country", "state",
                      "createdate", "hs_lastmodifieddate", "hs_object_id")
MODIFIED = {"contacts": "lastmodifieddate"}  # every other object: hs_lastmodifieddate


def modified_property(object_type: str) -> str:
    """The modified-date property search filters and sorts on (contacts differ)."""
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


def deal_properties(mapping: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(properties, propertiesWithHistory) to read of each deal."""
    chosen = chosen_fields(mapping)
    extra = [str(s) for s in mapping.get("segments", [])]
    props = sorted({*DEAL_PROPERTIES, *chosen.values(), *extra})
    return props, sorted({"dealstage", *chosen.values()})


def chosen_fields(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {**DEFAULTS, **{k: str(v) for k, v in mapping.items() if k in DEFAULTS}}


def parse_time(value: Any) -> dt.datetime | None:
    """HubSpot times: epoch milliseconds or ISO 8601 (`2025-03-01T12:00:00.000Z`, or a bare
    date for date properties), as aware UTC; None when empty or unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
        if len(text) == 10:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


def millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN is no number


def truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true"


@dataclass
class Stage:
    """A deal stage: its label, pipeline, whether it closes the deal, and its probability."""

    id: str
    label: str
    pipeline: str
    closed: bool = False
    probability: float | None = None


@dataclass
class Lookups:
    """Pipelines' stages and owners' names, read once per pull when first needed."""

    stages: dict[str, Stage] = field(default_factory=dict)
    pipelines: dict[str, str] = field(default_factory=dict)  # id -> label
    owners: dict[str, str] = field(default_factory=dict)  # id -> email or name

    def stage(self, stage_id: Any) -> Stage | None:
        return self.stages.get(str(stage_id)) if stage_id not in (None, "") else None

    def label(self, stage_id: Any) -> str | None:
        if stage_id in (None, ""):
            return None
        found = self.stage(stage_id)
        return found.label if found else str(stage_id)


def pipelines_from(results: Iterable[Mapping[str, Any]], lookups: Lookups) -> None:
    """Fill `lookups` from `GET /crm/v3/pipelines/deals` results."""
    for pipe in results:
        pid = str(pipe.get("id"))
        lookups.pipelines[pid] = str(pipe.get("label") or pid)
        for st in pipe.get("stages") or []:
            meta = st.get("metadata") or {}
            lookups.stages[str(st.get("id"))] = Stage(
                str(st.get("id")), str(st.get("label") or st.get("id")), pid,
                truthy(meta.get("isClosed")), number(meta.get("probability")))


def _history(record: Mapping[str, Any], name: str) -> list[tuple[dt.datetime, Any, Any]]:
    """(when, value, who) of a property's history, oldest first (unreadable times skipped)."""
    out = []
    for h in (record.get("propertiesWithHistory") or {}).get(name) or []:
        when = parse_time(h.get("timestamp"))
        if when is not None:
            who = h.get("updatedByUserId") or h.get("sourceId")
            out.append((when, h.get("value"), str(who) if who not in (None, "") else None))
    out.sort(key=lambda h: h[0])
    return out


def _plan_value(name: str, raw: Any) -> str | float | None:
    if name == "planned_due":
        when = parse_time(raw)
        return when.isoformat() if when else None
    return number(raw)


def deal_events(record: Mapping[str, Any], ext: str, chosen: Mapping[str, str],
                lookups: Lookups) -> list[EventRecord]:
    """Stage changes, close-date pushes and amount changes from the property histories."""
    events: list[EventRecord] = []
    previous: Any = None
    for n, (when, value, who) in enumerate(_history(record, "dealstage")):
        if n and value == previous:
            continue
        events.append(EventRecord(
            ext, f"{ext}:dealstage:{millis(when)}:{value}", when, STATUS_CHANGED, actor=who,
            attributes={"from": lookups.label(previous) if n else None,
                        "to": lookups.label(value), "from_id": previous if n else None,
                        "to_id": value, "source": "hubspot dealstage history"}))
        previous = value
    for name in ("planned_due", "planned_amount"):
        prop = chosen[name]
        hist = _history(record, prop)
        for (_, old, _), (when, new, who) in itertools.pairwise(hist):
            before, after = _plan_value(name, old), _plan_value(name, new)
            if before == after:
                continue
            events.append(EventRecord(
                ext, f"{ext}:{prop}:{millis(when)}", when, PLAN_CHANGED, actor=who,
                attributes={"field": name, "from": before, "to": after, "from_text": old,
                            "to_text": new, "source": f"hubspot {prop} history"}))
    return events


def deal_item(record: Mapping[str, Any], mapping: Mapping[str, Any], lookups: Lookups,
              ) -> tuple[ItemRecord, list[EventRecord]]:
    """One deal (read with its histories) as an item and its events.

    Raises:
        KeyError, ValueError: for a record without an id (quarantined by the caller).
    """
    rid = str(record["id"])
    if not rid.strip():
        raise ValueError("the deal has an empty id")
    p = record.get("properties") or {}
    chosen = chosen_fields(mapping)
    ext = f"deal:{rid}"
    stage = lookups.stage(p.get("dealstage"))
    if stage is not None:  # the pipeline says which stages close a deal, and how
        closed = stage.closed
        won = closed and (stage.probability or 0) >= 1.0
    else:
        closed = truthy(p.get("hs_is_closed")) or str(p.get("dealstage")) in ("closedwon",
                                                                          "closedlost")
        won = closed and (truthy(p.get("hs_is_closed_won"))
                          or str(p.get("dealstage")) == "closedwon")
    events = deal_events(record, ext, chosen, lookups)
    close = parse_time(p.get(chosen["planned_due"]))
    amount = number(p.get(chosen["planned_amount"]))
    created = parse_time(p.get("createdate")) or parse_time(record.get("createdAt"))
    entered_closed = max((e.occurred_at for e in events if e.kind == STATUS_CHANGED), default=None)
    probability = number(p.get("hs_deal_stage_probability"))
    if probability is None and stage is not None:
        probability = stage.probability
    segments: dict[str, str] = {}
    pipeline = p.get("pipeline")
    if pipeline not in (None, ""):
        segments["pipeline"] = lookups.pipelines.get(str(pipeline), str(pipeline))
    if p.get("dealtype") not in (None, ""):
        segments["dealtype"] = str(p["dealtype"])
    owner = p.get("hubspot_owner_id")
    if owner not in (None, ""):
        segments["owner"] = lookups.owners.get(str(owner), str(owner))
    for name in mapping.get("segments", []):
        if p.get(name) not in (None, ""):
            segments[str(name)] = str(p[name])
    changed = [created, *(e.occurred_at for e in events)]
    item = ItemRecord(
        external_id=ext, title=str(p.get("dealname") or ""), kind="deal", unit="days",
        segments=segments, status="done" if closed else "open",
        planned_due=close, planned_amount=amount if amount is not None and amount > 0 else None,
        planned_probability=probability if probability is not None and 0 <= probability <= 1
        else None,
        estimated_at=created, actual_start=created,
        actual_end=(close or entered_closed) if closed else None,
        actual_amount=amount if closed and won else None,
        outcome=("won" if won else "lost") if closed else None,
        source_updated_at=max((c for c in changed if c is not None), default=None),
        raw={"id": rid, "stage": p.get("dealstage"), "pipeline": pipeline})
    return item, events


def associated_ids(record: Mapping[str, Any], to: str) -> list[str]:
    """Ids of the `to` objects a record read with `associations=` carries."""
    found = ((record.get("associations") or {}).get(to) or {}).get("results") or []
    return sorted({str(a.get("id") or a.get("toObjectId")) for a in found
                   if a.get("id") or a.get("toObjectId")})


SENIORITY = (
    ("c-level", r"\b(ceo|cfo|cto|coo|cmo|cro|cio|ciso|chief|founder|co-founder|owner|president"
                r"|managing director|partner)\b"),
    ("vp", r"\b(vp|svp|evp|vice president|head of)\b"),
    ("director", r"\bdirector\b"),
    ("manager", r"\b(manager|lead|team lead|supervisor)\b"),
)


def seniority(title: Any) -> str | None:
    """A seniority band from a job title (c-level, vp, director, manager, individual)."""
    text = " ".join(str(title or "").lower().replace("_", " ").split())
    if not text:
        return None
    for band, pattern in SENIORITY:
        if re.search(pattern, text):
            return band
    return "individual"




def contact_item(record: Mapping[str, Any]) -> tuple[ItemRecord, list[LinkRecord]]:
    """A contact (lifecycle stage and seniority as segments) and its link to its company."""
    rid = str(record["id"])
    p = record.get("properties") or {}
    ext = f"contact:{rid}"
    name = " ".join(str(p.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    segments = {}
    if p.get("lifecyclestage") not in (None, ""):
        segments["lifecycle_stage"] = str(p["lifecyclestage"])
    band = seniority(p.get("jobtitle"))
    if band:
        segments["seniority"] = band
    item = ItemRecord(external_id=ext, title=name or str(p.get("email") or ext),
                      kind="contact", segments=segments,
                      estimated_at=parse_time(p.get("createdate")),
                      source_updated_at=parse_time(p.get("lastmodifieddate")),
                      raw={"id": rid})
    links = [LinkRecord(ext, f"company:{c}", "company")
             for c in associated_ids(record, "companies")[:1]]
    return item, links


def company_item(record: Mapping[str, Any]) -> ItemRecord:
    """A company (industry, size band and region as segments)."""
    rid = str(record["id"])
    p = record.get("properties") or {}
    segments = {}
    if p.get("industry") not in (None, ""):
        segments["industry"] = str(p["industry"]).lower().replace("_", " ")
    band = employee_band(number(p.get("numberofemployees")))
    if band:
        segments["size_band"] = band
    region = p.get("country") or p.get("state")
    if region not in (None, ""):
        segments["region"] = str(region)
    return ItemRecord(external_id=f"company:{rid}", title=str(p.get("name") or p.get("domain")
                                                             or f"company {rid}"),
                      kind="company", segments=segments,
                      estimated_at=parse_time(p.get("createdate")),
                      source_updated_at=parse_time(p.get("hs_lastmodifieddate")),
                      raw={"id": rid})


def edit_distance(a: str, b: str) -> float:
    """The Levenshtein distance of two texts (by words) over the longer one's length, 0 to 1."""
    x, y = a.split(), b.split()
    if not x and not y:
        return 0.0
    if len(x) < len(y):
        x, y = y, x
    prev = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        cur = [i]
        for j, wy in enumerate(y, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wx != wy)))
        prev = cur
    return prev[-1] / max(len(x), 1)


def plain_text(html: Any) -> str:
    """The words of an email body (tags, entities and spacing dropped)."""
    text = re.sub(r"<[^>]+>", " ", str(html or ""))
    text = re.sub(r"&nbsp;|&#160;", " ", text)
    text = re.sub(r"&[a-z]+;|&#\d+;", "", text)
    return " ".join(text.split())
