"""The Salesforce emulator through the real simple-salesforce client: auth flows, SOQL and
paging, describe, writes, collections, Bulk 2.0, the Metadata API, faults, strictness, and the
route inventory against Salesforce's own Postman request set."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.salesforce import server as srv
from tests.emulators.salesforce.server import SalesforceEmulator

POSTMAN = Path(__file__).resolve().parents[4] / "shared" / "specs" / "salesforce" / \
    "postman-salesforce-apis" / "src" / "collections" / "salesforce_apis"


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceEmulator]:
    emu = SalesforceEmulator()
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(org: SalesforceEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", org.ca_file)  # zeep builds its own session
    yield org
    assert org.unexpected == []


def jwt_client(emu: SalesforceEmulator, **kw: Any) -> Any:
    from simple_salesforce import Salesforce

    return Salesforce(username=emu.username, consumer_key=emu.consumer_key,
                      privatekey=emu.keys.private_key_pem, domain=emu.domain,
                      session=emu.session(), **kw)


@pytest.fixture
def sf(emu: SalesforceEmulator) -> Any:
    return jwt_client(emu)


def opportunity(emu: SalesforceEmulator, **fields: Any) -> str:
    base = {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01",
            "Amount": 1000}
    return emu.add("Opportunity", {**base, **fields})


# ---- auth ---------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:(?s).*self-authorize:UserWarning")
def test_jwt_bearer_logs_in_and_the_assertion_is_verified(emu: SalesforceEmulator) -> None:
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    from tests.emulators.salesforce import tls

    sf = jwt_client(emu)
    assert sf.sf_instance == emu.base.removeprefix("https://")
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    other = tls._make("someone-else", san_ip=False)[0]  # a key the connected app never saw
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid assertion"):
        Salesforce(username=emu.username, consumer_key=emu.consumer_key, privatekey=other,
                   domain=emu.domain, session=emu.session())
    with pytest.raises(SalesforceAuthenticationFailed, match="client identifier invalid"):
        Salesforce(username=emu.username, consumer_key="nope",
                   privatekey=emu.keys.private_key_pem, domain=emu.domain,
                   session=emu.session())
    with pytest.raises(SalesforceAuthenticationFailed, match="approved"):
        Salesforce(username="stranger@example.com", consumer_key=emu.consumer_key,
                   privatekey=emu.keys.private_key_pem, domain=emu.domain,
                   session=emu.session())
    with pytest.raises(SalesforceAuthenticationFailed, match="audience"):
        Salesforce(username=emu.username, consumer_key=emu.consumer_key,
                   privatekey=emu.keys.private_key_pem, domain="othercorp.my",
                   session=emu.session())
    assert all(c.path == "/services/oauth2/token" for c in emu.calls if c.status == 400)


def test_client_credentials_and_a_registered_connected_app(emu: SalesforceEmulator) -> None:
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    emu.connected_app(consumer_key="ck-2", consumer_secret="s3cret")
    sf = Salesforce(consumer_key="ck-2", consumer_secret="s3cret", domain=emu.domain,
                    session=emu.session())
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 0
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid client credentials"):
        Salesforce(consumer_key="ck-2", consumer_secret="wrong", domain=emu.domain,
                   session=emu.session())


def test_soap_login_is_refused_from_api_65(emu: SalesforceEmulator) -> None:
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_OPERATION"):
        Salesforce(username=emu.username, password=emu.password,
                   security_token=emu.security_token, domain=emu.domain, version="65.0",
                   session=emu.session())
    old = Salesforce(username=emu.username, password=emu.password,
                     security_token=emu.security_token, domain=emu.domain, version="59.0",
                     session=emu.session())
    assert old.query("SELECT COUNT() FROM User")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        Salesforce(username=emu.username, password="wrong", security_token="x",
                   domain=emu.domain, version="59.0", session=emu.session())
    emu.soap_login_enabled = False
    with pytest.raises(SalesforceAuthenticationFailed, match="disabled"):
        Salesforce(username=emu.username, password=emu.password,
                   security_token=emu.security_token, domain=emu.domain, version="59.0",
                   session=emu.session())


def test_a_bad_or_expired_session_is_401_and_the_client_logs_in_again(
        emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceExpiredSession

    with pytest.raises(SalesforceExpiredSession):
        Salesforce(instance_url=emu.base, session_id="forged", session=emu.session()).query(
            "SELECT Id FROM Account")
    opportunity(emu)
    emu.expire_after = 1
    tokens = sum(1 for c in emu.calls if c.path == "/services/oauth2/token")
    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 1  # the call before expiry
    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 1  # 401, re-login, retry
    assert sum(1 for c in emu.calls if c.path == "/services/oauth2/token") == tokens + 1
    assert [c.status for c in emu.calls[-3:]] == [401, 200, 200]


# ---- SOQL ---------------------------------------------------------------------------------
def test_query_pages_of_2000_and_batch_size(emu: SalesforceEmulator, sf: Any) -> None:
    emu.seed_pipeline(4500, histories=1)
    before = len(emu.calls)
    records = sf.query_all("SELECT Id, SystemModstamp FROM Opportunity "
                           "ORDER BY SystemModstamp, Id")["records"]
    assert len(records) == 4500 and len({r["Id"] for r in records}) == 4500
    pages = emu.calls[before:]
    assert [c.records for c in pages] == [2000, 2000, 500]
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w+-2000", pages[1].path)
    keys = [(r["SystemModstamp"], r["Id"]) for r in records]
    assert keys == sorted(keys)
    before = len(emu.calls)
    small = list(sf.query_all_iter("SELECT Id FROM Opportunity",
                                   headers={"Sforce-Query-Options": "batchSize=200"}))
    assert len(small) == 4500 and len(emu.calls) - before == 23
    before = len(emu.calls)
    sf.query_all("SELECT Id, Description, NextStep FROM Opportunity")
    assert len(emu.calls) - before == 3
    sf.query_all("SELECT Id, Description FROM Task")
    before = len(emu.calls)
    emu.seed_pipeline(0)
    for _ in range(250):
        emu.add("EmailTemplate", {"Name": "t", "DeveloperName": "t", "TemplateType": "text"})
    sf.query_all("SELECT Id, Body, HtmlValue FROM EmailTemplate")
    assert len(emu.calls) - before == 2  # two long text fields: pages of 200
    before = len(emu.calls)
    list(sf.query_all_iter("SELECT Id FROM Opportunity",
                           headers={"Sforce-Query-Options": "batchSize=50"}))
    assert len(emu.calls) - before == 23  # 200 is the least Salesforce sends


def test_soql_filters_relationships_and_order(emu: SalesforceEmulator, sf: Any) -> None:
    tech = emu.add("Account", {"Name": "Acme", "Industry": "Technology"})
    bank = emu.add("Account", {"Name": "Bank", "Industry": "Finance"})
    a = opportunity(emu, Name="A", AccountId=tech, Amount=500,
                    modstamp="2026-01-02T10:00:00Z") if False else \
        emu.add("Opportunity", {"Name": "A", "AccountId": tech, "Amount": 500,
                                "StageName": "Prospecting", "CloseDate": "2026-03-01"},
                modstamp="2026-01-02T10:00:00Z")
    b = emu.add("Opportunity", {"Name": "B big", "AccountId": bank, "Amount": 5000,
                                "StageName": "Closed Won", "CloseDate": "2026-02-01"},
                modstamp="2026-01-03T10:00:00Z")
    c = emu.add("Opportunity", {"Name": "C", "StageName": "Closed Lost",
                                "CloseDate": "2026-04-01"}, modstamp="2026-01-03T10:00:00Z")
    rows = sf.query("SELECT Id, Name, Account.Industry, Account.Name, IsWon FROM Opportunity "
                    "WHERE SystemModstamp >= 2026-01-03T10:00:00.000+0000 ORDER BY Id")["records"]
    assert [r["Id"] for r in rows] == sorted([b, c])
    assert rows[0]["Account"]["Industry"] == "Finance" and rows[0]["Account"]["Name"] == "Bank"
    assert rows[0]["IsWon"] is True and rows[1]["Account"] is None

    def ids(where: str, order: str = "Id") -> list[str]:
        return [r["Id"] for r in sf.query_all(
            f"SELECT Id FROM Opportunity WHERE {where} ORDER BY {order}")["records"]]

    assert ids("Amount > 400 AND (StageName = 'closed won' OR Name LIKE 'A%')") == sorted([a, b])
    assert ids(f"Id IN ('{a[:15]}', '{c}')") == sorted([a, c])  # 15- and 18-character ids
    assert ids("StageName NOT IN ('Closed Won', 'Closed Lost')") == [a]
    assert ids("Amount = null") == [c]
    assert ids("Account.Industry != 'Technology'") == sorted([b, c])
    assert ids("CloseDate < 2026-03-15 AND NOT Name LIKE '%big'") == [a]
    assert ids("Amount != null", "Amount DESC") == [b, a]
    assert ids("Name != 'x'", "Amount ASC NULLS LAST, Name") == [a, b, c]
    assert ids("Name != 'x'", "Amount DESC NULLS FIRST") == [c, b, a]
    limited = sf.query("SELECT Id FROM Opportunity ORDER BY Name DESC LIMIT 2")
    assert [r["Id"] for r in limited["records"]] == [c, b] and limited["totalSize"] == 2
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")["totalSize"] == 1


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Foo FROM Opportunity", "INVALID_FIELD"),
    ("SELECT Id, Account.Nope FROM Opportunity", "INVALID_FIELD"),
    ("SELECT Id FROM Nothing", "INVALID_TYPE"),
    ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
    ("SELECT FROM Opportunity", "MALFORMED_QUERY"),
    ("SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 3 OR Amount = 2",
     "MALFORMED_QUERY"),
    ("SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-01-01T00:00:00Z'",
     "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE Name = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity GROUP BY Name", "MALFORMED_QUERY"),
    ("SELECT Id FROM Opportunity LIMIT", "MALFORMED_QUERY"),
    ("SELECT Id, (SELECT Id FROM OpportunityHistories) FROM Opportunity", "MALFORMED_QUERY"),
])
def test_a_query_it_cannot_read_fails_clearly(emu: SalesforceEmulator, sf: Any, soql: str,
                                              code: str) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    opportunity(emu)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400 and err.value.content[0]["errorCode"] == code


def test_unknown_routes_parameters_and_locators_fail_and_are_recorded(
        emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import (
        SalesforceMalformedRequest,
        SalesforceResourceNotFound,
    )

    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Opportunity/listviews")
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("query/", params={"q": "SELECT Id FROM Account", "explain": "1"})
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_QUERY_LOCATOR"):
        sf.query_more("/services/data/v59.0/query/01gNOPE000000000AAA-2000",
                      identifier_is_url=True)
    assert len(emu.unexpected) == 2
    emu.unexpected.clear()


# ---- describe, rows, history --------------------------------------------------------------
def test_describe_reports_updateable_and_the_org_switches(emu: SalesforceEmulator,
                                                          sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Opportunity", "OpportunityHistory", "ActionCadenceStepVariant"} <= names
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Amount"]["updateable"] and not fields["IsWon"]["updateable"]
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    template = {f["name"]: f["updateable"] for f in sf.EmailTemplate.describe()["fields"]}
    assert template["Body"] and template["HtmlValue"] and not template["IsBuilderContent"]

    def split_updateable() -> bool:
        return next(f["updateable"] for f in sf.ActionCadenceStepVariant.describe()["fields"]
                    if f["name"] == "SplitPercentage")

    assert split_updateable()
    emu.variant_testing = False
    assert not split_updateable()
    emu.sales_engagement = False
    assert "ActionCadence" not in {o["name"] for o in sf.describe()["sobjects"]}
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_TYPE"):
        sf.query("SELECT Id FROM ActionCadence")


def test_rows_create_get_update_upsert_and_history(emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    emu.add_custom_field("Opportunity", "Key__c", "string").external_id = True
    oid = emu.add_opportunity({"Name": "Big"}, [
        {"StageName": "Prospecting", "Amount": 100, "CloseDate": "2026-03-01",
         "Probability": 10, "CreatedDate": "2026-01-01T00:00:00Z"},
        {"StageName": "Negotiation/Review", "Amount": 150, "CloseDate": "2026-03-08",
         "Probability": 90, "CreatedDate": "2026-02-01T00:00:00Z"}])
    assert sf.Opportunity.get(oid)["Amount"] == 150.0
    assert sf.Opportunity.update(oid, {"CloseDate": "2026-04-01", "StageName": "Closed Won"}) \
        == 204
    history = sf.query_all(
        f"SELECT StageName, Amount, CloseDate, PrevAmount, PrevCloseDate FROM "
        f"OpportunityHistory WHERE OpportunityId = '{oid}' ORDER BY CreatedDate")["records"]
    assert [(h["StageName"], h["PrevCloseDate"]) for h in history] == [
        ("Prospecting", None), ("Negotiation/Review", "2026-03-01"),
        ("Closed Won", "2026-03-08")]
    assert history[1]["PrevAmount"] == 100.0
    got = sf.Opportunity.get(oid)
    assert got["IsWon"] is True and got["IsClosed"] is True
    assert got["SystemModstamp"] > "2026-02-01T00:00:00.000+0000"

    task = sf.Task.create({"WhatId": oid, "Subject": "learnloop: risk high",
                           "Status": "Completed", "ActivityDate": "2026-03-01"})
    assert task["success"] and emu.get("Task", task["id"])["IsClosed"] is True
    assert sf.Opportunity.upsert("Key__c/K-1", {"Name": "New", "StageName": "Prospecting",
                                                "CloseDate": "2026-05-01"}) == 201
    assert sf.Opportunity.upsert("Key__c/K-1", {"Amount": 7}) == 200
    assert sf.query("SELECT Amount FROM Opportunity WHERE Key__c = 'K-1'")["records"][0][
        "Amount"] == 7.0
    for bad, code in [({"IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
                      ({"Nope__c": 1}, "INVALID_FIELD"),
                      ({"Amount": "lots"}, "JSON_PARSER_ERROR"),
                      ({"AccountId": "001000000000000AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
                      ({"Name": "x" * 300}, "STRING_TOO_LONG")]:
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.Opportunity.update(oid, bad)
        assert err.value.content[0]["errorCode"] == code
    with pytest.raises(SalesforceMalformedRequest, match="REQUIRED_FIELD_MISSING"):
        sf.Opportunity.create({"Name": "no stage"})


def test_split_percentages_are_checked(emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    cadence = emu.add("ActionCadence", {"Name": "Outbound", "State": "Active"})
    step = emu.add("ActionCadenceStep", {"ActionCadenceId": cadence, "Name": "Email 1",
                                         "Type": "SendAnEmail", "IsOrphan": False})
    v1 = emu.add("ActionCadenceStepVariant", {"ActionCadenceStepId": step, "Name": "A",
                                              "SplitPercentage": 50})
    v2 = emu.add("ActionCadenceStepVariant", {"ActionCadenceStepId": step, "Name": "B",
                                              "SplitPercentage": 50})
    with pytest.raises(SalesforceMalformedRequest, match="FIELD_INTEGRITY_EXCEPTION"):
        sf.ActionCadenceStepVariant.update(v1, {"SplitPercentage": 70})
    result = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "ActionCadenceStepVariant"}, "id": v2, "SplitPercentage": 30},
        {"attributes": {"type": "ActionCadenceStepVariant"}, "id": v1, "SplitPercentage": 70}]})
    assert [r["success"] for r in result] == [True, True]
    emu.variant_testing = False
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        sf.ActionCadenceStepVariant.update(v1, {"SplitPercentage": 60})


def test_updated_and_deleted_feeds(emu: SalesforceEmulator, sf: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    base = {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-03-01"}
    keep = emu.add("Opportunity", base, modstamp=now - dt.timedelta(minutes=10))
    gone = emu.add("Opportunity", base, modstamp=now - dt.timedelta(minutes=10))
    emu.delete("Opportunity", gone, now - dt.timedelta(minutes=5))
    opportunity(emu)  # changed this minute: Salesforce covers whole minutes only
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(minutes=2)
    assert sf.Opportunity.updated(start, end)["ids"] == [keep]
    deleted = sf.Opportunity.deleted(start, end)["deletedRecords"]
    assert [d["id"] for d in deleted] == [gone]
    rows = sf.query_all("SELECT Id, IsDeleted FROM Opportunity", include_deleted=True)
    assert {r["Id"]: r["IsDeleted"] for r in rows["records"]
            if r["Id"] in (keep, gone)} == {keep: False, gone: True}
    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 2


# ---- composite ----------------------------------------------------------------------------
def test_collections_per_record_errors_rollback_and_the_200_limit(
        emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    ids = [opportunity(emu, Name=f"O{i}") for i in range(3)]
    emu.record_errors[ids[1]] = ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", 1)

    def patch(records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
        return sf.restful("composite/sobjects", method="PATCH",
                          json={"allOrNone": all_or_none, "records": records})

    recs = [{"attributes": {"type": "Opportunity"}, "id": i, "Amount": 9} for i in ids]
    out = patch(recs)
    assert [r["success"] for r in out] == [True, False, True]
    assert out[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert patch([recs[1]])[0]["success"]  # the lock was once: a retry alone succeeds
    bad = [{**recs[0], "Amount": 1}, {**recs[2], "IsWon": True}]
    out = patch(bad, all_or_none=True)
    assert [e["errors"][0]["statusCode"] for e in out] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert emu.get("Opportunity", ids[0])["Amount"] == 9.0
    with pytest.raises(SalesforceMalformedRequest, match="EXCEEDED_ID_LIMIT"):
        patch([recs[0]] * 201)
    created = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Task"}, "Subject": "s", "Status": "Completed",
         "WhatId": ids[0]}]})
    assert created[0]["success"]
    got = sf.restful("composite/sobjects/Opportunity",
                     params={"ids": ",".join(ids), "fields": "Id,Amount"})
    assert [g["Amount"] for g in got] == [9.0, 9.0, 9.0]


def test_composite_runs_subrequests_as_one_call(emu: SalesforceEmulator, sf: Any) -> None:
    opportunity(emu)
    before = len(emu.calls)
    out = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "GET", "referenceId": "o",
         "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Opportunity"},
        {"method": "GET", "referenceId": "bad",
         "url": "/services/data/v59.0/query/?q=SELECT+Nope+FROM+Account"}]})
    assert len(emu.calls) == before + 1
    assert [r["httpStatusCode"] for r in out["compositeResponse"]] == [200, 400]
    assert out["compositeResponse"][0]["body"]["totalSize"] == 1


# ---- limits and faults --------------------------------------------------------------------
def test_limit_info_quota_and_503(emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

    emu.daily_max, emu.daily_used = 100, 40
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 41 and sf.api_usage["api-usage"].total == 100
    assert sf.limits()["DailyApiRequests"] == {"Max": 100, "Remaining": 58}
    emu.fail_503 = 1
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT Id FROM Account")
    emu.quota_after = 1
    sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM Account")
    assert err.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_targeted_faults_and_edits_by_users(emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceGeneralError

    oid = sf.Opportunity.create({"Name": "D", "StageName": "Prospecting",
                                 "CloseDate": "2026-03-01", "Amount": 10})["id"]
    emu.fail_on(r"FROM OpportunityHistory", 503, times=1)
    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 1
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT Id FROM OpportunityHistory")
    assert sf.query("SELECT Id FROM OpportunityHistory")["totalSize"] == 1
    before = emu.get("Opportunity", oid)["SystemModstamp"]
    emu.edit("Opportunity", oid, {"CloseDate": "2026-06-30"})
    assert emu.get("Opportunity", oid)["SystemModstamp"] > before
    rows = sf.query_all(f"SELECT CloseDate, PrevCloseDate FROM OpportunityHistory "
                        f"WHERE OpportunityId = '{oid}' ORDER BY CreatedDate")["records"]
    assert rows[-1]["CloseDate"] == "2026-06-30" and rows[-1]["PrevCloseDate"] == "2026-03-01"


def test_a_field_deleted_under_a_sync(emu: SalesforceEmulator, sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    oid = opportunity(emu)
    emu.delete_field("Opportunity", "NextStep")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.query("SELECT Id, NextStep FROM Opportunity")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.Opportunity.update(oid, {"NextStep": "call"})


# ---- Bulk API 2.0 -------------------------------------------------------------------------
def test_bulk_query_pages_with_locators(emu: SalesforceEmulator, sf: Any) -> None:
    import csv

    emu.seed_pipeline(2500, histories=1)
    pages = list(sf.bulk2.Opportunity.query("SELECT Id, Amount, Account.Industry FROM "
                                            "Opportunity", max_records=1000, wait=0.01))
    assert len(pages) == 3
    rows = [r for p in pages for r in csv.DictReader(p.splitlines())]
    assert len(rows) == 2500 and len({r["Id"] for r in rows}) == 2500
    assert rows[0]["Account.Industry"] == "Technology"
    results = [c for c in emu.calls if c.path.endswith("/results")]
    assert [c.records for c in results] == [1000, 1000, 500]


def test_bulk_ingest_failed_results_and_failing_jobs(emu: SalesforceEmulator, sf: Any) -> None:
    import csv

    from simple_salesforce.exceptions import (
        SalesforceExpiredSession,
        SalesforceMalformedRequest,
        SalesforceOperationError,
    )

    ids = [opportunity(emu, Name=f"O{i}") for i in range(3)]
    result = sf.bulk2.Opportunity.update(records=[
        {"Id": ids[0], "Amount": 5}, {"Id": ids[1], "Amount": "x"},
        {"Id": ids[2], "IsWon": "true"}], wait=0.01)
    assert result[0]["numberRecordsFailed"] == 2 and result[0]["numberRecordsProcessed"] == 3
    failed = sf.bulk2.Opportunity.get_failed_records(result[0]["job_id"])
    rows = list(csv.DictReader(failed.splitlines()))
    assert {r["sf__Id"]: r["sf__Error"].split(":")[0] for r in rows} == {
        ids[1]: "JSON_PARSER_ERROR", ids[2]: "INVALID_FIELD_FOR_INSERT_UPDATE"}
    assert rows[0]["Amount"] in ("x", "")  # the uploaded columns follow; a failed row writes nothing
    assert emu.get("Opportunity", ids[0])["Amount"] == 5.0
    assert emu.get("Opportunity", ids[2])["IsWon"] is False
    emu.bulk.fail_next = 1
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        list(sf.bulk2.Opportunity.query("SELECT Id FROM Opportunity", wait=0.01))
    emu.bulk.unsupported.add("Opportunity")
    with pytest.raises(SalesforceMalformedRequest, match="INVALIDENTITY"):
        list(sf.bulk2.Opportunity.query("SELECT Id FROM Opportunity", wait=0.01))
    emu.bulk.unsupported.clear()
    emu.expire_after = 1  # the job is created, its first poll finds the session expired
    with pytest.raises(SalesforceExpiredSession):  # Bulk 2.0 gets no re-login from the client
        list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0.01))
    job = next(j for j in emu.bulk.jobs.values() if j.object == "Account")
    again = jwt_client(emu)  # a new token: the job is still there and completes
    states = [again.restful(f"jobs/query/{job.id}")["state"] for _ in range(2)]
    assert states == ["InProgress", "JobComplete"]


# ---- Metadata API -------------------------------------------------------------------------
def test_custom_fields_and_field_permissions_through_the_metadata_api(
        emu: SalesforceEmulator, sf: Any) -> None:
    md = sf.mdapi
    md.CustomField.create([
        md.CustomField(fullName="Opportunity.learnloop_Win_Probability__c",
                       label="Win probability", type=md.FieldType("Percent"),
                       precision=5, scale=2),
        md.CustomField(fullName="Opportunity.learnloop_P80_Close_Date__c",
                       label="P80 close date", type=md.FieldType("Date"))])
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        md.CustomField.create([md.CustomField(
            fullName="Opportunity.learnloop_P80_Close_Date__c", label="P80",
            type=md.FieldType("Date"))])
    with pytest.raises(Exception, match="precision"):
        md.CustomField.create([md.CustomField(fullName="Opportunity.learnloop_X__c",
                                              label="X", type=md.FieldType("Number"))])

    def custom() -> dict[str, bool]:
        return {f["name"]: f["updateable"] for f in sf.Opportunity.describe()["fields"]
                if f["custom"]}

    assert custom() == {}  # no field-level security yet
    md.PermissionSet.upsert([md.PermissionSet(fullName="learnloop", label="learnloop",
                                              fieldPermissions=[md.PermissionSetFieldPermissions(
                                                  field="Opportunity.learnloop_Win_"
                                                        "Probability__c",
                                                  editable=True, readable=True)])])
    assert custom() == {}  # granted, not yet assigned
    ps = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'learnloop'")["records"][0]["Id"]
    sf.PermissionSetAssignment.create({"AssigneeId": emu.user_id, "PermissionSetId": ps})
    assert custom() == {"learnloop_Win_Probability__c": True}
    oid = opportunity(emu)
    sf.Opportunity.update(oid, {"learnloop_Win_Probability__c": 41.5})
    assert sf.query("SELECT learnloop_Win_Probability__c FROM Opportunity")["records"][0][
        "learnloop_Win_Probability__c"] == 41.5
    assert md.CustomField.read(["Opportunity.learnloop_P80_Close_Date__c"]).label == \
        "P80 close date"
    assert emu.metadata.spec_errors == []


def test_a_metadata_request_outside_the_wsdl_is_a_fault(emu: SalesforceEmulator) -> None:
    import requests

    token = emu.issue_token()
    body = ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/'
            'soap/envelope/" xmlns:m="http://soap.sforce.com/2006/04/metadata"><soapenv:Header>'
            f'<m:SessionHeader><m:sessionId>{token}</m:sessionId></m:SessionHeader>'
            '</soapenv:Header><soapenv:Body><m:createMetadata><m:metadata><m:bogus>1</m:bogus>'
            '</m:metadata></m:createMetadata></soapenv:Body></soapenv:Envelope>')
    answer = requests.post(f"{emu.base}/services/Soap/m/59.0/", data=body, verify=emu.ca_file,
                           headers={"Content-Type": "text/xml", "SOAPAction": '""'}, timeout=10)
    assert answer.status_code == 500 and "faultcode" in answer.text
    assert len(emu.unexpected) == 1 and "WSDL" in emu.unexpected[0]
    emu.unexpected.clear()


# ---- seeding, request log, route inventory ------------------------------------------------
def test_seed_pipeline_histories_and_shared_timestamps(emu: SalesforceEmulator,
                                                       sf: Any) -> None:
    ids = emu.seed_pipeline(300, histories=3, modstamp="2026-01-10T00:00:00Z")
    assert len(ids) == 300 and len(emu.tables["OpportunityHistory"].rows) == 900
    rows = sf.query_all("SELECT Id FROM Opportunity WHERE SystemModstamp = "
                        "2026-01-10T00:00:00Z")["records"]
    assert len(rows) == 300
    hist = sf.query_all(f"SELECT Amount, PrevAmount FROM OpportunityHistory WHERE "
                        f"OpportunityId = '{ids[7]}' ORDER BY CreatedDate")["records"]
    assert [h["PrevAmount"] for h in hist] == [None, hist[0]["Amount"], hist[1]["Amount"]]
    assert emu.api_calls() == 2 and emu.calls[-1].records == 3


def _postman_routes() -> dict[str, tuple[set[str], str]]:
    out: dict[str, tuple[set[str], str]] = {}
    for path in POSTMAN.glob("*/*.json"):
        item = json.loads(path.read_text())
        url = re.sub(r"^\{\{(_endpoint|url)\}\}(\{\{site\}\})?", "", item["url"]).split("?")[0]
        url = re.sub(r"v\{\{version\}\}", "v{}", url)
        url = re.sub(r"\{\{version\}\}|\{\{_jobId\}\}|<[A-Z_]+>", "{}", url).rstrip("/")
        methods, text = out.setdefault(url.lower(), (set(), ""))
        methods.add(item["method"])
        out[url.lower()] = (methods, text + " " + (item.get("description") or ""))
    return out


# (method, template): why the request set names it although not with this exact method/path.
EXTENSIONS = {
    ("GET", "/services/data/v{}/query/{}"):
        "the query resource's nextRecordsUrl (its description; also for queryAll)",
    ("PATCH", "/services/data/v{}/composite/sobjects"):
        "'SObject Collections Update' (the set writes the object into the path)",
    ("PATCH", "/services/data/v{}/sobjects/{}/{}/{}"):
        "'SObject Rows by External ID' describes the upsert",
}


@pytest.mark.skipif(not POSTMAN.is_dir(), reason="../shared (Salesforce's request set) is "
                                                 "not here")
def test_every_served_route_is_named_by_the_request_set() -> None:
    named = _postman_routes()
    missing = []
    for method, template in srv.ROUTES:
        if (method, template) in EXTENSIONS:
            assert template.lower().rsplit("/{}", 1)[0] in named or template.lower() in named
            continue
        entry = named.get(template.lower())
        if entry is None:
            missing.append(f"{method} {template}: path not in the request set")
        elif method not in entry[0] and method not in entry[1]:
            missing.append(f"{method} {template}: the set names {sorted(entry[0])} only")
    assert missing == []


def test_served_requests_fall_under_routes() -> None:
    assert srv.route_of("GET", "/services/data/v59.0/limits/") == ("GET", srv.D + "/limits")
    assert srv.route_of("GET", "/services/data/v59.0/jobs/ingest/7505g0000000001AAA/"
                               "unprocessedRecords") is not None
    assert srv.route_of("GET", "/services/data/v59.0/sobjects/Opportunity/updated/") == \
        ("GET", srv.D + "/sobjects/{}/updated")
    assert srv.route_of("GET", "/services/data/v59.0/sobjects/Opportunity/listviews/x/y") is None


def test_id_comparisons_and_indexed_lookups_match_a_scan(emu: SalesforceEmulator,
                                                         sf: Any) -> None:
    ids = emu.seed_pipeline(30, histories=2)
    later = sf.query_all(f"SELECT Id FROM Opportunity WHERE Id > '{ids[9]}' ORDER BY Id")
    assert [r["Id"] for r in later["records"]] == ids[10:]
    picked = ", ".join(f"'{i}'" for i in (ids[3], ids[1], ids[20]))
    indexed = sf.query_all(f"SELECT Id, OpportunityId FROM OpportunityHistory WHERE "
                           f"OpportunityId IN ({picked})")["records"]
    scanned = sf.query_all(f"SELECT Id, OpportunityId FROM OpportunityHistory WHERE "
                           f"(OpportunityId IN ({picked}) AND Amount > 0)")["records"]
    assert [r["Id"] for r in indexed] == [r["Id"] for r in scanned] and len(indexed) == 6
