"""The HubSpot connector through hubspot-api-client against the local HubSpot emulator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.client import Hub, HubSpotError
from connectors.hubspot.sync import Reader
from core.connections import add_connection
from core.contract import FIELDS, NOTE, Intent
from core.errors import ConnectorError
from core.model import Connection, Enrollment, Event, Item, ItemLink
from core.store import unit_of_work
from core.sync import run_sync
from tests.connectors.hubspot.harness import DAY, T0, HubSpotHarness


def _connector(h: HubSpotHarness, **over: Any) -> HubSpotConnector:
    return HubSpotConnector(HubSpotConfig(**{**h.config(), **over}), h.mapping())


def _add(engine: Engine, h: HubSpotHarness, name: str = "crm",
         scope: dict[str, Any] | None = None) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, HubSpotConnector, name, h.config(), h.mapping(), scope=scope)


def test_sync_maps_deals_contacts_companies_and_emails(engine: Engine) -> None:
    h = HubSpotHarness()
    _add(engine, h)
    kept = _connector(h)
    report = run_sync(engine, "crm", kept)
    assert report.quarantined == 0
    assert report.created == 12 + 12 + 3 + 12  # deals, contacts, companies, emails
    deals = h.ids["deals"]
    with unit_of_work(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
        won = items[f"deal:{deals[0]}"]  # closed won, close date pushed 0 weeks
        assert won.kind == "deal" and won.status == "done" and won.outcome == "won"
        assert won.actual_amount == pytest.approx(1200.0)
        assert won.segments == {"pipeline": "Sales Pipeline", "dealtype": "newbusiness",
                                "owner": "ana@example.com"}
        lost = items[f"deal:{deals[3]}"]
        assert lost.outcome == "lost" and lost.actual_amount is None
        assert lost.planned_due == T0 + 3 * DAY + 30 * DAY + 21 * DAY
        open_deal = items[f"deal:{deals[2]}"]
        assert open_deal.status == "open" and open_deal.planned_probability == pytest.approx(0.9)
        contact = items[f"contact:{h.ids['contacts'][1]}"]
        assert contact.segments == {"lifecycle_stage": "opportunity", "seniority": "c-level"}
        company = items[f"company:{h.ids['companies'][0]}"]
        assert company.segments == {"industry": "financial services", "size_band": "51-200",
                                    "region": "Germany"}
        email = items[f"email:{h.ids['emails'][1]}"]
        assert email.kind == "enrollment" and email.status == "done"
        assert email.outcome == "replied"
        assert items[f"email:{h.ids['emails'][0]}"].outcome == "opened"
        links = {(lk.from_external_id, lk.relation, lk.to_external_id)
                 for lk in s.scalars(select(ItemLink))}
        assert (f"deal:{deals[0]}", "contact", f"contact:{h.ids['contacts'][0]}") in links
        assert (f"deal:{deals[0]}", "company", f"company:{h.ids['companies'][0]}") in links
        assert (f"email:{h.ids['emails'][0]}", "enrollment_of",
                f"contact:{h.ids['contacts'][0]}") in links
        assert (f"contact:{h.ids['contacts'][0]}", "company",
                f"company:{h.ids['companies'][0]}") in links
        kinds = {(e.kind, (e.attributes or {}).get("field")) for e in s.scalars(select(Event))}
        assert kinds == {("status_changed", None), ("plan_changed", "planned_due"),
                         ("plan_changed", "planned_amount")}
    before = len(h.emu.requests)
    again = run_sync(engine, "crm", kept)
    assert again.created == again.updated == again.events == 0
    assert len(h.emu.requests) - before <= 2  # a sync with no change: two searches
    assert h.emu.unexpected == []


def test_the_committed_plan_is_the_one_at_the_commit_stage(engine: Engine) -> None:
    h = HubSpotHarness(n=4)
    _add(engine, h, scope={"commit_on": {"deal": "stage:Contract Sent"}})
    run_sync(engine, "crm", _connector(h))
    deal = h.ids["deals"][1]  # created T0+1d, contract sent T0+11d, close date pushed at 12d
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == f"deal:{deal}")).one()
        assert item.committed_at == T0 + 11 * DAY
        assert item.committed_plan is not None
        committed = dt.datetime.fromisoformat(item.committed_plan["planned_due"])
        assert committed == T0 + DAY + 30 * DAY  # pushed a week later, after the commitment
        assert item.planned_due == T0 + DAY + 37 * DAY
        assert item.committed_plan["planned_amount"] == pytest.approx(2000.0)  # before +20%
        assert item.planned_amount == pytest.approx(2400.0)


def test_incremental_sync_searches_from_the_watermark_with_a_lookback(engine: Engine) -> None:
    h = HubSpotHarness(n=4)
    _add(engine, h)
    kept = _connector(h)
    run_sync(engine, "crm", kept)
    deal = h.emu.get("deals", h.ids["deals"][2])
    assert deal is not None
    kept.hub.json("move a deal", kept.hub.api("crm.objects.basic_api").update, "deals",
                  str(deal.id), {"properties": {"dealstage": "closedwon"}})
    report = run_sync(engine, "crm", kept)
    assert report.updated >= 1 and report.created == 0
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == f"deal:{deal.id}")).one()
        assert item.status == "done" and item.outcome == "won"
    searches = h.emu.calls("POST", "/crm/v3/objects/deals/search")
    assert searches and all(c.status == 200 for c in searches)
    assert h.emu.unexpected == []


@pytest.mark.slow
def test_windows_never_hit_the_wall_and_page_a_saturated_timestamp_by_id() -> None:
    h = HubSpotHarness(n=0)
    h.emu.search_per_second = None
    stamp = int(T0.timestamp() * 1000)
    h.emu.add_generated("deals", 10_450, lambda i: (
        {"dealname": f"bulk {i}"}, stamp if i < 10_300 else stamp + 1000 * i, {}, {}))
    hub = Hub(HubSpotConfig(**{**h.config(), "search_per_second": 1000}))
    reader = Reader(hub.config, {}, hub)
    seen: list[str] = []
    states = []
    for results, state in reader.windows("deals", {"since": None, "pin": None},
                                         ["hs_object_id"], []):
        seen += [r["id"] for r in results]
        states.append(state)
    assert len(set(seen)) == 10_450
    assert any(s.get("pin") for s in states)  # the saturated timestamp was paged by id
    assert all(c.status == 200 for c in h.emu.calls("POST", "/crm/v3/objects/deals/search"))
    assert len(seen) - len(set(seen)) <= 10_000  # the saturated window is read again, once


def test_fields_in_batches_of_100_and_207_failures_retried_alone() -> None:
    h = HubSpotHarness(n=0)
    ids = [h.emu.add("deals", {"dealname": f"d{i}"}).id for i in range(150)]
    conn = _connector(h)
    conn.install()
    h.emu.fail_update_ids = {str(ids[7])}
    intents = [Intent(n, f"deal:{rid}", FIELDS, {"risk": "high", "insight": f"slips {n}"})
               for n, rid in enumerate(ids, 1)]
    results = conn.deliver(intents)
    bad = [r for r in results if not r.ok]
    assert len(results) == 150 and [r.intent_id for r in bad] == [8]
    assert bad[0].permanent and "deal" in (bad[0].error or "")
    updates = h.emu.calls("POST", "/crm/v3/objects/deals/batch/update")
    assert len(updates) == 3  # 100, 50, and the failed record alone
    rec = h.emu.get("deals", ids[0])
    assert rec is not None and rec.props["learnloop_slip_risk"] == "high"
    assert rec.props["learnloop_insight"] == "slips 1"


def test_one_note_per_deal_edited_in_place() -> None:
    h = HubSpotHarness(n=2)
    conn = _connector(h)
    target = f"deal:{h.ids['deals'][0]}"
    payload = {"reason": "risk", "status": "open", "risk": "high", "subject": "learnloop: risk",
               "body": "risk is high"}
    (first,) = conn.deliver([Intent(1, target, NOTE, payload)])
    (again,) = conn.deliver([Intent(2, target, NOTE, {**payload, "body": "risk is medium"})])
    (edit,) = conn.deliver([Intent(3, target, NOTE, {**payload, "body": "now low"},
                                   first.tool_ref)])
    assert first.ok and again.tool_ref == first.tool_ref == edit.tool_ref
    assert h.count(target, NOTE) == 1 and "now low" in h.read_back(target, NOTE)
    assert h.emu.unexpected == []


def test_429_storms_and_5xx_on_search_and_batch_lose_nothing(engine: Engine) -> None:
    h = HubSpotHarness(n=6)
    _add(engine, h)
    kept = _connector(h)
    run_sync(engine, "crm", kept)
    for rid in h.ids["deals"]:
        kept.hub.json("touch", kept.hub.api("crm.objects.basic_api").update, "deals",
                      str(rid), {"properties": {"dealname": f"renamed {rid}"}})
    h.emu.throttle(2, policy="SECONDLY", match="POST /crm/v3/objects/deals/search")
    h.emu.throttle(2, policy="TEN_SECONDLY_ROLLING", retry_after=0,
                   match="POST /crm/v3/objects/deals/batch/read")
    h.emu.fail_5xx(2, status=502, match="POST /crm/v4/associations")
    report = run_sync(engine, "crm", kept)
    assert report.updated == 6
    with unit_of_work(engine) as s:
        names = set(s.scalars(select(Item.title).where(Item.kind == "deal")))
    assert names == {f"renamed {rid}" for rid in h.ids["deals"]}
    h.emu.throttle(2, policy="TEN_SECONDLY_ROLLING",
                   match="POST /crm/v3/objects/deals/batch/update")
    results = kept.deliver([Intent(n, f"deal:{rid}", FIELDS, {"risk": "low"})
                            for n, rid in enumerate(h.ids["deals"], 1)])
    assert all(r.ok for r in results)
    statuses = [c.status for c in h.emu.calls("POST", "/crm/v3/objects/deals/batch/update")]
    assert statuses.count(429) == 2 and statuses.count(200) == 1


def test_the_daily_limit_fails_with_a_wait_and_no_secret() -> None:
    h = HubSpotHarness(n=1)
    conn = _connector(h)
    h.emu.throttle(1, policy="DAILY", match="POST /crm/v3/objects/deals/batch/update")
    (res,) = conn.deliver([Intent(1, f"deal:{h.ids['deals'][0]}", FIELDS, {"risk": "low"})])
    assert not res.ok and not res.permanent and res.retry_after and res.retry_after > 0
    assert "daily" in (res.error or "") and h.emu.token not in (res.error or "")


def test_a_missing_scope_is_one_plain_line() -> None:
    h = HubSpotHarness(n=1)
    scopes = {s for s in h.emu.tokens[h.emu.token].scopes if s != "crm.schemas.deals.write"}
    h.emu.add_token("pat-na1-limited", scopes)
    conn = _connector(h, access_token="pat-na1-limited")
    with pytest.raises(ConnectorError) as err:
        conn.install()
    message = str(err.value)
    assert "\n" not in message and "crm.schemas.deals.write" in message
    assert "deal properties" in message and "pat-na1" not in message


def test_a_bad_token_is_reported_in_words() -> None:
    h = HubSpotHarness(n=1)
    health = _connector(h, access_token="pat-na1-wrong").check()
    assert not health.ok and "401" in health.message and "wrong" not in health.message


def test_a_crash_between_pages_resumes_without_loss_or_duplicates(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.hubspot import sync

    monkeypatch.setattr(sync, "GROUP", 60)  # 120 deals: batches of 60+ records
    h = HubSpotHarness(n=120)
    _add(engine, h)
    conn = _connector(h)
    pages = conn.pull(None)
    first = next(pages)
    assert first.cursor is not None and first.cursor["deals"].get("list")
    assert len([i for i in first.items if i.external_id.startswith("deal:")]) == 100
    resumed = list(conn.pull(first.cursor))
    ids = [i.external_id for b in [first, *resumed] for i in b.items
           if i.external_id.startswith("deal:")]
    assert len(ids) == len(set(ids)) == 120


def test_malformed_and_archived_deals(engine: Engine) -> None:
    h = HubSpotHarness(n=3)
    h.emu.add("deals", {"dealname": "bad", "closedate": "not a date", "amount": "lots",
                        "pipeline": "default", "dealstage": "appointmentscheduled"})
    _add(engine, h)
    kept = _connector(h)
    report = run_sync(engine, "crm", kept)
    assert report.quarantined == 0  # unreadable values are left empty, the deal is kept
    gone = h.ids["deals"][0]
    kept.hub.json("archive", kept.hub.api("crm.objects.basic_api").archive, "deals", str(gone))
    with unit_of_work(engine) as s:  # the next sync is due to reconcile
        from core.model import Connection

        conn = s.scalars(select(Connection)).one()
        conn.cursor = {**conn.cursor, "reconciled_ms": 0}
    report = run_sync(engine, "crm", kept)
    assert report.deleted == 1
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == f"deal:{gone}")).one()
        assert item.deleted


def _move_company(h: HubSpotHarness, deal_id: int, company_id: int) -> None:
    """Re-associate a deal with another company (in the emulator's own state)."""
    with h.emu.lock:
        for old in list(h.emu.assoc.get(("deals", deal_id), {}).get("companies", {})):
            del h.emu.assoc[("deals", deal_id)]["companies"][old]
            h.emu.assoc.get(("companies", old), {}).get("deals", {}).pop(deal_id, None)
    h.emu.associate("deals", deal_id, "companies", company_id)


def test_end_to_end_sync_learn_write_back(engine: Engine, learnloop_home: Any) -> None:
    """Deals, contacts, companies and sequence enrollments in; learn; write back: what a rep
    then sees on deals and contacts, and what a template owner sees after accepting the
    playbook the run proposed."""
    from core import policy
    from core.model import Proposal, Template
    from tests.connectors.hubspot.harness import seed_outreach

    h = HubSpotHarness(n=120)
    out = seed_outreach(h.emu)  # 120 prospect companies, 720 A/B-tested sends
    open_ids = [rid for rid in h.ids["deals"]
                if h.emu.get("deals", rid).props.get("hs_is_closed") == "false"]
    fin_deals = open_ids[::2]  # half the open deals are with a financial-services prospect
    for k, rid in enumerate(fin_deals):
        _move_company(h, rid, out["fin_companies"][k % len(out["fin_companies"])])
    config = _oauth(h)  # a user-level app: it may read the A/B test and the sales templates
    with unit_of_work(engine) as s:
        add_connection(s, HubSpotConnector, "crm", config, h.mapping())
    main = h.emu.add_marketing_email("Outbound Q1", "Saving time", "<p>We save time.</p>")
    test = f"sequence {out['sequence']} step 0"
    with unit_of_work(engine) as s:
        conn_id = s.scalars(select(Connection.id)).one()
        s.add(Template(name="Outbound Q1", kind="sequence", connection_id=conn_id,
                       external_id=f"marketing-email:{main['id']}", body={"test": test}))

    runtime.sync(engine, "crm")
    with unit_of_work(engine) as s:
        kinds: dict[str, int] = {}
        for item in s.scalars(select(Item)):
            kinds[item.kind or ""] = kinds.get(item.kind or "", 0) + 1
        assert kinds == {"deal": 120, "contact": 120 + 720, "company": 3 + 120,
                         "enrollment": 120 + 720}
        enrolled = s.scalars(select(Enrollment)).all()
        assert len(enrolled) == 720 and {e.test for e in enrolled} == {test}
        assert {e.arm for e in enrolled} == {out["efficiency"], out["roi"]}
        assert all(e.random for e in enrolled)  # HubSpot drew the variant: a real test

    learned = runtime.learn(engine)
    assert learned.finished.get("deal/finish", 0) >= 60 and "deal/won" in learned.models
    assert any(t["test"] == test and t["randomized"] for t in learned.experiments["tests"])
    delivered = runtime.deliver(engine)
    assert delivered.delivered > 0 and delivered.dead == 0

    # What a rep sees on an open deal: P80 close date, risk band, win probability, insight;
    # on a deal with a financial-services prospect, the variant to send.
    seen = {rid: h.emu.get("deals", rid).props for rid in open_ids}
    assert all(p.get("learnloop_p80_close_date") for p in seen.values())
    assert all(p.get("learnloop_slip_risk") in ("low", "medium", "high") for p in seen.values())
    assert all(0 < float(p["learnloop_win_probability"]) < 1 for p in seen.values())
    assert all("win probability " in p["learnloop_insight"] and "n=" in p["learnloop_insight"]
               for p in seen.values())
    roi = out["roi"]
    # the variant as a rep reads it: the sales template's name (a user-level token may read
    # it), with its id
    label = f"roi (template {roi})"
    assert all(seen[rid].get("learnloop_recommended_variant") == label for rid in fin_deals)
    assert all(seen[rid].get("learnloop_recommended_variant") != label  # retail: not roi
               for rid in open_ids if rid not in fin_deals)
    assert f"send {roi} ('{test}', industry=financial services: {roi} beats" in \
        seen[fin_deals[0]]["learnloop_insight"]
    # ... and on a contact of a financial-services prospect.
    fin_contacts = [c for c in h.emu._links("companies", out["fin_companies"][0], "contacts")]
    assert fin_contacts and all(
        h.emu.get("contacts", c).props.get("learnloop_recommended_variant") == label
        for c in fin_contacts)
    closed = [rid for rid in h.ids["deals"] if rid not in open_ids]
    assert all(not h.emu.get("deals", rid).props.get("learnloop_win_probability")
               for rid in closed)
    noted = [rid for rid in h.ids["deals"] if h.notes(f"deal:{rid}")]
    assert noted and all(len(h.notes(f"deal:{rid}")) == 1 for rid in noted)
    assert all("[learnloop note]" in str(n.props.get("hs_note_body"))
               for rid in noted for n in h.notes(f"deal:{rid}"))

    # The template owner accepts the playbook the run proposed for financial services...
    key = f"playbook:{test}:industry=financial services"
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(Proposal.dedupe_key == key)).one()
        assert prop.change["new"]["variant"] == roi
        policy.accept(s, prop.id, "owner@example.com", "the numbers hold up")
        prop_id = prop.id
    assert runtime.deliver(engine).dead == 0
    # ... and sees an A/B variation of the marketing email, as a draft carrying the winning
    # template's subject and body, named with learnloop's version and why; the live email is
    # untouched and nothing was published.
    variants = [e for e in h.emu.marketing_emails.values()
                if (e.get("testing") or {}).get("abStatus") == "variant"]
    assert len(variants) == 1
    draft = h.emu.email_drafts[variants[0]["id"]]
    assert draft["subject"] == "A 3x return within a year"
    assert "3x return" in str(draft["content"]["widgets"])
    assert f"(learnloop v2: proposal #{prop_id} accepted by owner@example.com" in draft["name"]
    assert "financial services" in draft["name"]
    live = h.emu.marketing_emails[str(main["id"])]
    assert live["subject"] == "Saving time" and not live["isPublished"]

    runtime.learn(engine)
    runtime.deliver(engine)
    assert all(len(h.notes(f"deal:{rid}")) <= 1 for rid in h.ids["deals"])  # edited in place
    assert h.emu.unexpected == []


def test_hubspot_error_carries_status_and_wait() -> None:
    err = HubSpotError("x", 429, 3.0)
    assert err.retry_after == 3.0 and not err.permanent


def _template(engine: Engine, external_id: str, name: str = "Outbound Q1") -> None:
    from core.model import Connection, Template

    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        s.add(Template(name=name, kind="sequence", connection_id=conn.id,
                       external_id=external_id, body={"test": "seq1"}))


def _accept(engine: Engine, key: str, selector: dict[str, Any], variant: str) -> None:
    from core import policy

    with unit_of_work(engine) as s:
        prop = policy.propose(s, key=key, selector=selector, params={"variant": variant},
                              hypothesis=f"variant {variant} gets 1.4x the replies (n=400)",
                              evidence={"n": 400}, title=f"send {variant}")
        assert prop is not None
        policy.accept(s, prop.id, "owner@example.com", "ok")


def test_an_accepted_playbook_updates_the_marketing_email_draft(engine: Engine) -> None:
    h = HubSpotHarness(n=2)
    main = h.emu.add_marketing_email("Outbound Q1", "Saving time", "<p>We save time.</p>")
    winner = h.emu.add_marketing_email("Efficiency", "Cut costs by 20%",
                                       "<p>Efficiency for finance teams.</p>")
    _add(engine, h)
    _template(engine, f"marketing-email:{main['id']}")
    _accept(engine, "playbook:seq1:all", {}, str(winner["id"]))
    assert runtime.deliver(engine).dead == 0
    draft = h.emu.email_drafts[str(main["id"])]
    assert draft["subject"] == "Cut costs by 20%"  # what the owner reviews, then publishes
    assert "Efficiency for finance teams" in str(draft["content"])
    assert "(learnloop v2: proposal #" in draft["name"] and "1.4x the replies" in draft["name"]
    live = h.emu.marketing_emails[str(main["id"])]
    assert live["subject"] == "Saving time" and not live["isPublished"]
    _accept(engine, "playbook:seq1:industry=financial services",
            {"industry": "financial services"}, str(winner["id"]))
    assert runtime.deliver(engine).dead == 0
    variants = [e for e in h.emu.marketing_emails.values()
                if (e.get("testing") or {}).get("abStatus") == "variant"]
    assert len(variants) == 1
    vdraft = h.emu.email_drafts[variants[0]["id"]]
    assert vdraft["subject"] == "Cut costs by 20%" and "financial services" in vdraft["name"]
    assert h.emu.unexpected == []


def test_a_sequence_playbook_is_a_checklist_with_a_private_app(engine: Engine) -> None:
    from core.model import WriteIntent

    h = HubSpotHarness(n=2)
    _add(engine, h)
    _template(engine, "sequence:77")
    _accept(engine, "playbook:seq1:industry=financial services",
            {"industry": "financial services"}, "efficiency")
    runtime.deliver(engine)
    with unit_of_work(engine) as s:
        intent = s.scalars(select(WriteIntent).where(WriteIntent.surface == "template")).one()
        assert intent.status == "checklist" and intent.checklist is not None
        steps = list(intent.checklist)
    assert any("In sequence 'Outbound Q1', for industry=financial services: use template "
               "'efficiency'" in step for step in steps)
    assert not h.emu.calls(prefix="/automation")  # nothing was tried on the API


def _oauth(h: HubSpotHarness) -> dict[str, Any]:
    from tests.emulators.hubspot.server import ALL_SCOPES, USER_SCOPES

    h.emu.add_oauth_app("app-1", "app-secret-1", "refresh-1", ALL_SCOPES | USER_SCOPES)
    config = {k: v for k, v in h.config().items() if k != "access_token"}
    return {**config, "client_id": "app-1", "client_secret": "app-secret-1",
            "refresh_token": "refresh-1"}


def test_oauth_tokens_are_refreshed_stored_encrypted_and_edits_are_signals(
        engine: Engine, learnloop_home: Any) -> None:
    h = HubSpotHarness(n=2)
    tpl = h.emu.add_template("efficiency", "Save time", "<p>Hello there, a short note about "
                             "efficiency and saving your team time every week.</p>")
    edited, plain = h.ids["emails"]
    for rid, body in ((edited, "<p>Hi Pat, I saw your post on hiring: a short note about "
                               "efficiency for your team.</p>"),
                      (plain, tpl["body"])):
        rec = h.emu.get("emails", rid)
        assert rec is not None
        rec.props.update({"hs_template_id": tpl["id"], "hs_sequence_id": "77",
                          "hs_email_html": body})
    config = _oauth(h)
    with unit_of_work(engine) as s:
        add_connection(s, HubSpotConnector, "crm", config, {})
    conn = HubSpotConnector(HubSpotConfig(**config), {})
    report = run_sync(engine, "crm", conn)
    assert report.created == 2 + 2 + 2 + 2
    stored = list(learnloop_home.glob("hubspot-oauth-*.enc"))
    assert len(stored) == 1 and "oauth-" not in stored[0].read_text()  # encrypted
    with unit_of_work(engine) as s:
        events = s.scalars(select(Event).where(Event.kind == "draft_edited")).all()
        assert len(events) == 1 and 0.3 < events[0].attributes["distance"] <= 1
        items = {i.external_id: i for i in s.scalars(select(Item).where(
            Item.kind == "enrollment"))}
        assert items[f"email:{edited}"].segments["edited"] == "yes"
        assert items[f"email:{plain}"].segments["edited"] == "no"
        arms = {(e.test, e.arm) for e in s.scalars(select(Enrollment))}
        assert arms == {("sequence 77", tpl["id"])}
    assert h.emu.unexpected == []


def test_a_sequence_is_updated_through_the_beta_api_with_a_user_level_token(
        engine: Engine) -> None:
    h = HubSpotHarness(n=1)
    old = h.emu.add_template("saving time", "Save time", "<p>Save time.</p>")
    new = h.emu.add_template("efficiency", "Cut costs", "<p>Cut costs.</p>")
    seq = h.emu.add_sequence("Outbound Q1", 7, [{"actionType": "EMAIL",
                                                 "templateId": old["id"]},
                                                {"actionType": "TASK", "subject": "Call"}])
    config = _oauth(h)
    with unit_of_work(engine) as s:
        add_connection(s, HubSpotConnector, "crm", config, {})
    _template(engine, f"sequence:{seq['id']}")
    _accept(engine, "playbook:seq1:all", {}, str(new["id"]))
    assert runtime.deliver(engine).dead == 0
    steps = h.emu.sequences[str(seq["id"])]["steps"]
    assert steps[0]["emailPattern"]["templateId"] == str(new["id"])
    assert steps[1]["actionType"] == "TASK"
    assert h.emu.unexpected == []


def test_a_property_renamed_under_us_is_provisioned_again_and_written() -> None:
    h = HubSpotHarness(n=1)
    conn = _connector(h)
    conn.install()
    h.emu.rename_property("deals", "learnloop_insight", "old_insight")
    target = f"deal:{h.ids['deals'][0]}"
    (res,) = conn.deliver([Intent(1, target, FIELDS, {"insight": "slips 9 days"})])
    assert res.ok
    assert h.read_back(target, FIELDS) == "slips 9 days"
    assert "learnloop_insight" in h.emu.properties["deals"]


def test_a_stalled_answer_times_out_and_is_retried_later() -> None:
    h = HubSpotHarness(n=1)
    conn = _connector(h, timeout_seconds=0.5, max_retries=1)
    conn.install()
    h.emu.stall("POST /crm/v3/objects/deals/batch/update")
    try:
        (res,) = conn.deliver([Intent(1, f"deal:{h.ids['deals'][0]}", FIELDS,
                                      {"risk": "low"})])
    finally:
        h.emu.unstall.set()
    assert not res.ok and not res.permanent
    assert "did not answer" in (res.error or "") and "\n" not in (res.error or "")
    h.emu.reset_faults()
    (again,) = conn.deliver([Intent(2, f"deal:{h.ids['deals'][0]}", FIELDS, {"risk": "low"})])
    assert again.ok


def test_a_recommended_variant_is_written_with_its_template_name(learnloop_home: Any) -> None:
    """A rep reads the variant to send by name; without a user-level token (a private app
    may not read sales templates) or for a template that is gone, as 'email template N'."""
    from connectors.hubspot.writeback import variant_label

    h = HubSpotHarness(n=1)
    tpl = h.emu.add_template("roi", "A 3x return", "<p>Numbers.</p>")
    private = Hub(HubSpotConfig(**h.config()), sleep=lambda _: None)
    seen: dict[str, str] = {}
    assert variant_label(private, str(tpl["id"]), seen) == f"email template {tpl['id']}"
    assert variant_label(private, "default", seen) == "default"
    user = Hub(HubSpotConfig(**_oauth(h)), token_dir=learnloop_home, sleep=lambda _: None)
    seen = {}
    assert variant_label(user, str(tpl["id"]), seen) == f"roi (template {tpl['id']})"
    before = len(h.emu.requests)
    assert variant_label(user, str(tpl["id"]), seen) == f"roi (template {tpl['id']})"
    assert len(h.emu.requests) == before  # read once per delivery
    assert variant_label(user, "999999", seen) == "email template 999999"  # 404: gone
    assert h.unexpected() == [], h.unexpected()[:3]
