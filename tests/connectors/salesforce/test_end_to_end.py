"""End to end: sync opportunities, accounts and a cadence from the emulated org, learn, write
back through the outbox, then accept the playbook the cadence's results propose: what a rep
and a cadence owner then see in Salesforce."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.salesforce import SalesforceConnector
from core import policy
from core.connections import add_connection
from core.model import Connection, Proposal, Template
from core.store import unit_of_work
from tests.connectors.salesforce.harness import COMMIT, DAY, T0, SalesforceHarness

TEST = "cadence Outbound Q1 step Intro email"


def _cadence_results(h: SalesforceHarness, per_arm: int = 60) -> None:
    """Prospects (each of their own account) through the cadence's email step, drawn 50/50:
    in finance, variant B (the efficiency angle) is replied to 3 times in 4 and A about
    once in 3; in retail A does a little better than B."""
    step, (a, b) = h.ids["step"][0], h.ids["variants"]
    for tracker in h.ids["trackers"]:  # the seed's few prospects share three accounts
        h.emu.delete("ActionCadenceStepTracker", tracker)
    rates = {("Finance", a): 0.35, ("Finance", b): 0.75, ("Retail", a): 0.5,
             ("Retail", b): 0.45}
    n = 0
    for k in range(per_arm):  # arms and segments interleaved in time, replies spread evenly
        for industry in ("Finance", "Retail"):
            for variant in (a, b):
                when = T0 + dt.timedelta(hours=3 * n)
                n += 1
                account = h.emu.add("Account", {"Name": f"Prospect {n}", "Industry": industry},
                                    created=when, modstamp=when)
                contact = h.emu.add("Contact", {"FirstName": f"Lee{n}", "LastName": "Roe",
                                                "AccountId": account},
                                    created=when, modstamp=when)
                rate = rates[(industry, variant)]
                replied = int((k + 1) * rate) > int(k * rate)
                h.emu.add("ActionCadenceStepTracker", {
                    "ActionCadenceId": h.ids["cadence"][0], "ActionCadenceName": "Outbound Q1",
                    "ActionCadenceStepId": step, "ActionCadenceStepVariantId": variant,
                    "TargetId": contact, "State": "Completed", "StepType": "SendAnEmail",
                    "StepTitle": "Intro email",
                    "CompletionReason": "Replied" if replied else "NoResponse",
                    "CompletionDate": when + 2 * DAY}, created=when, modstamp=when + 2 * DAY)


def test_sync_learn_write_back_and_accept_a_cadence_playbook(engine: Engine) -> None:
    h = SalesforceHarness(n=90)
    _cadence_results(h)
    with unit_of_work(engine) as s:
        add_connection(s, SalesforceConnector, "sf", h.config(), h.mapping(),
                       scope={"commit_on": {"opportunity": f"stage:{COMMIT}"}})
    report = runtime.sync(engine, "sf")
    assert report.quarantined == 0
    learned = runtime.learn(engine)
    assert learned.finished
    delivered = runtime.deliver(engine)
    assert delivered.delivered > 0 and delivered.dead == 0

    # What a rep sees on an open opportunity: learnloop's fields, filled in.
    opps = [h.emu.get("Opportunity", rid) for rid in h.ids["opportunities"]]
    open_opps = [o for o in opps if not o["IsClosed"]]
    assert open_opps
    for o in open_opps:
        assert o["Learnloop_P80_Close_Date__c"] >= o["CloseDate"]
        assert o["Learnloop_Slip_Risk__c"] in ("low", "medium", "high")
        assert "80% chance" in o["Learnloop_Insight__c"]
        assert 0 <= o["Learnloop_Win_Probability__c"] <= 100  # percent, from core's 0-1
    # ... and a completed Task where the risk is high, only one per change.
    tasked = [o for o in opps if h.tasks(f"opportunity:{o['Id']}")]
    high = [o for o in open_opps if o["Learnloop_Slip_Risk__c"] == "high"]
    assert {o["Id"] for o in high} <= {o["Id"] for o in tasked}
    assert all(len(h.tasks(f"opportunity:{o['Id']}")) == 1 for o in tasked)
    assert all(t["Status"] == "Completed" for o in tasked
               for t in h.tasks(f"opportunity:{o['Id']}"))
    runtime.learn(engine)
    runtime.deliver(engine)  # a second cycle repeats no Task
    assert all(len(h.tasks(f"opportunity:{o['Id']}")) == 1 for o in tasked)

    # The cadence owner accepts the playbook the cadence's results proposed.
    step, (intro, _) = h.ids["step"][0], h.ids["templates"]
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        for target in (f"cadence-step:{step}", f"email-template:{intro}"):
            s.add(Template(name=f"Outbound Q1 {target.split(':')[0]}", kind="sequence",
                           connection_id=conn.id, external_id=target, body={"test": TEST}))
        proposals = s.scalars(select(Proposal).where(
            Proposal.status == "pending", Proposal.change["rule_key"].as_string().like(
                f"playbook:{TEST}:%"))).all()
        assert proposals, "the cadence's results proposed no playbook"
        best = max(proposals, key=lambda p: len(p.change["rule_key"]))
        assert best.change["new"]["variant"] == "B"
        policy.accept(s, best.id, "owner@example.com", "efficiency wins")
    assert runtime.deliver(engine).dead == 0
    shares = {v["Name"]: v["SplitPercentage"] for v in h.emu.records("ActionCadenceStepVariant")}
    assert shares == {"A": 10, "B": 90}
    template = h.emu.get("EmailTemplate", intro)
    assert template["Subject"] == "Running lean"  # variant B's template, now the default
    assert template["Name"] == "Intro A (learnloop v2)"
    assert "owner@example.com" in template["HtmlValue"]
    assert h.unexpected() == []
