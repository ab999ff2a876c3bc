"""An emulated Salesforce org with opportunities and their history, accounts, contacts,
activities, a campaign and a Sales Engagement cadence, through simple-salesforce."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from core.contract import FIELDS, NOTE, TEMPLATE
from tests.emulators.salesforce.server import SalesforceEmulator

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
INDUSTRIES = ("Finance", "Technology", "Retail")
COMMIT = "Proposal/Price Quote"


@functools.cache
def emulator() -> SalesforceEmulator:
    """One emulator per test session; each harness resets it."""
    emu = SalesforceEmulator()
    emu.start()
    return emu


def seed(emu: SalesforceEmulator, n: int = 12) -> dict[str, list[str]]:
    """`n` opportunities on 3 accounts (2 in 3 closed, 3 in 4 of those won), each with a
    contact, a history (created, committed at the proposal stage, the close date pushed by
    0-3 weeks and the amount raised, then closed), a call Task and a meeting; a campaign
    with a member per contact (every other one responded); a cadence whose email step has
    variants A and B (50/50) and a step tracker per contact."""
    accounts = [emu.add("Account", {"Name": f"Account {c}", "Industry": INDUSTRIES[c],
                                    "NumberOfEmployees": (c + 1) * 120,
                                    "BillingCountry": ("DE", "US", "FR")[c]},
                        created=T0 - 30 * DAY, modstamp=T0 - 30 * DAY) for c in range(3)]
    contacts, opportunities, members, trackers = [], [], [], []
    campaign = emu.add("Campaign", {"Name": "Spring webinar", "Type": "Webinar",
                                    "IsActive": True}, modstamp=T0 - 20 * DAY)
    cadence = emu.add("ActionCadence", {"Name": "Outbound Q1", "State": "Active"},
                      modstamp=T0 - 20 * DAY)
    step = emu.add("ActionCadenceStep", {"ActionCadenceId": cadence, "Name": "Email 1",
                                         "StepTitle": "Intro email", "Type": "SendAnEmail",
                                         "DayOffset": 0}, modstamp=T0 - 20 * DAY)
    intro = emu.add("EmailTemplate", {"Name": "Intro A", "DeveloperName": "Intro_A",
                                      "Subject": "Saving time", "Body": "We save you time.",
                                      "HtmlValue": "<p>We save you time.</p>",
                                      "TemplateType": "custom", "IsActive": True})
    efficient = emu.add("EmailTemplate", {"Name": "Intro B", "DeveloperName": "Intro_B",
                                          "Subject": "Running lean",
                                          "Body": "Operational efficiency first.",
                                          "HtmlValue": "<p>Operational efficiency first.</p>",
                                          "TemplateType": "custom", "IsActive": True})
    variants = [emu.add("ActionCadenceStepVariant", {"ActionCadenceStepId": step, "Name": name,
                                                     "SplitPercentage": 50, "TemplateId": tid,
                                                     "State": "Active"},
                        modstamp=T0 - 20 * DAY)
                for name, tid in (("A", intro), ("B", efficient))]
    for i in range(n):
        created = T0 + i * DAY
        contact = emu.add("Contact", {"FirstName": f"Pat{i}", "LastName": "Doe",
                                      "AccountId": accounts[i % 3], "Title": "VP Sales",
                                      "LeadSource": "Web"},
                          created=created, modstamp=created)
        contacts.append(contact)
        close = (created + 30 * DAY).date()
        pushed = close + dt.timedelta(days=7 * (i % 4))
        closed = i % 3 != 2
        won = closed and i % 4 != 3
        amount = 1000.0 * (i + 1)
        history = [{"StageName": "Prospecting", "Amount": amount, "CloseDate": close,
                    "Probability": 10, "CreatedDate": created},
                   {"StageName": COMMIT, "Amount": amount, "CloseDate": close,
                    "Probability": 75, "CreatedDate": created + 5 * DAY},
                   {"StageName": COMMIT, "Amount": amount * 1.2, "CloseDate": pushed,
                    "Probability": 75, "CreatedDate": created + 10 * DAY}]
        if closed:
            history.append({"StageName": "Closed Won" if won else "Closed Lost",
                            "Amount": amount * 1.2, "CloseDate": pushed,
                            "Probability": 100 if won else 0,
                            "CreatedDate": dt.datetime.combine(pushed, dt.time(12), dt.UTC)})
        last = history[-1]["CreatedDate"]
        opp = emu.add_opportunity({"Name": f"Deal {i}", "AccountId": accounts[i % 3],
                                   "Type": ("New Business", "Existing Business")[i % 2],
                                   "LeadSource": ("Web", "Partner")[i % 2]},
                                  history=history, modstamp=last)
        opportunities.append(opp)
        emu.add("Task", {"Subject": f"Call Pat{i}", "Status": "Completed", "Type": "Call",
                         "TaskSubtype": "Call", "ActivityDate": (created + 2 * DAY).date(),
                         "WhatId": opp, "WhoId": contact}, modstamp=created + 2 * DAY)
        emu.add("Event", {"Subject": f"Demo for Pat{i}", "StartDateTime": created + 3 * DAY,
                          "EndDateTime": created + 3 * DAY + dt.timedelta(hours=1),
                          "DurationInMinutes": 60, "WhatId": opp, "WhoId": contact},
                modstamp=created + 3 * DAY)
        members.append(emu.add("CampaignMember", {
            "CampaignId": campaign, "ContactId": contact,
            "Status": "Responded" if i % 2 else "Sent"}, modstamp=created + DAY))
        trackers.append(emu.add("ActionCadenceStepTracker", {
            "ActionCadenceId": cadence, "ActionCadenceName": "Outbound Q1",
            "ActionCadenceStepId": step, "ActionCadenceStepVariantId": variants[i % 2],
            "TargetId": contact, "State": "Completed" if i < n - 2 else "Active",
            "StepType": "SendAnEmail", "StepTitle": "Intro email",
            "CompletionReason": ("Replied" if i % 3 == 0 else "NoResponse")
            if i < n - 2 else None,
            "CompletionDate": created + 4 * DAY if i < n - 2 else None},
            created=created + DAY, modstamp=created + 4 * DAY))
    return {"accounts": accounts, "contacts": contacts, "opportunities": opportunities,
            "members": members, "trackers": trackers, "variants": variants, "step": [step],
            "templates": [intro, efficient], "cadence": [cadence]}


class SalesforceHarness:
    """A fresh emulated org seeded by `seed`."""

    sdk_modules = ("simple_salesforce", "zeep", "requests", "jwt")

    def __init__(self, tmp_path: Path | None = None, n: int = 12) -> None:
        self.emu = emulator()
        self.emu.reset()
        self.ids = seed(self.emu, n)

    def config(self) -> dict[str, Any]:
        emu = self.emu
        return {"domain": emu.domain, "consumer_key": emu.consumer_key,
                "username": emu.username, "private_key": emu.keys.private_key_pem,
                "login_url": emu.base, "ca_file": emu.ca_file, "backoff_seconds": 0.01,
                "max_wait_seconds": 0.5, "timeout_seconds": 10, "bulk_poll_seconds": 0.01}

    def mapping(self) -> dict[str, Any]:
        return {"segments": []}

    def targets(self, surface: str = FIELDS) -> list[str]:
        """Opportunities for item surfaces; an email template for templates."""
        if surface == TEMPLATE:
            return [f"email-template:{self.ids['templates'][0]}"]
        opps = self.ids["opportunities"]
        return [f"opportunity:{opps[0]}", f"opportunity:{opps[2]}", f"opportunity:{opps[-1]}"]

    def tasks(self, target: str) -> list[dict[str, Any]]:
        """learnloop's live Tasks on the record, from the emulator's own state."""
        rid = target.split(":")[1]
        return [t for t in self.emu.records("Task") if t.get("WhatId") == rid
                and str(t.get("Subject") or "").startswith("learnloop:")]

    def template(self, target: str) -> dict[str, Any]:
        return self.emu.get("EmailTemplate", target.split(":")[1])

    def count(self, target: str, surface: str) -> int:
        if surface == FIELDS:
            rec = self.emu.get("Opportunity", target.split(":")[1])
            return sum(1 for name, value in rec.items() if name.startswith("Learnloop_Insight")
                       and value)
        if surface == NOTE:
            return len(self.tasks(target))
        if surface == TEMPLATE:
            return sum(1 for t in self.emu.records("EmailTemplate")
                       if "(learnloop v" in str(t.get("Name")))
        raise ValueError(f"the Salesforce harness does not count {surface}")

    def read_back(self, target: str, surface: str) -> str:
        if surface == FIELDS:
            return str(self.emu.get("Opportunity", target.split(":")[1]).get(
                "Learnloop_Insight__c"))
        if surface == NOTE:
            return " | ".join(f"{t.get('Subject')}: {t.get('Description')}"
                              for t in self.tasks(target))
        if surface == TEMPLATE:
            t = self.template(target)
            return f"{t.get('Name')}: {t.get('Subject')}: {t.get('HtmlValue')}"
        raise ValueError(f"the Salesforce harness does not read {surface}")

    def unexpected(self) -> list[str]:
        return list(self.emu.unexpected) + self.emu.spec_errors
