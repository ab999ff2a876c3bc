"""The HubSpot emulator against the real hubspot-api-client 12 with client_side_validation=True.

Every generated-API call is recorded (its `response_types_map` and the status the emulator gave);
a success whose status is not in the map would make the client silently return None, so it
fails here, and so does an answer the client's model refuses (required field missing, enum value
unknown). Routes the client has no model for (sequences, beta templates, OAuth) go through
`api_request` and are checked against the required fields of HubSpot's published schemas.
Finally every route the emulator serves must have been driven once with a success.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

hubspot = pytest.importorskip("hubspot", reason="hubspot-api-client is not installed")

from urllib3.util.retry import Retry  # noqa: E402

from tests.emulators.hubspot.server import (  # noqa: E402
    ALL_SCOPES,
    USER_SCOPES,
    HubSpotEmulator,
)

PACKAGES = ["crm.deals", "crm.contacts", "crm.companies", "crm.objects", "crm.objects.emails",
            "crm.objects.notes", "crm.objects.tasks", "crm.objects.meetings", "crm.properties",
            "crm.associations.v4", "crm.pipelines", "crm.owners", "marketing.emails"]


@dataclass
class Recorder:
    calls: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _patch_clients(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrap every generated ApiClient: record status and response_types_map of each call."""
    for pkg in PACKAGES:
        module = importlib.import_module(f"hubspot.{pkg}.api_client")
        cls = module.ApiClient
        signature = inspect.signature(cls.call_api)
        original_call, original_request = cls.call_api, cls.request

        def request(self: Any, *args: Any, _orig: Callable[..., Any] = original_request,
                    **kwargs: Any) -> Any:
            response = _orig(self, *args, **kwargs)
            self._last_status = response.status
            return response

        def call_api(self: Any, *args: Any, _orig: Callable[..., Any] = original_call,
                     _sig: inspect.Signature = signature, **kwargs: Any) -> Any:
            bound = _sig.bind(self, *args, **kwargs)
            rtm = bound.arguments.get("response_types_map") or {}
            where = f"{bound.arguments['method']} {bound.arguments['resource_path']}"
            self._last_status = None
            result = _orig(self, *args, **kwargs)
            status = self._last_status
            data = result[0] if isinstance(result, tuple) else result
            with recorder.lock:
                recorder.calls.append({"where": where, "status": status, "rtm": rtm})
                if rtm and status not in rtm:
                    recorder.problems.append(f"{where}: status {status} is not in the "
                                             f"client's response_types_map {sorted(rtm)}")
                elif not rtm and status != 204:
                    recorder.problems.append(f"{where}: status {status} for a no-body call")
                elif rtm and type(data).__name__ != rtm[status]:
                    recorder.problems.append(f"{where}: answered {type(data).__name__}, "
                                             f"not {rtm[status]}")
            return result

        monkeypatch.setattr(cls, "request", request)
        monkeypatch.setattr(cls, "call_api", call_api)


@pytest.fixture(scope="module")
def server() -> Iterator[HubSpotEmulator]:
    emu = HubSpotEmulator()
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(server: HubSpotEmulator) -> HubSpotEmulator:
    server.reset()
    return server


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    _patch_clients(rec, monkeypatch)
    return rec


def client(emu: HubSpotEmulator, token: str | None = None) -> Any:
    return hubspot.HubSpot(access_token=token or emu.token, host=emu.base,
                           client_side_validation=True,
                           retry=Retry(total=0, raise_on_status=False))


def raw(api: Any, emu: HubSpotEmulator, method: str, path: str, body: Any = None,
        qs: dict[str, Any] | None = None) -> Any:
    options: dict[str, Any] = {"method": method, "path": path, "base_url": emu.base}
    if body is not None:
        options["body"] = body
    if qs:
        options["qs"] = qs
    return api.api_request(options)


def requires(payload: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if payload.get(n) is None]
    assert not missing, f"missing required fields {missing} in {payload}"


def status_of(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    try:
        call()
    except Exception as e:  # each generated package has its own ApiException
        status = getattr(e, "status", None)
        assert status is not None, f"not an ApiException: {e!r}"
        text = getattr(e, "body", "") or "{}"
        try:
            return status, json.loads(text)
        except ValueError:
            return status, {"text": text}
    raise AssertionError("the call succeeded")


def seed(emu: HubSpotEmulator) -> dict[str, Any]:
    emu.add_owner(7, "rep@example.com", "Rita", "Rep")
    company = emu.add("companies", {"name": "Acme", "domain": "acme.test",
                                    "industry": "FINANCIAL_SERVICES", "numberofemployees": "250"})
    contact = emu.add("contacts", {"email": "cfo@acme.test", "firstname": "Carla",
                                   "jobtitle": "CFO", "lifecyclestage": "opportunity"})
    deal = emu.add("deals", {"dealname": "Acme renewal", "amount": "12000", "pipeline": "default",
                             "hubspot_owner_id": "7"},
                   created=dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
                   history={"dealstage": [("qualifiedtobuy", dt.datetime(2025, 1, 2)),
                                          ("contractsent", dt.datetime(2025, 2, 1)),
                                          ("closedwon", dt.datetime(2025, 3, 1))],
                            "closedate": [("2025-02-15T00:00:00.000Z", dt.datetime(2025, 1, 2)),
                                          ("2025-03-01T00:00:00.000Z", dt.datetime(2025, 2, 1))]})
    email = emu.add("emails", {"hs_email_subject": "Hello", "hs_email_text": "Hi Carla",
                               "hs_email_direction": "EMAIL", "hs_timestamp":
                                   "2025-01-05T10:00:00.000Z", "hs_email_open_count": "2"})
    emu.associate("deals", deal.id, "contacts", contact.id)
    emu.associate("deals", deal.id, "companies", company.id)
    emu.associate("contacts", contact.id, "companies", company.id)
    emu.associate("emails", email.id, "contacts", contact.id)
    emu.associate("emails", email.id, "deals", deal.id)
    return {"company": company, "contact": contact, "deal": deal, "email": email}


def drive_crm(emu: HubSpotEmulator, api: Any) -> None:
    from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
    from hubspot.crm.deals import (
        BatchInputSimplePublicObjectBatchInput,
        BatchInputSimplePublicObjectBatchInputForCreate,
        BatchInputSimplePublicObjectId,
        BatchReadInputSimplePublicObjectId,
        PublicObjectSearchRequest,
        SimplePublicObjectInput,
        SimplePublicObjectInputForCreate,
    )
    from hubspot.crm.properties import (
        BatchInputPropertyCreate,
        BatchReadInputPropertyName,
        PropertyCreate,
        PropertyGroupCreate,
        PropertyGroupUpdate,
        PropertyUpdate,
    )

    s = seed(emu)
    deal_id, contact_id = str(s["deal"].id), str(s["contact"].id)
    page = api.crm.deals.basic_api.get_page(limit=100, properties=["dealname", "amount"],
                                            properties_with_history=["dealstage"],
                                            associations=["contacts", "companies"],
                                            archived=False)
    assert [d.id for d in page.results] == [deal_id]
    got = api.crm.deals.basic_api.get_by_id(deal_id, properties=["dealname"],
                                            properties_with_history=["dealstage", "closedate"],
                                            associations=["contacts"])
    history = got.properties_with_history["dealstage"]
    assert [h.value for h in history] == ["closedwon", "contractsent", "qualifiedtobuy"]
    assert got.associations["contacts"].results[0].id == contact_id
    assert len(api.crm.deals.get_all(properties=["dealname"])) == 1
    api.crm.contacts.basic_api.get_page(limit=10)
    api.crm.companies.basic_api.get_page(limit=10)
    for name in ("emails", "notes", "tasks", "meetings"):
        getattr(api.crm.objects, name).basic_api.get_page(limit=10)
    api.crm.objects.basic_api.get_page("emails", associations=["deals"])
    created = api.crm.deals.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"dealname": "New", "amount": "10", "dealstage": "appointmentscheduled"},
        associations=[{"to": {"id": contact_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]))
    assert created is not None and created.properties["dealname"] == "New"
    updated = api.crm.deals.basic_api.update(created.id, SimplePublicObjectInput(
        properties={"amount": "20"}))
    assert updated.properties["amount"] == "20"
    api.crm.deals.basic_api.archive(created.id)
    assert api.crm.deals.basic_api.get_by_id(created.id, archived=True).archived
    note = api.crm.objects.notes.basic_api.create({
        "properties": {"hs_note_body": "Slip risk high", "hs_timestamp": "2025-03-02T00:00:00Z"},
        "associations": [{"to": {"id": deal_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}]}]})
    api.crm.objects.notes.basic_api.update(note.id, {"properties": {"hs_note_body": "Edited"}})
    api.crm.objects.tasks.basic_api.create({"properties": {"hs_task_subject": "Call",
                                                           "hs_task_status": "COMPLETED",
                                                           "hs_timestamp": "1735689600000"}})
    found = api.crm.deals.search_api.do_search(public_object_search_request=(
        PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "hs_lastmodifieddate",
                                         "operator": "GTE", "value": "0"}]}],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            properties=["dealname"], limit=200)))
    assert found.total == 1
    api.crm.contacts.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                     "value": "0"}]}], limit=10))
    api.crm.objects.search_api.do_search("emails", PublicObjectSearchRequest(limit=10))
    read = api.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": deal_id}], properties=["amount"], properties_with_history=["amount"]),
        archived=False)
    assert read.results[0].properties_with_history["amount"][0].value == "12000"
    partial = api.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": deal_id}, {"id": "999999"}], properties=["amount"],
        properties_with_history=[]))
    assert partial.num_errors == 1 and partial.errors[0].context["ids"] == ["999999"]
    batch = api.crm.deals.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[{"properties": {"dealname": "B1"}, "associations": []}]))
    ok = api.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": deal_id, "properties": {"description": "learned"}}]))
    assert ok.status == "COMPLETE" and not getattr(ok, "errors", None)
    mixed = api.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": deal_id, "properties": {"amount": "13000"}},
                {"id": "999999", "properties": {"amount": "1"}}]))
    assert mixed.num_errors == 1 and mixed.results[0].properties["amount"] == "13000"
    api.crm.deals.batch_api.archive(BatchInputSimplePublicObjectId(
        inputs=[{"id": batch.results[0].id}]))
    props = api.crm.properties
    group = props.groups_api.create("deals", PropertyGroupCreate(name="learnloop",
                                                                 label="learnloop",
                                                                 display_order=-1))
    assert group is not None and group.name == "learnloop"
    props.groups_api.get_all("deals")
    props.groups_api.get_by_name("deals", "learnloop")
    props.groups_api.update("deals", "learnloop", PropertyGroupUpdate(label="Learnloop"))
    prop = props.core_api.create("deals", PropertyCreate(
        name="learnloop_p80", label="P80 close date", type="date", field_type="date",
        group_name="learnloop", description="80% of similar deals closed by then"))
    assert prop is not None
    props.core_api.create("deals", PropertyCreate(
        name="learnloop_band", label="Slip risk", type="enumeration", field_type="select",
        group_name="learnloop", options=[{"label": "High", "value": "high", "displayOrder": 0,
                                          "hidden": False}]))
    props.core_api.get_all("deals", archived=False)
    props.core_api.get_by_name("deals", "learnloop_p80")
    props.core_api.update("deals", "learnloop_p80", PropertyUpdate(label="P80 close"))
    made = props.batch_api.create("deals", BatchInputPropertyCreate(inputs=[
        PropertyCreate(name="learnloop_insight", label="Insight", type="string",
                       field_type="textarea", group_name="learnloop")]))
    assert made.results[0].name == "learnloop_insight"
    props.batch_api.read("deals", BatchReadInputPropertyName(archived=False,
                                                             inputs=[{"name": "amount"}]))
    props.core_api.archive("deals", "learnloop_insight")
    props.groups_api.create("contacts", PropertyGroupCreate(name="scratch", label="s"))
    props.groups_api.archive("contacts", "scratch")
    api.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": deal_id, "properties": {"learnloop_p80": "2025-04-01",
                                               "learnloop_band": "high"}}]))
    v4 = api.crm.associations.v4
    assoc = v4.basic_api.get_page("deals", deal_id, "contacts", limit=500)
    assert [str(a.to_object_id) for a in assoc.results] == [contact_id]
    v4.basic_api.create_default("notes", note.id, "contacts", contact_id)
    v4.basic_api.create("notes", note.id, "companies", str(s["company"].id), [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}])
    v4.basic_api.archive("notes", note.id, "companies", str(s["company"].id))
    both = v4.batch_api.get_page("deals", "contacts",
                                 BatchInputPublicFetchAssociationsBatchRequest(
                                     inputs=[{"id": deal_id}]))
    assert both.results[0].to[0].to_object_id is not None
    task = api.crm.objects.tasks.basic_api.get_page(limit=1).results[0]
    v4.batch_api.create_default("tasks", "deals", {"inputs": [{"from": {"id": task.id},
                                                               "to": {"id": deal_id}}]})
    pipes = api.crm.pipelines
    assert pipes.pipelines_api.get_all("deals").results[0].id == "default"
    pipes.pipelines_api.get_by_id("deals", "default")
    pipes.pipeline_stages_api.get_all("deals", "default")
    pipes.pipeline_audits_api.get_audit("deals", "default")
    owners = api.crm.owners.owners_api.get_page(limit=100)
    assert owners.results[0].email == "rep@example.com"
    api.crm.owners.owners_api.get_by_id(7)


def drive_marketing(emu: HubSpotEmulator, api: Any) -> None:
    from hubspot.marketing.emails import (
        AbTestCreateRequestVNext,
        ContentCloneRequestVNext,
        EmailCreateRequest,
        EmailUpdateRequest,
    )

    live = emu.add_marketing_email("Q1 outbound", "Cut costs", "<p>Hello</p>", published=True,
                                   stats={"sent": 100, "open": 40, "click": 5})
    me = api.marketing.emails
    listed = me.marketing_emails_api.get_page(include_stats=True)
    assert listed.results[0].stats.counters["sent"] == 100
    me.marketing_emails_api.get_by_id(live["id"])
    draft = me.marketing_emails_api.upsert_draft(live["id"], EmailUpdateRequest(
        subject="Cut costs by 20%"))
    assert draft.subject == "Cut costs by 20%"
    assert me.marketing_emails_api.get_by_id(live["id"]).subject == "Cut costs"
    assert me.marketing_emails_api.get_draft(live["id"]).subject == "Cut costs by 20%"
    me.marketing_emails_api.reset_draft(live["id"])
    me.marketing_emails_api.update(live["id"], EmailUpdateRequest(name="Q1 outbound (v2)"))
    me.marketing_emails_api.get_revisions(live["id"])
    made = me.marketing_emails_api.create(EmailCreateRequest(name="Nurture", subject="Hi"))
    assert made is not None and made.state == "DRAFT"
    variant = me.marketing_emails_api.create_ab_test_variation(AbTestCreateRequestVNext(
        content_id=made.id, variation_name="Nurture B"))
    assert variant is not None and variant.state == "DRAFT_AB_VARIANT"
    assert me.marketing_emails_api.get_ab_test_variation(made.id).id == variant.id
    me.marketing_emails_api.clone(ContentCloneRequestVNext(id=made.id, clone_name="Copy"))
    me.statistics_api.get_emails_list(start_timestamp="2025-01-01T00:00:00Z",
                                      end_timestamp="2026-01-01T00:00:00Z")
    me.marketing_emails_api.archive(variant.id)
    # Publishing: Enterprise (or the transactional add-on) with the marketing-email scope.
    emu.enterprise = True
    pub = client(emu, emu.add_token("pat-enterprise", ALL_SCOPES | {"marketing-email"}))
    pub.marketing.emails.marketing_emails_api.publish_or_send(made.id)
    assert emu.marketing_emails[made.id]["state"] == "PUBLISHED_AB"
    pub.marketing.emails.marketing_emails_api.unpublish_or_cancel(made.id)


def drive_raw(emu: HubSpotEmulator, api: Any) -> None:
    """Routes the client has no generated API for, through api_request (requests)."""
    contact = emu.add("contacts", {"email": "lead@beta.test"})
    emu.add_seat(7, "rep@example.com")
    tpl = emu.add_template("efficiency", "Save time", "Hi {{contact.firstname}}")
    seq = emu.add_sequence("Outbound Q1", 7, [{"templateId": tpl["id"]},
                                              {"actionType": "TASK", "subject": "Call"}])
    r = raw(api, emu, "GET", "/automation/v4/sequences", qs={"userId": "7", "limit": 100})
    assert r.status_code == 200, r.text
    requires(r.json(), "results", "total")
    requires(r.json()["results"][0], "createdAt", "id", "name", "updatedAt", "userId")
    r = raw(api, emu, "GET", f"/automation/v4/sequences/{seq['id']}", qs={"userId": "7"})
    assert r.status_code == 200, r.text
    requires(r.json(), "createdAt", "dependencies", "id", "name", "steps", "updatedAt", "userId")
    for step in r.json()["steps"]:
        requires(step, "actionType", "createdAt", "delayMillis", "id", "stepOrder", "updatedAt")
        assert "variants" not in step
    assert r.json()["steps"][0]["emailPattern"]["templateId"] == tpl["id"]
    r = raw(api, emu, "POST", "/automation/v4/sequences/enrollments", qs={"userId": "7"},
            body={"sequenceId": seq["id"], "contactId": str(contact.id),
                  "senderEmail": "rep@example.com"})
    assert r.status_code == 200, r.text
    requires(r.json(), "enrolledAt", "id", "toEmail", "updatedAt")
    r = raw(api, emu, "GET", f"/automation/v4/sequences/enrollments/contact/{contact.id}")
    assert r.status_code == 200, r.text
    requires(r.json(), "enrolledAt", "enrolledBy", "enrolledByEmail", "id", "sequenceId",
             "sequenceName", "toEmail", "updatedAt")
    # The beta answers only a user-level (OAuth) token; one comes from the refresh grant.
    emu.add_oauth_app("cid", "csecret", "refresh-1", ALL_SCOPES | USER_SCOPES, user_id=7)
    r = raw(api, emu, "POST", "/oauth/v1/token", body=None)
    assert r.status_code == 400  # no form: not a refresh grant
    import requests

    r = requests.post(f"{emu.base}/oauth/v1/token", data={
        "grant_type": "refresh_token", "client_id": "cid", "client_secret": "csecret",
        "refresh_token": "refresh-1"}, timeout=10)
    assert r.status_code == 200, r.text
    requires(r.json(), "access_token", "refresh_token", "expires_in", "token_type")
    user = hubspot.HubSpot(access_token=r.json()["access_token"], host=emu.base)
    base = "/automation/email-templates/2026-09-beta"
    r = raw(user, emu, "GET", base)
    assert r.status_code == 200, r.text
    requires(r.json()["results"][0], "id")
    r = raw(user, emu, "GET", f"{base}/folders")
    assert r.status_code == 200 and r.json()["results"][0]["id"]
    r = raw(user, emu, "POST", base, body={"name": "b", "body": "B body", "subject": "B"})
    assert r.status_code == 201, r.text
    r = raw(user, emu, "GET", f"{base}/{tpl['id']}")
    assert r.status_code == 200 and r.json()["body"].startswith("Hi")
    r = raw(user, emu, "PATCH", f"{base}/{tpl['id']}", body={
        "name": "efficiency", "subject": "Save time", "body": "Edited", "folderId": "1"})
    assert r.status_code == 200 and r.json()["body"] == "Edited"
    r = raw(user, emu, "GET", f"{base}/automation/email-templates/{tpl['id']}")
    assert r.status_code == 200
    for path in (f"{base}/automation/email-templates", f"{base}/automation/email-templates/folders"):
        assert raw(user, emu, "GET", path).status_code == 200
    r = raw(user, emu, "POST", f"{base}/automation/email-templates",
            body={"name": "c", "body": "C"})
    assert r.status_code == 201
    r = raw(user, emu, "PATCH", f"{base}/automation/email-templates/{tpl['id']}", body={
        "name": "efficiency", "subject": "Save time", "body": "Again", "folderId": "1"})
    assert r.status_code == 200
    bs = "/automation/sequences/2026-09-beta"
    assert raw(user, emu, "GET", bs, qs={"userId": "7"}).status_code == 200
    assert raw(user, emu, "GET", f"{bs}/serviceaccounts/sequences").status_code == 200
    r = raw(user, emu, "GET", f"{bs}/serviceaccounts/sequences/{seq['id']}")
    assert r.status_code == 200 and "variants" in r.json()["steps"][0]
    other = emu.add_template("roi", "ROI", "Numbers")
    put = {"name": "Outbound Q1", "settings": {}, "dependencies": [], "dynamic": False,
           "steps": [{"actionType": "EMAIL", "delayMillis": 0,
                      "emailPattern": {"templateId": tpl["id"]},
                      "variants": [{"activated": True, "variantOrdinal": 1,
                                    "emailPattern": {"templateId": other["id"]}}]}]}
    r = raw(user, emu, "PUT", f"{bs}/serviceaccounts/sequences/{seq['id']}", body=put)
    assert r.status_code == 200, r.text
    assert r.json()["steps"][0]["variants"][0]["emailPattern"]["templateId"] == other["id"]
    r = raw(user, emu, "POST", f"{bs}/serviceaccounts/sequences", body=put)
    assert r.status_code == 200, r.text
    created = r.json()["id"]
    r = raw(user, emu, "GET", f"{bs}/serviceaccounts/sequences/{seq['id']}/performance")
    assert r.status_code == 200 and r.json()["steps"][0]["stepOrder"] == 0
    r = raw(user, emu, "DELETE", f"{bs}/serviceaccounts/sequences/{created}")
    assert r.status_code == 204


def test_every_route_answers_what_the_client_models_accept(emu: HubSpotEmulator,
                                                          recorder: Recorder) -> None:
    api = client(emu)
    drive_crm(emu, api)
    drive_marketing(emu, api)
    drive_raw(emu, api)
    assert recorder.problems == []
    assert emu.unexpected == []
    assert len(recorder.calls) > 60
    served = {(m, p.pattern) for m, p, _, _ in emu.routes}
    driven = set()
    for call in emu.requests:
        if 200 <= call.status < 300:
            for m, p, _, _ in emu.routes:
                if m == call.method and p.fullmatch(call.path):
                    driven.add((m, p.pattern))
                    break
    assert sorted(served - driven) == []


def test_a_create_answered_200_is_caught(emu: HubSpotEmulator, recorder: Recorder,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The client returns None for a 2xx outside its map; the recorder must flag it."""
    original = emu.create_object

    def wrong(*args: Any) -> tuple[int, Any]:
        return 200, original(*args)[1]

    monkeypatch.setattr(emu, "routes", [(m, p, a, wrong if h == original else h)
                                        for m, p, a, h in emu.routes])
    result = client(emu).crm.deals.basic_api.create({"properties": {"dealname": "x"}})
    assert result is None
    assert recorder.problems and "status 200 is not in" in recorder.problems[0]


def test_bad_token_is_401_in_hubspots_shape(emu: HubSpotEmulator) -> None:
    status, body = status_of(lambda: client(emu, "pat-wrong").crm.deals.basic_api.get_page())
    assert status == 401
    assert body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]
    from hubspot.crm.deals.exceptions import UnauthorizedException

    with pytest.raises(UnauthorizedException):
        client(emu, "pat-wrong").crm.deals.basic_api.get_page()


def test_expired_oauth_token_is_401(emu: HubSpotEmulator) -> None:
    emu.add_token("oauth-old", ALL_SCOPES, user_level=True, user_id=7, expires_in=0.001)
    time.sleep(0.01)
    status, body = status_of(lambda: client(emu, "oauth-old").crm.deals.basic_api.get_page())
    assert status == 401 and body["category"] == "EXPIRED_AUTHENTICATION"


def test_missing_scope_is_403_naming_the_scope(emu: HubSpotEmulator) -> None:
    emu.add_token("pat-readonly", {"crm.objects.deals.read"})
    api = client(emu, "pat-readonly")
    api.crm.deals.basic_api.get_page()
    status, body = status_of(lambda: api.crm.properties.groups_api.create(
        "deals", {"name": "learnloop", "label": "learnloop"}))
    assert status == 403 and body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.schemas.deals.write"]
    status, body = status_of(lambda: api.crm.objects.notes.basic_api.create(
        {"properties": {"hs_note_body": "x"}}))
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [
        "crm.objects.contacts.write"]


def test_private_app_token_cannot_use_the_beta(emu: HubSpotEmulator) -> None:
    emu.add_template("t", "s", "b", template_id=42)
    r = raw(client(emu), emu, "PATCH", "/automation/email-templates/2026-09-beta/42",
            body={"name": "t", "subject": "s", "body": "b2", "folderId": "1"})
    assert r.status_code == 403 and "user-level" in r.json()["message"]
    assert emu.templates["42"]["body"] == "b"


def test_unknown_route_parameter_and_body_field_fail_and_are_recorded(
        emu: HubSpotEmulator) -> None:
    api = client(emu)
    r = raw(api, emu, "GET", "/crm/v3/objects/deals/search/extra")
    assert r.status_code == 404
    r = raw(api, emu, "GET", "/crm/v3/objects/deals", qs={"limit": 10, "sort": "x"})
    assert r.status_code == 400 and "sort" in r.json()["message"]
    status, body = status_of(lambda: api.crm.deals.basic_api.create(
        {"properties": {"dealname": "x"}, "colour": "red"}))
    assert status == 400 and "colour" in body["message"]
    status, body = status_of(lambda: api.crm.deals.basic_api.create(
        {"properties": {"no_such_property": "1"}}))
    assert status == 400 and "PROPERTY_DOESNT_EXIST" in body["message"]
    assert emu.unexpected == ["GET /crm/v3/objects/deals/search/extra",
                              "GET /crm/v3/objects/deals parameter sort",
                              "SimplePublicObjectInputForCreate body field colour"]


def test_property_and_group_conflicts_are_409(emu: HubSpotEmulator) -> None:
    props = client(emu).crm.properties
    props.groups_api.create("deals", {"name": "learnloop", "label": "learnloop"})
    status, body = status_of(lambda: props.groups_api.create(
        "deals", {"name": "learnloop", "label": "learnloop"}))
    assert status == 409 and body["category"] == "OBJECT_ALREADY_EXISTS"
    status, _ = status_of(lambda: props.core_api.create("deals", {
        "name": "amount", "label": "Amount", "type": "number", "fieldType": "number",
        "groupName": "dealinformation"}))
    assert status == 409


def test_batch_limits_with_and_without_history(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import BatchReadInputSimplePublicObjectId

    ids = [str(emu.add("deals", {"dealname": f"d{i}"}).id) for i in range(101)]
    api = client(emu)

    def read(n: int, history: list[str]) -> Any:
        return api.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids[:n]], properties=["dealname"],
            properties_with_history=history))
    assert len(read(50, ["dealstage"]).results) == 50
    status, body = status_of(lambda: read(51, ["dealstage"]))
    assert status == 400 and "property histories is 50" in body["message"]
    assert len(read(100, []).results) == 100
    status, body = status_of(lambda: read(101, []))
    assert status == 400 and "is 100" in body["message"]


def test_search_pages_ties_and_the_10000_wall(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import PublicObjectSearchRequest

    emu.search_per_second = None
    when = dt.datetime(2025, 1, 31, tzinfo=dt.UTC)
    ids = emu.add_generated("deals", 10_500, lambda i: ({"dealname": f"d{i}"},
                                                        int(when.timestamp() * 1000), {}, {}))
    older = emu.add("deals", {"dealname": "old"}, modified=dt.datetime(2024, 1, 1))
    archived = emu.add("deals", {"dealname": "gone"}, modified=when)
    archived.archived = True
    api = client(emu)
    ms = str(int(when.timestamp() * 1000))

    def search(after: int, filters: list[dict[str, Any]], sort: str, limit: int = 200) -> Any:
        return api.crm.deals.search_api.do_search(public_object_search_request=(
            PublicObjectSearchRequest(filter_groups=[{"filters": filters}],
                                      sorts=[{"propertyName": sort,
                                              "direction": "ASCENDING"}],
                                      properties=["dealname"], limit=limit, after=str(after))))
    window = [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": ms}]
    first = search(0, window, "hs_lastmodifieddate")
    assert first.total == 10_500 and first.paging.next.after == "200"
    assert [int(r.id) for r in first.results] == list(ids[:200])
    status, body = status_of(lambda: search(9_900, window, "hs_lastmodifieddate"))
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    status, _ = status_of(lambda: search(0, window, "hs_lastmodifieddate", limit=201))
    assert status == 400
    pinned = search(0, [{"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": ms},
                        {"propertyName": "hs_object_id", "operator": "GT",
                         "value": str(ids[10_399])}], "hs_object_id")
    assert [int(r.id) for r in pinned.results] == list(ids[10_400:])
    assert older.id not in {int(r.id) for r in pinned.results}
    status, body = status_of(lambda: api.crm.deals.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(sorts=[
            {"propertyName": "hs_lastmodifieddate"}, {"propertyName": "hs_object_id"}])))
    assert status == 400 and "one sort" in body["message"]


def test_search_filters_on_other_properties(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import PublicObjectSearchRequest

    for i, (stage, amount) in enumerate([("closedwon", 100), ("closedlost", 50),
                                         ("closedwon", 500), ("contractsent", None)]):
        emu.add("deals", {"dealname": f"d{i}", "dealstage": stage, "amount": amount,
                          "pipeline": "default"})
    api = client(emu)

    def names(*filters: dict[str, Any], sort: str = "amount") -> list[str]:
        got = api.crm.deals.search_api.do_search(public_object_search_request=(
            PublicObjectSearchRequest(filter_groups=[{"filters": list(filters)}],
                                      sorts=[{"propertyName": sort, "direction": "DESCENDING"}],
                                      properties=["dealname"], limit=10)))
        return [r.properties["dealname"] for r in got.results]
    assert names({"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}) == [
        "d2", "d0"]
    assert names({"propertyName": "amount", "operator": "BETWEEN", "value": "60",
                  "highValue": "600"}) == ["d2", "d0"]
    assert names({"propertyName": "dealstage", "operator": "IN",
                  "values": ["closedlost", "contractsent"]}, sort="dealname") == ["d3", "d1"]
    assert names({"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"}) == ["d3"]
    assert names({"propertyName": "amount", "operator": "LT", "value": "100"}) == ["d1"]


def test_search_rate_limit_and_faults(emu: HubSpotEmulator) -> None:
    api = client(emu)

    def search() -> Any:
        return api.crm.deals.search_api.do_search(public_object_search_request={"limit": 1})
    for _ in range(5):
        search()
    status, body = status_of(search)
    assert status == 429 and body["policyName"] == "SECONDLY"
    assert body["message"] == "You have reached your secondly limit."
    emu.search_per_second = None
    emu.throttle(1, policy="TEN_SECONDLY_ROLLING", retry_after=1, match="batch/update")
    r = raw(api, emu, "POST", "/crm/v3/objects/deals/batch/update", body={"inputs": []})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["policyName"] == "TEN_SECONDLY_ROLLING" and r.json()["errorType"] == \
        "RATE_LIMIT"
    emu.throttle(1, policy="DAILY")
    r = raw(api, emu, "GET", "/crm/v3/objects/deals")
    assert r.status_code == 429 and "Retry-After" not in r.headers and r.json()["requestId"]
    emu.fail_5xx(1, status=502)
    status, _ = status_of(lambda: api.crm.deals.basic_api.get_page())
    assert status == 502
    # The default client retries a GET whose 429 carries Retry-After, and then succeeds.
    emu.throttle(1, retry_after=1, match="GET /crm/v3/objects/deals")
    default = hubspot.HubSpot(access_token=emu.token, host=emu.base)
    assert default.crm.deals.basic_api.get_page().results == []


def test_stalled_answers_are_held_until_released(emu: HubSpotEmulator) -> None:
    emu.stall("GET /crm/v3/owners/")
    api = client(emu)
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(api.crm.owners.owners_api.get_page()))
    worker.start()
    assert emu.stalled.wait(5)
    time.sleep(0.1)
    assert done == []
    emu.unstall.set()
    worker.join(5)
    assert len(done) == 1


def test_enrollment_needs_a_seat_and_one_active_enrollment(emu: HubSpotEmulator) -> None:
    contact = emu.add("contacts", {"email": "a@b.test"})
    seq = emu.add_sequence("S", 7, [{"templateId": "1"}])
    api = client(emu)
    body = {"sequenceId": seq["id"], "contactId": str(contact.id), "senderEmail": "r@x.test"}
    r = raw(api, emu, "POST", "/automation/v4/sequences/enrollments", body=body)
    assert r.status_code == 400 and "userId" in r.json()["message"]
    r = raw(api, emu, "POST", "/automation/v4/sequences/enrollments", body=body,
            qs={"userId": "7"})
    assert r.status_code == 403
    emu.add_seat(7, "r@x.test")
    assert raw(api, emu, "POST", "/automation/v4/sequences/enrollments", body=body,
               qs={"userId": "7"}).status_code == 200
    r = raw(api, emu, "POST", "/automation/v4/sequences/enrollments", body=body,
            qs={"userId": "7"})
    assert r.status_code == 400 and "already enrolled" in r.json()["message"]


def test_publish_is_gated(emu: HubSpotEmulator) -> None:
    email = emu.add_marketing_email("e", "s")
    status, body = status_of(
        lambda: client(emu).marketing.emails.marketing_emails_api.publish_or_send(email["id"]))
    assert status == 403 and body["errors"][0]["context"]["requiredGranularScopes"] == [
        "marketing-email", "transactional-email"]
    token = emu.add_token("pat-pro", ALL_SCOPES | {"marketing-email"})
    status, body = status_of(lambda: client(emu, token).marketing.emails.marketing_emails_api
                             .publish_or_send(email["id"]))
    assert status == 403 and "Enterprise" in body["message"]
    assert emu.marketing_emails[email["id"]]["state"] == "DRAFT"


def test_batch_update_reports_bad_values_per_record(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput

    a, b, c = (emu.add("deals", {"dealname": n}) for n in "abc")
    emu.fail_update_ids = {str(c.id)}
    out = client(emu).crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        {"id": str(a.id), "properties": {"amount": "5"}},
        {"id": str(b.id), "properties": {"amount": "five"}},
        {"id": str(c.id), "properties": {"amount": "6"}}]))
    assert [r.id for r in out.results] == [str(a.id)]
    assert sorted(e.context["ids"][0] for e in out.errors) == sorted([str(b.id), str(c.id)])
    assert b.props.get("amount") is None
    assert [v for v, _, _ in a.history["amount"]] == ["5"]


def test_renamed_property_is_refused_on_write(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput

    emu.define_property("deals", "learnloop_band", "string", "text")
    deal = emu.add("deals", {"dealname": "x"})
    emu.rename_property("deals", "learnloop_band", "learnloop_risk_band")
    status, body = status_of(lambda: client(emu).crm.deals.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(inputs=[
            {"id": str(deal.id), "properties": {"learnloop_band": "high"}}])))
    assert status == 400 and "PROPERTY_DOESNT_EXIST" in body["message"]


def test_generated_records_are_read_lazily(emu: HubSpotEmulator) -> None:
    made: list[int] = []

    def make(i: int) -> Any:
        made.append(i)
        return ({"dealname": f"d{i}", "amount": str(i)}, 1_700_000_000_000 + i,
                {"dealstage": [("qualifiedtobuy", 1_700_000_000_000)]}, {"contacts": [1]})
    ids = emu.add_generated("deals", 1000, make)
    made.clear()
    emu.add("contacts", {"email": "c@x.test"}, id=1)
    got = client(emu).crm.deals.basic_api.get_by_id(str(ids[500]), properties=["amount"],
                                                    associations=["contacts"])
    assert got.properties["amount"] == "500" and set(made) == {500}
    assert got.associations["contacts"].results[0].id == "1"
    assert emu.records["deals"] == {}  # read, not held
    client(emu).crm.deals.basic_api.update(str(ids[7]), {"properties": {"amount": "1"}})
    assert list(emu.records["deals"]) == [ids[7]]  # written: kept from then on
    assert emu.get("deals", ids[7]).props["amount"] == "1"  # type: ignore[union-attr]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_generated_portal_is_consistent_both_ways(emu: HubSpotEmulator) -> None:
    from hubspot.crm.deals import PublicObjectSearchRequest

    from tests.emulators.hubspot.portal import CONTACT0, DEAL0, EMAIL0, seed_portal

    portal = seed_portal(emu, deals=20_000, emails_per_deal=3)
    emu.search_per_second = None
    api = client(emu)
    deal = api.crm.deals.basic_api.get_by_id(str(DEAL0 + 42), properties=["dealname"],
                                             properties_with_history=["dealstage", "closedate"],
                                             associations=["contacts", "companies", "emails"])
    assert deal.associations["contacts"].results[0].id == str(CONTACT0 + 42)
    assert [a.id for a in deal.associations["emails"].results] == [
        str(EMAIL0 + 126 + k) for k in range(3)]
    contact = api.crm.contacts.basic_api.get_by_id(str(CONTACT0 + 42), associations=["deals"])
    assert contact.associations["deals"].results[0].id == str(DEAL0 + 42)
    company = deal.associations["companies"].results[0].id
    members = api.crm.associations.v4.basic_api.get_page("companies", company, "deals")
    assert str(DEAL0 + 42) in {str(r.to_object_id) for r in members.results}
    email = api.crm.objects.emails.basic_api.get_by_id(str(EMAIL0 + 126), properties=[
        "hs_sequence_id", "hs_template_id", "hs_email_text"])
    assert email.properties["hs_sequence_id"] == portal.sequence_of(42)["id"]
    tied = api.crm.deals.search_api.do_search(public_object_search_request=(
        PublicObjectSearchRequest(filter_groups=[{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "EQ",
             "value": str(portal.bulk_modified)}]}], limit=1)))
    assert tied.total == len([i for i in range(20_000) if i % 7 == 3])
    r = raw(api, emu, "GET", f"/automation/v4/sequences/enrollments/contact/{CONTACT0 + 42}")
    assert r.status_code == 200 and r.json()["sequenceId"] == portal.sequence_of(42)["id"]
    assert emu.records["deals"] == {} and emu.unexpected == []


def test_an_over_long_uri_is_414(emu: HubSpotEmulator) -> None:
    names = [f"custom_property_number_{i}" for i in range(400)]
    status, _ = status_of(lambda: client(emu).crm.deals.basic_api.get_page(properties=names))
    assert status == 414
    assert client(emu).crm.deals.basic_api.get_page(properties=names[:50]).results == []


def test_ten_secondly_burst_limit_counts_down(emu: HubSpotEmulator) -> None:
    emu.burst_limit = 3
    api = client(emu)
    answers = [raw(api, emu, "GET", "/crm/v3/objects/deals") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "Retry-After" not in answers[3].headers


def test_search_index_lags_writes_when_asked(emu: HubSpotEmulator) -> None:
    emu.search_per_second = None
    emu.add("deals", {"dealname": "old"}, modified=dt.datetime(2025, 1, 1))
    api = client(emu)
    emu.search_lag = 0.3
    api.crm.deals.basic_api.create({"properties": {"dealname": "fresh"}})

    def total() -> int:
        return int(api.crm.deals.search_api.do_search(
            public_object_search_request={"limit": 10}).total)
    assert total() == 1
    time.sleep(0.35)
    assert total() == 2
    status, body = status_of(lambda: api.crm.deals.search_api.do_search(
        public_object_search_request={"filterGroups": [{"filters": [
            {"propertyName": "no_such", "operator": "EQ", "value": "1"}]}]}))
    assert status == 400 and body["context"]["propertyName"] == ["no_such"]
