"""Deals, contacts, companies and emails in the HubSpot emulator, through hubspot-api-client."""

from __future__ import annotations

import datetime as dt
import functools
import random
from pathlib import Path
from typing import Any

from core.contract import FIELDS, NOTE, TEMPLATE
from tests.emulators.hubspot.server import HubSpotEmulator

T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
INDUSTRIES = ("FINANCIAL_SERVICES", "COMPUTER_SOFTWARE", "RETAIL")
TITLES = ("VP Sales", "Chief Financial Officer", "Account Manager", "Engineer")


@functools.cache
def emulator() -> HubSpotEmulator:
    """One emulator per test session; each harness resets it."""
    emu = HubSpotEmulator()
    emu.start()
    return emu


def seed(emu: HubSpotEmulator, n: int = 12) -> dict[str, list[int]]:
    """`n` deals in the default pipeline (2 in 3 closed, 3 in 4 of those won), each with a
    company and a contact, close dates pushed and amounts changed on the way, and an outgoing
    email per contact (every other one replied to)."""
    emu.add_owner(501, "ana@example.com", "Ana", "Reyes")
    emu.add_owner(502, "bo@example.com", "Bo", "Lind")
    companies, contacts, deals, emails = [], [], [], []
    for c in range(3):
        rec = emu.add("companies", {"name": f"Company {c}", "industry": INDUSTRIES[c],
                                    "numberofemployees": str((c + 1) * 120),
                                    "country": ("Germany", "United States", "France")[c]},
                      created=T0 - 30 * DAY)
        companies.append(rec.id)
    for i in range(n):
        contact = emu.add("contacts", {"firstname": f"Pat{i}", "lastname": "Doe",
                                       "email": f"pat{i}@example.com",
                                       "jobtitle": TITLES[i % len(TITLES)],
                                       "lifecyclestage": "opportunity"},
                          created=T0 - 20 * DAY)
        contacts.append(contact.id)
        emu.associate("contacts", contact.id, "companies", companies[i % 3])
        created = T0 + i * DAY
        close = created + 30 * DAY
        pushed = close + (i % 4) * 7 * DAY
        closed = i % 3 != 2
        won = closed and i % 4 != 3
        stages: list[tuple[Any, Any]] = [("appointmentscheduled", created),
                                         ("contractsent", created + 10 * DAY)]
        if closed:
            stages.append(("closedwon" if won else "closedlost", pushed))
        amount = 1000 * (i + 1)
        deal = emu.add("deals", {
            "dealname": f"Deal {i}", "pipeline": "default", "dealtype": "newbusiness",
            "hubspot_owner_id": str(501 + i % 2),
            "hs_is_closed": str(closed).lower(), "hs_is_closed_won": str(won).lower()},
            created=created, modified=(pushed if closed else created + 12 * DAY),
            history={"dealstage": stages,
                     "closedate": [(_ms(close), created), (_ms(pushed), created + 11 * DAY)],
                     "amount": [(str(amount), created),
                                (str(amount * 1.2), created + 12 * DAY)]})
        deals.append(deal.id)
        emu.associate("deals", deal.id, "contacts", contact.id)
        emu.associate("deals", deal.id, "companies", companies[i % 3])
        sent = created + 2 * DAY
        email = emu.add("emails", {
            "hs_email_subject": f"Intro {i}", "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT", "hs_timestamp": _ms(sent),
            "hs_email_html": f"<p>Hello Pat{i}, a short note about efficiency.</p>",
            "hs_email_open_count": "1", "hs_email_reply_count": str(i % 2),
            "hubspot_owner_id": "501"}, created=sent)
        emails.append(email.id)
        emu.associate("emails", email.id, "contacts", contact.id)
        emu.associate("emails", email.id, "deals", deal.id)
    return {"companies": companies, "contacts": contacts, "deals": deals, "emails": emails}


def seed_outreach(emu: HubSpotEmulator, companies: int = 120, per_company: int = 6,
                  seed_value: int = 7) -> dict[str, Any]:
    """A sequence whose first step is an A/B test between two sales templates, sent once to
    each of `per_company` contacts of `companies` companies (half in financial services, half
    in retail). HubSpot draws the variant; financial services reply three times as often to
    'roi', retail the same to both."""
    rng = random.Random(seed_value)
    efficiency = emu.add_template("efficiency", "Save time every week",
                                  "<p>Teams like yours cut reporting time in half.</p>")
    roi = emu.add_template("roi", "A 3x return within a year",
                           "<p>Our customers see a 3x return within a year.</p>")
    seq = emu.add_sequence("Outbound Q1", 7, [
        {"actionType": "EMAIL", "templateId": efficiency["id"],
         "variants": [{"templateId": roi["id"]}]},
        {"actionType": "TASK", "subject": "Call"}])
    fin: list[int] = []
    for c in range(companies):
        industry = ("FINANCIAL_SERVICES", "RETAIL")[c % 2]
        company = emu.add("companies", {"name": f"Prospect {c}", "industry": industry,
                                        "numberofemployees": "250", "country": "Germany"},
                          created=T0 - 40 * DAY)
        if c % 2 == 0:
            fin.append(company.id)
        for k in range(per_company):
            contact = emu.add("contacts", {"firstname": f"Lee{c}-{k}", "lastname": "Park",
                                           "email": f"lee{c}-{k}@example.com",
                                           "jobtitle": TITLES[k % len(TITLES)],
                                           "lifecyclestage": "lead"}, created=T0 - 40 * DAY)
            emu.associate("contacts", contact.id, "companies", company.id)
            tpl = (efficiency, roi)[rng.random() < 0.5]
            rate = 0.6 if (c % 2 == 0 and tpl is roi) else 0.2
            sent = T0 - 30 * DAY + (c * per_company + k) * dt.timedelta(minutes=7)
            email = emu.add("emails", {
                "hs_email_subject": tpl["subject"], "hs_email_direction": "EMAIL",
                "hs_email_status": "SENT", "hs_timestamp": _ms(sent),
                "hs_email_html": tpl["body"], "hs_email_open_count": "1",
                "hs_email_reply_count": str(int(rng.random() < rate)),
                "hs_sequence_id": seq["id"], "hs_sequence_step_order": "0",
                "hs_template_id": tpl["id"], "hubspot_owner_id": "501"}, created=sent)
            emu.associate("emails", email.id, "contacts", contact.id)
    return {"sequence": seq["id"], "efficiency": efficiency["id"], "roi": roi["id"],
            "fin_companies": fin}


def _ms(when: dt.datetime) -> str:
    return str(int(when.timestamp() * 1000))


class HubSpotHarness:
    """A fresh emulated portal with twelve deals, their contacts, companies and emails."""

    sdk_modules = ("hubspot", "urllib3", "requests")

    def __init__(self, tmp_path: Path | None = None, n: int = 12) -> None:
        self.emu = emulator()
        self.emu.reset()
        self.ids = seed(self.emu, n)
        self.template_email: str | None = None

    def config(self) -> dict[str, Any]:
        return {"access_token": self.emu.token, "base_url": self.emu.base,
                "backoff_seconds": 0.01, "max_wait_seconds": 2, "timeout_seconds": 5}

    def mapping(self) -> dict[str, Any]:
        return {"segments": []}

    def targets(self, surface: str = FIELDS) -> list[str]:
        """Deals for item surfaces; for templates a marketing email (a draft), seeded on
        first use."""
        if surface == TEMPLATE:
            if self.template_email is None:
                email = self.emu.add_marketing_email("Outbound Q1", "Saving time",
                                                     "<p>Hello, we save you time.</p>")
                self.template_email = str(email["id"])
            return [f"marketing-email:{self.template_email}"]
        deals = self.ids["deals"]
        return [f"deal:{deals[0]}", f"deal:{deals[2]}", f"deal:{deals[-1]}"]

    def _deal(self, target: str) -> Any:
        rec = self.emu.get("deals", int(target.split(":")[1]))
        assert rec is not None
        return rec

    def notes(self, target: str) -> list[Any]:
        """The live notes associated with a deal, from the emulator's own state."""
        rid = int(target.split(":")[1])
        out = []
        for note_id in sorted(self.emu._links("deals", rid, "notes")):
            note = self.emu.get("notes", note_id)
            if note is not None and not note.archived:
                out.append(note)
        return out

    def count(self, target: str, surface: str) -> int:
        """Deal properties: values in properties named like learnloop's insight; notes: the
        deal's live notes."""
        if surface == FIELDS:
            rec = self._deal(target)
            return sum(1 for name, value in rec.props.items()
                       if name.startswith("learnloop_insight") and value)
        if surface == NOTE:
            return len(self.notes(target))
        if surface == TEMPLATE:
            return len(self.learnloop_drafts(target))
        raise ValueError(f"the HubSpot harness does not count {surface}")

    def learnloop_drafts(self, target: str) -> list[dict[str, Any]]:
        """Drafts (of the email and of any A/B variation of it) learnloop wrote: their names
        carry learnloop's version."""
        eid = target.split(":")[1]
        email = self.emu.marketing_emails[eid]
        test = (email.get("testing") or {}).get("testId")
        family = [eid] + [e["id"] for e in self.emu.marketing_emails.values()
                          if test and e["id"] != eid
                          and (e.get("testing") or {}).get("testId") == test]
        return [d for d in (self.emu.email_drafts.get(i) for i in family)
                if d is not None and "(learnloop v" in str(d.get("name"))]

    def read_back(self, target: str, surface: str) -> str:
        if surface == FIELDS:
            return str(self._deal(target).props.get("learnloop_insight"))
        if surface == NOTE:
            return " | ".join(str(n.props.get("hs_note_body")) for n in self.notes(target))
        if surface == TEMPLATE:
            return " | ".join(f"{d.get('name')}: {d.get('subject')}"
                              for d in self.learnloop_drafts(target))
        raise ValueError(f"the HubSpot harness does not read {surface}")

    def unexpected(self) -> list[str]:
        return list(self.emu.unexpected)
