"""Email engagements as enrollments: the email a contact was sent is an item of kind
`enrollment`, assigned to an arm (the sequence step's template, or the A/B variation) of a
test (the sequence, else the template), with its outcome (sent, opened, replied).

The rep's edit is a signal: when the body sent differs from the template or variant it came
from, a `draft_edited` event records how much (a normalised edit distance, by words) and who
edited it, and the item carries the segment `edited` = yes/no so experiments compare edited
against unedited sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.hubspot import mapping as m
from connectors.hubspot.config import HubSpotConfig
from core.contract import EnrollmentRecord, EventRecord, ItemRecord, LinkRecord

OUTGOING = ("EMAIL", "FORWARDED_EMAIL")
SEQUENCE = "hs_sequence_id"
STEP = "hs_sequence_step_order"  # optional on HubSpot's side
TEMPLATE = "hs_template_id"  # optional on HubSpot's side
OPENED, REPLIED = "hs_email_open_count", "hs_email_reply_count"
ENROLLMENT_PROPERTIES = (SEQUENCE, STEP, TEMPLATE, OPENED, REPLIED)
REPLY_WINDOW_DAYS = 14  # an email not replied to this long after it was sent counts as no reply
EDITED = 0.05  # a normalised edit distance above this is an edited draft


def outcome_of(p: Mapping[str, Any]) -> str:
    """The furthest outcome an email reached by its own counters: replied, opened or sent."""
    if (m.number(p.get(REPLIED)) or 0) > 0:
        return "replied"
    if (m.number(p.get(OPENED)) or 0) > 0:
        return "opened"
    return "sent"


def email_records(record: Mapping[str, Any], contacts: Sequence[str], deals: Sequence[str],
                  config: HubSpotConfig, now: float,
                  template_body: Callable[[str], str | None] | None = None,
                  ab_arms: Callable[[str, str | None], frozenset[str]] | None = None
                  ) -> tuple[ItemRecord, EnrollmentRecord | None, list[LinkRecord],
                             list[EventRecord]] | None:
    """One outgoing email as an enrollment item, its enrollment (None when it came from no
    sequence or template: there is no arm to compare, its reply still counts per segment),
    links and events; None for an incoming email.

    The enrollment is randomised when its template is one of the A/B templates of its
    sequence step (`ab_arms(sequence, step)`): HubSpot drew which one the contact got."""
    rid = str(record["id"])
    p = record.get("properties") or {}
    if str(p.get("hs_email_direction") or "EMAIL").upper() not in OUTGOING:
        return None
    sequence = p.get(SEQUENCE)
    template = p.get(TEMPLATE)
    variation = None
    ext = f"email:{rid}"
    sent = m.parse_time(p.get("hs_timestamp")) or m.parse_time(p.get("hs_createdate"))
    step = p.get(STEP)
    test: str | None = None
    if sequence:
        test = f"sequence {sequence}" + (f" step {step}" if step not in (None, "") else "")
        arm = str(variation or template or "default")
    elif template:
        test = f"template {template}"
        arm = str(variation or "default")
    outcome = outcome_of(p)
    age_days = (now - sent.timestamp()) / 86400 if sent else REPLY_WINDOW_DAYS + 1
    settled = outcome == "replied" or age_days >= REPLY_WINDOW_DAYS
    segments = {"test": test[:100]} if test else {}
    events: list[EventRecord] = []
    found = template_body(str(template)) if template and template_body else None
    original = m.plain_text(found)
    body = m.plain_text(p.get("hs_email_html") or p.get("hs_email_text"))
    if original and body:
        distance = m.edit_distance(original, body)
        edited = distance > EDITED
        segments["edited"] = "yes" if edited else "no"
        if edited and sent is not None:
            owner = p.get("hubspot_owner_id")
            events.append(EventRecord(
                ext, f"{ext}:draft_edited", sent, m.DRAFT_EDITED,
                actor=str(owner) if owner not in (None, "") else None,
                attributes={"distance": round(distance, 3), "template": template,
                            "variation": variation, "words_sent": len(body.split()),
                            "words_template": len(original.split())}))
    item = ItemRecord(
        external_id=ext, title=str(p.get("hs_email_subject") or ext), kind="enrollment",
        segments=segments, status="done" if settled else "open",
        planned_start=sent, actual_start=sent, estimated_at=sent,
        actual_end=sent if settled else None, outcome=outcome if settled else None,
        source_updated_at=m.parse_time(p.get("hs_lastmodifieddate")),
        raw={"id": rid, "template": template, "variation": variation})
    unit = f"contact:{contacts[0]}" if contacts else None
    drawn = bool(sequence and template and ab_arms
                 and str(template) in ab_arms(str(sequence), None if step in (None, "")
                                              else str(step)))
    enrollment = EnrollmentRecord(ext, test[:200], arm[:200], unit=unit, assigned_at=sent,
                                  random=bool(variation) or drawn) if test else None
    links = [LinkRecord(ext, f"contact:{c}", "enrollment_of") for c in contacts[:1]]
    links += [LinkRecord(ext, f"deal:{d}", "deal") for d in deals[:1]]
    return item, enrollment, links, events
