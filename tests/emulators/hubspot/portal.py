"""A large, lazily generated sales portal for the HubSpot emulator (benchmarks and scale tests).

``seed_portal(emu, deals=100_000)`` seeds, without holding the records in memory:

- ``deals`` deals (ids from 10_000_001) in the default pipeline, ~70 % closed (won or lost),
  each with a dealstage history walking the stages, a closedate history (a third were pushed
  out once or twice) and an amount history (a fifth changed). One in seven deals shares one
  month-end modified date (``Portal.bulk_modified``): more than 10,000 records on one
  ``hs_lastmodifieddate`` at 100,000 deals, as after a bulk update.
- one contact per deal (ids from 20_000_001; job title, lifecycle stage), associated both ways.
- ``deals // 10`` companies (ids from 30_000_001; industry, size, country), each with its ten
  deals and contacts.
- ``emails_per_deal`` email engagements per deal (ids from 40_000_001), associated to the deal
  and its contact; they were sent by one of three sequences (``hs_sequence_id``), step = their
  order, template = the step's template or its A/B variant; a fifth had their body edited by
  the rep; opens, clicks and replies drawn per template.
- three sequences with their templates (and variants), and one enrollment per contact, answered
  by ``GET /automation/v4/sequences/enrollments/contact/{id}``.

Everything is a function of the index, so a benchmark can check what a connector read.
``python -m tests.emulators.hubspot.portal`` measures seeding time and memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.hubspot.server import DEAL_STAGES, HubSpotEmulator, iso

DEAL0, CONTACT0, COMPANY0, EMAIL0 = 10_000_001, 20_000_001, 30_000_001, 40_000_001
DAY = 86_400_000
START = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
BULK = int(dt.datetime(2025, 6, 30, 23, 0, tzinfo=dt.UTC).timestamp() * 1000)
OPEN_STAGES = [s for s, _, _ in DEAL_STAGES[:5]]
TITLES = ("CFO", "VP Finance", "Head of Operations", "Procurement Manager", "CTO",
          "Software Engineer", "Director of Sales", "Office Manager")
INDUSTRIES = ("COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL",
              "MANUFACTURING")
COUNTRIES = ("United States", "Germany", "United Kingdom", "France", "Canada")
TEMPLATE_BODIES = {
    "efficiency": "Hi {name}, teams like yours cut reporting time in half. Worth a chat?",
    "roi": "Hi {name}, our customers see a 3x return within a year. Can I show you how?",
    "social": "Hi {name}, three companies in your industry switched last quarter.",
    "followup": "Hi {name}, following up on my last note. Does Thursday work?",
    "breakup": "Hi {name}, I will stop writing after this one. Should I close your file?",
}


def mix(i: int, salt: int) -> int:
    """A cheap deterministic hash of the index (no random state to hold)."""
    x = (i * 2654435761 + salt * 40503) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    return x ^ (x >> 13)


@dataclass
class Portal:
    deals: int
    emails_per_deal: int
    companies: int
    owners: list[int] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk_modified: int = BULK

    @property
    def deal_ids(self) -> range:
        return range(DEAL0, DEAL0 + self.deals)

    @property
    def emails(self) -> int:
        return self.deals * self.emails_per_deal

    # ---- deals -----------------------------------------------------------------------------
    def deal_created(self, i: int) -> int:
        return START + (mix(i, 1) % 540) * DAY + (mix(i, 2) % DAY)

    def deal_modified(self, i: int) -> int:
        if i % 7 == 3:
            return self.bulk_modified
        return self.deal_created(i) + (30 + mix(i, 3) % 120) * DAY

    def deal_outcome(self, i: int) -> str:
        r = mix(i, 4) % 100
        return "closedwon" if r < 35 else "closedlost" if r < 70 else "open"

    def deal(self, i: int) -> tuple[dict[str, Any], int, dict[str, Any], dict[str, list[int]]]:
        created = self.deal_created(i)
        outcome = self.deal_outcome(i)
        reached = 2 + mix(i, 5) % 3 if outcome != "open" else 1 + mix(i, 5) % 4
        stages = [(OPEN_STAGES[k], created + k * 9 * DAY) for k in range(reached)]
        if outcome != "open":
            stages.append((outcome, created + reached * 9 * DAY + mix(i, 6) % (20 * DAY)))
        committed = created + (45 + mix(i, 7) % 30) * DAY
        closes = [(iso(committed), created)]
        for k in range(mix(i, 8) % 3 if mix(i, 9) % 3 == 0 else 0):
            closes.append((iso(committed + (k + 1) * 21 * DAY), created + (k + 2) * 10 * DAY))
        if outcome != "open":
            closes.append((iso(stages[-1][1]), stages[-1][1]))
        amount = 1000 * (5 + mix(i, 10) % 95)
        amounts: list[tuple[Any, int]] = [(str(amount), created)]
        if mix(i, 11) % 5 == 0:
            amounts.append((str(amount * (80 + mix(i, 12) % 40) // 100), created + 15 * DAY))
        props = {"dealname": f"Deal {i}", "pipeline": "default",
                 "dealtype": "newbusiness" if mix(i, 13) % 3 else "existingbusiness",
                 "hubspot_owner_id": str(self.owners[i % len(self.owners)]),
                 "hs_is_closed": str(outcome != "open").lower(),
                 "hs_is_closed_won": str(outcome == "closedwon").lower()}
        assocs = {"contacts": [CONTACT0 + i], "companies": [COMPANY0 + i % self.companies]}
        if self.emails_per_deal:
            assocs["emails"] = [EMAIL0 + i * self.emails_per_deal + k
                                for k in range(self.emails_per_deal)]
        return props, self.deal_modified(i), {"dealstage": stages, "closedate": closes,
                                              "amount": amounts}, assocs

    # ---- contacts and companies ------------------------------------------------------------
    def contact_modified(self, i: int) -> int:
        return self.deal_created(i) + (mix(i, 20) % 200) * DAY

    def contact(self, i: int) -> tuple[dict[str, Any], int, dict[str, Any], dict[str, list[int]]]:
        props = {"email": f"person{i}@company{i % self.companies}.test",
                 "firstname": f"Person{i}", "lastname": "Test",
                 "jobtitle": TITLES[mix(i, 21) % len(TITLES)],
                 "lifecyclestage": ("lead", "opportunity", "customer")[mix(i, 22) % 3]}
        assocs = {"deals": [DEAL0 + i], "companies": [COMPANY0 + i % self.companies]}
        if self.emails_per_deal:
            assocs["emails"] = [EMAIL0 + i * self.emails_per_deal + k
                                for k in range(self.emails_per_deal)]
        return props, self.contact_modified(i), {}, assocs

    def company(self, j: int) -> tuple[dict[str, Any], int, dict[str, Any], dict[str, list[int]]]:
        props = {"name": f"Company {j}", "domain": f"company{j}.test",
                 "industry": INDUSTRIES[mix(j, 30) % len(INDUSTRIES)],
                 "numberofemployees": str(10 * (1 + mix(j, 31) % 500)),
                 "country": COUNTRIES[mix(j, 32) % len(COUNTRIES)]}
        members = list(range(j, self.deals, self.companies))
        return props, START + (mix(j, 33) % 300) * DAY, {}, {
            "deals": [DEAL0 + i for i in members], "contacts": [CONTACT0 + i for i in members]}

    # ---- email engagements -----------------------------------------------------------------
    def sequence_of(self, i: int) -> dict[str, Any]:
        return self.sequences[mix(i, 40) % len(self.sequences)]

    def email_template(self, k: int) -> str:
        i, step = divmod(k, self.emails_per_deal)
        seq = self.sequence_of(i)
        steps = [s for s in seq["steps"] if s["actionType"] == "EMAIL"]
        chosen = steps[step % len(steps)]
        variants = chosen.get("variants") or []
        if variants and mix(k, 41) % 2:
            return str(variants[0]["emailPattern"]["templateId"])
        return str(chosen["emailPattern"]["templateId"])

    def email_modified(self, k: int) -> int:
        i, step = divmod(k, self.emails_per_deal)
        return self.deal_created(i) + (step * 3 + 1) * DAY + mix(k, 42) % DAY

    def email(self, k: int) -> tuple[dict[str, Any], int, dict[str, Any], dict[str, list[int]]]:
        i, step = divmod(k, self.emails_per_deal)
        template = self.templates[self.email_template(k)]
        body = template["body"].replace("{{contact.firstname}}", f"Person{i}")
        edited = mix(k, 43) % 5 == 0
        if edited:
            body += " I also saw your team is hiring; congratulations."
        rate = 20 + int(template["id"]) % 7 * 5 + (10 if edited else 0)
        opened = mix(k, 44) % 100 < 45
        replied = opened and mix(k, 45) % 100 < rate
        sent = self.email_modified(k)
        props = {"hs_email_subject": template["subject"], "hs_email_text": body,
                 "hs_email_direction": "EMAIL", "hs_email_status": "SENT",
                 "hs_timestamp": iso(sent), "hubspot_owner_id":
                     str(self.owners[i % len(self.owners)]),
                 "hs_email_sender_email": "rep@example.com",
                 "hs_email_to_email": f"person{i}@company{i % self.companies}.test",
                 "hs_email_open_count": str(1 + mix(k, 46) % 3 if opened else 0),
                 "hs_email_click_count": str(mix(k, 47) % 2 if opened else 0),
                 "hs_email_reply_count": str(int(replied)),
                 "hs_email_thread_id": f"t{i}", "hs_sequence_id": self.sequence_of(i)["id"],
                 "hs_sequence_step_order": str(step), "hs_template_id": template["id"]}
        return props, sent, {}, {"deals": [DEAL0 + i], "contacts": [CONTACT0 + i]}

    def enrollment(self, contact_id: str) -> dict[str, Any] | None:
        try:
            i = int(contact_id) - CONTACT0
        except ValueError:
            return None
        if not 0 <= i < self.deals:
            return None
        seq = self.sequence_of(i)
        when = iso(self.deal_created(i))
        return {"id": str(60_000_001 + i), "toEmail": f"person{i}@company{i % self.companies}.test",
                "enrolledAt": when, "updatedAt": when, "sequenceId": seq["id"],
                "sequenceName": seq["name"], "enrolledBy": "7",
                "enrolledByEmail": "rep@example.com"}


def seed_portal(emu: HubSpotEmulator, deals: int = 100_000, emails_per_deal: int = 3,
                companies: int | None = None) -> Portal:
    """Seed the portal described in the module docstring; returns what was seeded."""
    portal = Portal(deals, emails_per_deal, companies or max(1, deals // 10))
    for n, (first, last) in enumerate([("Rita", "Rep"), ("Sam", "Seller"), ("Alex", "AE")]):
        emu.add_owner(7 + n, f"{first.lower()}@example.com", first, last, user_id=7 + n)
        portal.owners.append(7 + n)
    emu.add_seat(7, "rep@example.com")
    for n, name in enumerate(TEMPLATE_BODIES):
        tpl = emu.add_template(name, f"{name.title()} for your team",
                               TEMPLATE_BODIES[name].replace("{name}", "{{contact.firstname}}"),
                               template_id=500 + n)
        portal.templates[tpl["id"]] = tpl
    plans: list[tuple[str, list[tuple[str, str | None]]]] = [
        ("Outbound Q1", [("500", "501"), ("503", None), ("504", None)]),
        ("Inbound follow-up", [("502", None), ("503", None)]),
        ("Enterprise", [("501", "502"), ("503", "500"), ("504", None)])]
    for n, (name, steps) in enumerate(plans):
        portal.sequences.append(emu.add_sequence(name, 7, [
            {"templateId": t, "delayMillis": k * 3 * DAY,
             "variants": [{"templateId": v}] if v else []} for k, (t, v) in enumerate(steps)],
            sequence_id=700 + n))
    emu.add_generated("deals", deals, portal.deal, first_id=DEAL0, modified=portal.deal_modified)
    emu.add_generated("contacts", deals, portal.contact, first_id=CONTACT0,
                      modified=portal.contact_modified)
    emu.add_generated("companies", portal.companies, portal.company, first_id=COMPANY0,
                      modified=lambda j: START + (mix(j, 33) % 300) * DAY)
    if emails_per_deal:
        emu.add_generated("emails", portal.emails, portal.email, first_id=EMAIL0,
                          modified=portal.email_modified)
    emu.enrollment_source = portal.enrollment
    return portal


def main() -> None:  # pragma: no cover - a measurement, run by hand
    import time
    import tracemalloc

    emu = HubSpotEmulator()
    started = time.perf_counter()
    portal = seed_portal(emu, deals=100_000, emails_per_deal=3)
    seconds = time.perf_counter() - started
    tracemalloc.start()  # a second seeding, traced (tracing slows it down many times)
    seed_portal(HubSpotEmulator(), deals=100_000, emails_per_deal=3)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"seeded {portal.deals:,} deals, {portal.deals:,} contacts, {portal.companies:,} "
          f"companies and {portal.emails:,} emails in {seconds:.2f} s; "
          f"{current / 2**20:.1f} MB held after seeding, {peak / 2**20:.1f} MB at the peak")
    started = time.perf_counter()
    for i in range(0, 100_000, 100):
        emu.get("deals", DEAL0 + i)
        emu.get("emails", EMAIL0 + 3 * i)
    print(f"materialised 1,000 deals and 1,000 emails in "
          f"{time.perf_counter() - started:.3f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
