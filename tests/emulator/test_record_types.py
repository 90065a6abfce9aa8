"""Record types: describe's recordTypeInfos (per user), the UI API's picklist values per record type, and
every write path (REST, collections, Bulk 2.0) enforcing them.

The default org's Lead has Sales_Lead (the default: every Status; LeadSource Web, Phone Inquiry, Purchased
List, Other), Partner_Lead (Status without "Working - Contacted"; LeadSource Partner Referral, Other) and the
inactive Legacy_Lead. The restricted user's profile makes only Sales_Lead available.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bulk_api import VERSION, BulkApi
from emulator_rest import rest_client

from salesforce_emulator.org import MASTER_RECORD_TYPE_ID, build_org, default_org_yaml
from salesforce_emulator.permissions import view_for

SALES, PARTNER, LEGACY = "0128c0000000003AAA", "0128c0000000004AAA", "0128c0000000005AAA"
BUSINESS_ACCOUNT = "0128c0000000001AAA"
RESTRICTED = "restricted@emulator.test"
NOT_VALID = "Record Type ID: this ID value isn't valid for the user: "
BAD_STATUS = "Status: bad value for restricted picklist field: Working - Contacted"


def _client(emulator: Any, username: str) -> httpx.Client:
    token = emulator.state.tokens.issue(username, "emulator-client").token
    return httpx.Client(base_url=f"{emulator.url}/services/data/{VERSION}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def admin(emulator: Any) -> Iterator[httpx.Client]:
    with rest_client(emulator) as client:
        yield client


@pytest.fixture
def limited(emulator: Any) -> Iterator[httpx.Client]:
    with _client(emulator, RESTRICTED) as client:
        yield client


def _infos(client: httpx.Client, obj: str = "Lead") -> dict[str, dict[str, Any]]:
    return {rt["developerName"]: rt for rt in client.get(f"/sobjects/{obj}/describe").json()["recordTypeInfos"]}


def _record_type_of(emulator: Any, record_id: str) -> str:
    found = emulator.state.store.get(record_id)
    assert found is not None
    return str(found[1]["RecordTypeId"])


# ----- describe and the UI API -------------------------------------------------------------------------

def test_describe_lists_the_record_types_with_the_users_availability_and_default(admin: httpx.Client,
                                                                                 limited: httpx.Client) -> None:
    mine = _infos(admin)
    assert list(mine) == ["Sales_Lead", "Partner_Lead", "Legacy_Lead", "Master"]
    assert mine["Sales_Lead"] | {"urls": None} == {
        "name": "Sales Lead", "developerName": "Sales_Lead", "recordTypeId": SALES, "available": True,
        "defaultRecordTypeMapping": True, "master": False, "active": True, "urls": None}
    assert (mine["Partner_Lead"]["available"], mine["Partner_Lead"]["defaultRecordTypeMapping"]) == (True, False)
    assert (mine["Legacy_Lead"]["active"], mine["Legacy_Lead"]["available"]) == (False, False)
    assert mine["Master"]["master"] and mine["Master"]["recordTypeId"] == MASTER_RECORD_TYPE_ID
    assert not mine["Master"]["available"]  # the object has record types of its own
    theirs = _infos(limited)
    assert theirs["Sales_Lead"]["available"] and theirs["Sales_Lead"]["defaultRecordTypeMapping"]
    assert not theirs["Partner_Lead"]["available"]
    fields = {f["name"] for f in admin.get("/sobjects/Lead/describe").json()["fields"]}
    assert "RecordTypeId" in fields


def test_an_object_without_record_types_describes_only_master(admin: httpx.Client) -> None:
    infos = admin.get("/sobjects/Case/describe").json()["recordTypeInfos"]
    assert [(rt["recordTypeId"], rt["master"], rt["available"], rt["defaultRecordTypeMapping"]) for rt in infos] == [
        (MASTER_RECORD_TYPE_ID, True, True, True)]
    assert "RecordTypeId" not in {f["name"] for f in admin.get("/sobjects/Case/describe").json()["fields"]}


def test_the_ui_api_serves_one_fields_values_in_a_record_type(admin: httpx.Client) -> None:
    body = admin.get(f"/ui-api/object-info/Lead/picklist-values/{PARTNER}/Status").json()
    assert [v["value"] for v in body["values"]] == ["Open - Not Contacted", "Closed - Converted",
                                                    "Closed - Not Converted"]
    assert body["values"][0] == {"attributes": None, "label": "Open - Not Contacted", "validFor": [],
                                 "value": "Open - Not Contacted"}
    assert body["defaultValue"]["value"] == "Open - Not Contacted" and body["controllerValues"] == {}
    assert body["url"] == f"/services/data/{VERSION}/ui-api/object-info/Lead/picklist-values/{PARTNER}/Status"
    sales = admin.get(f"/ui-api/object-info/Lead/picklist-values/{SALES}/Status").json()
    assert "Working - Contacted" in [v["value"] for v in sales["values"]]  # a field the type does not narrow


def test_the_ui_api_serves_every_picklist_of_a_record_type(admin: httpx.Client) -> None:
    body = admin.get(f"/ui-api/object-info/Lead/picklist-values/{PARTNER}").json()
    values = {name: [v["value"] for v in field["values"]] for name, field in body["picklistFieldValues"].items()}
    assert set(values) == {"Status", "LeadSource", "Industry", "Rating"}
    assert values["LeadSource"] == ["Partner Referral", "Other"]
    master = admin.get(f"/ui-api/object-info/Case/picklist-values/{MASTER_RECORD_TYPE_ID}").json()
    assert [v["value"] for v in master["picklistFieldValues"]["Priority"]["values"]] == ["High", "Medium", "Low"]


def test_the_ui_api_answers_not_found_for_an_unknown_record_type_or_field(admin: httpx.Client) -> None:
    for path in (f"/ui-api/object-info/Lead/picklist-values/{BUSINESS_ACCOUNT}",
                 f"/ui-api/object-info/Lead/picklist-values/{SALES}/Company",
                 f"/ui-api/object-info/Nope__c/picklist-values/{SALES}"):
        r = admin.get(path)
        assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND", path


# ----- REST --------------------------------------------------------------------------------------------

def test_a_create_without_record_type_gets_the_users_default(emulator: Any, admin: httpx.Client) -> None:
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X"})
    assert r.status_code == 201 and _record_type_of(emulator, r.json()["id"]) == SALES
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": None})
    assert r.status_code == 201 and _record_type_of(emulator, r.json()["id"]) == SALES


def test_the_profiles_default_record_type_is_the_users() -> None:
    raw = default_org_yaml()
    raw["profiles"]["Restricted Integration"]["record_types"] = {
        "Lead": {"available": ["Sales_Lead", "Partner_Lead"], "default": "Partner_Lead"}}
    org = build_org(raw)
    lead = view_for(org, org.users[2]).object("Lead")
    default = lead.default_record_type() if lead is not None else None
    assert default is not None and default.developer_name == "Partner_Lead"
    with pytest.raises(ValueError, match="not among available"):
        raw["profiles"]["Restricted Integration"]["record_types"] = {"Lead": {"available": [], "default": "X"}}
        build_org(raw)


def test_a_restricted_value_outside_the_record_types_values_is_refused(emulator: Any, admin: httpx.Client) -> None:
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": PARTNER,
                                           "Status": "Working - Contacted"})
    assert r.status_code == 400 and r.json() == [{"message": BAD_STATUS,
                                                  "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                                  "fields": ["Status"]}]
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "Status": "Working - Contacted"})
    assert r.status_code == 201  # the default record type (Sales_Lead) offers it


def test_an_unrestricted_picklist_takes_values_outside_the_record_type(admin: httpx.Client) -> None:
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": PARTNER,
                                           "LeadSource": "Web"})
    assert r.status_code == 201, r.text


def test_an_update_checks_values_against_the_records_own_record_type(emulator: Any, admin: httpx.Client) -> None:
    partner = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": PARTNER}).json()["id"]
    r = admin.patch(f"/sobjects/Lead/{partner}", json={"Status": "Working - Contacted"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    r = admin.patch(f"/sobjects/Lead/{partner}", json={"Status": "Working - Contacted", "RecordTypeId": SALES})
    assert r.status_code == 204 and _record_type_of(emulator, partner) == SALES  # the new type offers it
    r = admin.patch(f"/sobjects/Lead/{partner}", json={"RecordTypeId": None, "City": "Oslo"})
    assert r.status_code == 204 and _record_type_of(emulator, partner) == SALES  # null keeps the record's


def test_a_record_type_that_is_inactive_unavailable_or_another_objects_is_invalid(
        admin: httpx.Client, limited: httpx.Client) -> None:
    for client, rt in ((admin, LEGACY), (admin, BUSINESS_ACCOUNT), (admin, "012000000000999AAA"),
                       (admin, MASTER_RECORD_TYPE_ID), (limited, PARTNER)):
        r = client.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": rt})
        assert r.status_code == 400 and r.json() == [{"message": NOT_VALID + rt, "errorCode":
                                                      "INVALID_CROSS_REFERENCE_KEY", "fields": ["RecordTypeId"]}], rt
    r = limited.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": SALES})
    assert r.status_code == 201
    r = admin.post("/sobjects/Lead", json={"LastName": "A", "Company": "X", "RecordTypeId": "012-nope"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_ID"


# ----- collections and Bulk 2.0 ------------------------------------------------------------------------

def test_collections_report_record_type_errors_per_record(admin: httpx.Client) -> None:
    records = [{"attributes": {"type": "Lead"}, "LastName": "A", "Company": "X", "RecordTypeId": PARTNER,
                "Status": "Working - Contacted"},
               {"attributes": {"type": "Lead"}, "LastName": "B", "Company": "X", "RecordTypeId": LEGACY},
               {"attributes": {"type": "Lead"}, "LastName": "C", "Company": "X", "RecordTypeId": PARTNER,
                "Status": "Closed - Converted"}]
    body = admin.post("/composite/sobjects", json={"records": records}).json()
    assert [item["success"] for item in body] == [False, False, True]
    assert body[0]["errors"] == [{"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "message": BAD_STATUS,
                                  "fields": ["Status"]}]
    assert body[1]["errors"] == [{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": NOT_VALID + LEGACY,
                                  "fields": ["RecordTypeId"]}]


def test_bulk_rows_get_record_type_errors_and_defaults(emulator: Any) -> None:
    with BulkApi.connect(emulator) as bulk:
        _bulk_rows_get_record_type_errors_and_defaults(emulator, bulk)


def _bulk_rows_get_record_type_errors_and_defaults(emulator: Any, bulk: BulkApi) -> None:
    job_id, info = bulk.run("LastName,Company,RecordTypeId,Status\n"
                            f"A,X,{PARTNER},Working - Contacted\n"
                            f"B,X,{LEGACY},\n"
                            "C,X,,Working - Contacted\n"
                            f"D,X,{PARTNER},Closed - Converted\n",
                            object="Lead", operation="insert", contentType="CSV", lineEnding="LF")
    assert info["numberRecordsFailed"] == 2 and info["numberRecordsProcessed"] == 4
    failed = bulk.result(job_id, "failedResults")
    assert f'"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:{BAD_STATUS}:Status --"' in failed
    assert f'"INVALID_CROSS_REFERENCE_KEY:{NOT_VALID}{LEGACY}:RecordTypeId --"' in failed
    ok = bulk.result(job_id, "successfulResults").splitlines()[1:]
    created = {row.split(",")[0].strip('"'): row.split(",")[2].strip('"') for row in ok}  # sf__Id → LastName
    assert sorted(created.values()) == ["C", "D"]
    by_name = {name: _record_type_of(emulator, rid) for rid, name in created.items()}
    assert by_name == {"C": SALES, "D": PARTNER}  # an empty cell is not given: the default


def test_an_org_yaml_object_with_record_types_gets_a_record_type_field_and_its_values_are_checked() -> None:
    raw = default_org_yaml()
    raw["objects"]["Case"]["record_types"] = [
        {"id": "0128c0000000009AAA", "developer_name": "Support", "default": True,
         "picklists": {"Status": ["New", "Closed"]}}]
    case = build_org(raw).object("Case")
    assert case is not None and case.field("RecordTypeId") is not None
    raw["objects"]["Case"]["record_types"][0]["picklists"] = {"Status": ["Reopened"]}
    with pytest.raises(ValueError, match="Status has no values"):
        build_org(raw)
    raw["objects"]["Case"]["record_types"][0] = {"id": "0018c0000000009AAA", "developer_name": "Support"}
    with pytest.raises(ValueError, match="starts with 012"):
        build_org(raw)
