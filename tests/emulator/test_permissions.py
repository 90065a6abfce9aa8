"""Profiles and permission sets: describe, SOQL and every write path answer for the calling user.

The default org's `restricted@emulator.test` has the "Restricted Integration" profile (Lead: create,
read, edit with AnnualRevenue read-only and Rating invisible; Contact: read, edit; Account: read) and
the "Case_Intake" permission set (Case: create, read; Priority read-only). The admin has full access.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bulk_api import VERSION, BulkApi
from emulator_rest import rest_client

from salesforce_emulator.org import build_org, default_org_yaml
from salesforce_emulator.permissions import view_for

RESTRICTED = "restricted@emulator.test"
READ_ONLY_MESSAGE = ("Unable to create/update fields: AnnualRevenue. Please check the security settings of this "
                     "field and verify that it is read/write for your profile or permission set.")
NO_ACCESS = {"message": "insufficient access rights on object id", "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY"}


def _client(emulator: Any, username: str) -> httpx.Client:
    token = emulator.state.tokens.issue(username, "emulator-client").token
    return httpx.Client(base_url=f"{emulator.url}/services/data/v62.0",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def limited(emulator: Any) -> Iterator[httpx.Client]:
    with _client(emulator, RESTRICTED) as client:
        yield client


@pytest.fixture
def admin(emulator: Any) -> Iterator[httpx.Client]:
    with rest_client(emulator) as client:
        yield client


def _lead(admin: httpx.Client, **extra: Any) -> str:
    r = admin.post("/sobjects/Lead", json={"LastName": "Ng", "Company": "Acme", **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# ----- describe ----------------------------------------------------------------------------------------

def test_describe_answers_for_the_calling_user(admin: httpx.Client, limited: httpx.Client) -> None:
    full = {f["name"]: f for f in admin.get("/sobjects/Lead/describe").json()["fields"]}
    mine = limited.get("/sobjects/Lead/describe").json()
    fields = {f["name"]: f for f in mine["fields"]}
    assert full["Rating"]["createable"] and full["AnnualRevenue"]["updateable"]
    assert "Rating" not in fields  # invisible: absent
    assert not fields["AnnualRevenue"]["createable"] and not fields["AnnualRevenue"]["updateable"]
    assert fields["Email"]["createable"] and fields["Email"]["updateable"]
    assert (mine["createable"], mine["updateable"], mine["deletable"], mine["queryable"]) == (True, True, False, True)
    contact = limited.get("/sobjects/Contact/describe").json()
    assert (contact["createable"], contact["updateable"], contact["deletable"]) == (False, True, False)
    contact_fields = {f["name"]: f for f in contact["fields"]}
    assert not contact_fields["Email"]["createable"] and contact_fields["Email"]["updateable"]
    assert not contact_fields["Title"]["updateable"] and "Birthdate" not in contact_fields


def test_objects_the_user_cannot_read_are_not_there_for_them(admin: httpx.Client, limited: httpx.Client) -> None:
    names = {o["name"] for o in limited.get("/sobjects").json()["sobjects"]}
    assert {"Lead", "Contact", "Account", "Case"} <= names
    assert "Opportunity" not in names and "Survey_Response__c" not in names
    assert limited.get("/sobjects/Opportunity/describe").status_code == 404
    assert admin.get("/sobjects/Opportunity/describe").status_code == 200
    r = limited.post("/sobjects/Opportunity", json={"Name": "x"})
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"


def test_a_permission_set_adds_to_the_profile(limited: httpx.Client) -> None:
    case = limited.get("/sobjects/Case/describe").json()
    assert (case["createable"], case["updateable"]) == (True, False)
    assert not {f["name"]: f for f in case["fields"]}["Priority"]["createable"]
    assert limited.post("/sobjects/Case", json={"Subject": "Help"}).status_code == 201


def test_the_default_users_keep_full_access() -> None:
    org = build_org(default_org_yaml())
    for username in ("admin@emulator.test", "integration@emulator.test"):
        user = next(u for u in org.users if u.username == username)
        assert view_for(org, user) is org


# ----- single-record REST ------------------------------------------------------------------------------

def test_writing_a_read_only_field_is_invalid_field_for_insert_update(admin: httpx.Client,
                                                                      limited: httpx.Client) -> None:
    r = limited.post("/sobjects/Lead", json={"LastName": "Ng", "Company": "Acme", "AnnualRevenue": 5})
    assert r.status_code == 400
    assert r.json() == [{"message": READ_ONLY_MESSAGE, "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                         "fields": ["AnnualRevenue"]}]
    lead = _lead(admin)
    r = limited.patch(f"/sobjects/Lead/{lead}", json={"AnnualRevenue": 5})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert admin.patch(f"/sobjects/Lead/{lead}", json={"AnnualRevenue": 5}).status_code == 204


def test_writing_an_invisible_field_is_no_such_column(limited: httpx.Client) -> None:
    r = limited.post("/sobjects/Lead", json={"LastName": "Ng", "Company": "Acme", "Rating": "Hot"})
    assert r.status_code == 400
    assert r.json() == [{"message": "No such column 'Rating' on sobject of type Lead", "errorCode": "INVALID_FIELD",
                         "fields": ["Rating"]}]


def test_missing_object_permissions_are_insufficient_access(admin: httpx.Client, limited: httpx.Client) -> None:
    r = limited.post("/sobjects/Contact", json={"LastName": "Ng"})
    assert (r.status_code, r.json()) == (400, [NO_ACCESS])
    account = admin.post("/sobjects/Account", json={"Name": "Acme"}).json()["id"]
    r = limited.patch(f"/sobjects/Account/{account}", json={"Name": "Other"})
    assert (r.status_code, r.json()) == (400, [NO_ACCESS])
    lead = _lead(admin)
    r = limited.delete(f"/sobjects/Lead/{lead}")
    assert (r.status_code, r.json()) == (400, [NO_ACCESS])
    assert admin.get(f"/sobjects/Lead/{lead}").status_code == 200


def test_allowed_writes_succeed_and_reads_hide_invisible_fields(admin: httpx.Client, limited: httpx.Client) -> None:
    lead = _lead(admin, Rating="Hot")
    assert limited.patch(f"/sobjects/Lead/{lead}", json={"Title": "CTO"}).status_code == 204
    record = limited.get(f"/sobjects/Lead/{lead}").json()
    assert record["Title"] == "CTO" and "Rating" not in record
    assert admin.get(f"/sobjects/Lead/{lead}").json()["Rating"] == "Hot"


def test_upsert_needs_create_to_create_and_edit_to_update(admin: httpx.Client, limited: httpx.Client) -> None:
    r = limited.patch("/sobjects/Contact/External_Id__c/c-1", json={"LastName": "Ng"})
    assert (r.status_code, r.json()) == (400, [NO_ACCESS])
    assert admin.patch("/sobjects/Contact/External_Id__c/c-1", json={"LastName": "Ng"}).status_code == 201
    r = limited.patch("/sobjects/Contact/External_Id__c/c-1", json={"LastName": "Nguyen"})
    assert r.status_code == 200 and r.json()["created"] is False
    r = limited.patch("/sobjects/Lead/External_Id__c/l-1", json={"LastName": "Ng", "Company": "A",
                                                                 "AnnualRevenue": 1})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


# ----- collections -------------------------------------------------------------------------------------

def test_collections_report_permission_errors_per_record(admin: httpx.Client, limited: httpx.Client) -> None:
    records = [{"attributes": {"type": "Lead"}, "LastName": "A", "Company": "X"},
               {"attributes": {"type": "Lead"}, "LastName": "B", "Company": "X", "AnnualRevenue": 3},
               {"attributes": {"type": "Contact"}, "LastName": "C"},
               {"attributes": {"type": "Opportunity"}, "Name": "D"}]
    body = limited.post("/composite/sobjects", json={"records": records}).json()
    assert body[0]["success"] is True
    assert body[1] == {"success": False, "errors": [{"statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                                                     "message": READ_ONLY_MESSAGE, "fields": ["AnnualRevenue"]}]}
    assert body[2] == {"success": False, "errors": [{"statusCode": "INSUFFICIENT_ACCESS_OR_READONLY",
                                                     "message": "insufficient access rights on object id",
                                                     "fields": []}]}
    assert body[3]["errors"][0]["statusCode"] == "INVALID_TYPE"
    lead = body[0]["id"]
    deleted = limited.delete("/composite/sobjects", params={"ids": lead}).json()
    assert deleted[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    account = admin.post("/sobjects/Account", json={"Name": "Acme"}).json()["id"]
    updated = limited.patch("/composite/sobjects", json={"records": [
        {"attributes": {"type": "Account"}, "id": account, "Name": "B"},
        {"attributes": {"type": "Lead"}, "id": lead, "Rating": "Hot"}]}).json()
    assert updated[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert updated[1]["errors"][0] == {"statusCode": "INVALID_FIELD", "fields": ["Rating"],
                                       "message": "No such column 'Rating' on sobject of type Lead"}


def test_collections_upsert_checks_field_security(limited: httpx.Client) -> None:
    body = limited.patch("/composite/sobjects/Lead/External_Id__c", json={"records": [
        {"attributes": {"type": "Lead"}, "External_Id__c": "a", "LastName": "A", "Company": "X"},
        {"attributes": {"type": "Lead"}, "External_Id__c": "b", "LastName": "B", "Company": "X",
         "AnnualRevenue": 1}]}).json()
    assert body[0]["success"] and body[0]["created"]
    assert body[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


# ----- SOQL --------------------------------------------------------------------------------------------

def test_soql_on_an_invisible_field_is_no_such_column(admin: httpx.Client, limited: httpx.Client) -> None:
    _lead(admin, Rating="Hot")
    r = limited.get("/query", params={"q": "SELECT Id, Rating FROM Lead"})
    assert r.status_code == 400
    error = r.json()[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Rating' on entity 'Lead'" in error["message"]
    assert admin.get("/query", params={"q": "SELECT Id, Rating FROM Lead"}).status_code == 200
    r = limited.get("/query", params={"q": "SELECT Id FROM Lead WHERE Rating = 'Hot'"})
    assert r.status_code == 400 and "No such column 'Rating'" in r.json()[0]["message"]
    rows = limited.get("/query", params={"q": "SELECT Id, AnnualRevenue FROM Lead"}).json()["records"]
    assert len(rows) == 1 and "AnnualRevenue" in rows[0]
    r = limited.get("/query", params={"q": "SELECT Id FROM Opportunity"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"


# ----- Bulk 2.0 ----------------------------------------------------------------------------------------

def _bulk_as(emulator: Any, username: str) -> BulkApi:
    token = emulator.state.tokens.issue(username, "emulator-client").token
    return BulkApi(httpx.Client(base_url=f"{emulator.url}/services/data/{VERSION}/jobs/ingest",
                                headers={"Authorization": f"Bearer {token}"}, timeout=30))


def _run_job(bulk: BulkApi, csv: str, **job: Any) -> tuple[dict[str, Any], str, str]:
    job_id = bulk.job(contentType="CSV", lineEnding="LF", **job)
    assert bulk.upload(job_id, csv).status_code == 201
    assert bulk.patch(job_id, "UploadComplete").status_code == 200
    info = bulk.wait(job_id)
    ok = bulk.http.get(f"/{job_id}/successfulResults").text
    failed = bulk.http.get(f"/{job_id}/failedResults").text
    return info, ok, failed


def test_bulk_rows_get_the_permission_errors(emulator: Any) -> None:
    with _bulk_as(emulator, RESTRICTED) as bulk:
        info, ok, failed = _run_job(bulk, "LastName,Company,AnnualRevenue\nA,X,\nB,X,5\n", object="Lead",
                                    operation="insert")
        assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 1
        assert ok.count("\n") == 2
        assert f'"INVALID_FIELD_FOR_INSERT_UPDATE:{READ_ONLY_MESSAGE}:AnnualRevenue --"' in failed
        info, _, failed = _run_job(bulk, "LastName\nA\n", object="Contact", operation="insert")
    assert "INSUFFICIENT_ACCESS_OR_READONLY:insufficient access rights on object id:--" in failed


def test_a_bulk_column_the_user_cannot_see_fails_the_job(emulator: Any) -> None:
    with _bulk_as(emulator, RESTRICTED) as bulk:
        info, _, _ = _run_job(bulk, "LastName,Company,Rating\nA,X,Hot\n", object="Lead", operation="insert")
        assert info["state"] == "Failed" and info["errorMessage"] == "InvalidBatch : Field name not found : Rating"
        r = bulk.create(object="Opportunity", operation="insert", contentType="CSV")
    assert r.status_code == 400 and "Unable to find object: Opportunity" in r.json()[0]["message"]


def test_the_restricted_user_logs_in_through_its_own_client(emulator: Any) -> None:
    r = httpx.post(f"{emulator.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "restricted-client", "client_secret": "restricted-secret"})
    token = r.json()["access_token"]
    started = time.monotonic()
    r = httpx.get(f"{emulator.url}/services/data/v62.0/sobjects/Lead/describe",
                  headers={"Authorization": f"Bearer {token}"})
    assert time.monotonic() - started < 10
    assert "Rating" not in {f["name"] for f in r.json()["fields"]}


def test_grants_combine_and_system_fields_never_disappear() -> None:
    raw = default_org_yaml()
    raw["users"].append({"username": "u@x.test", "password": "p", "id": "0058c0000000009AAA", "profile": "P",
                         "permission_sets": ["S"]})
    raw["profiles"]["P"] = {"objects": {"Account": ["read", "edit"]},
                            "fields": {"Account": {"Name": "none", "Phone": "none", "Website": "read"}}}
    raw["permission_sets"]["S"] = {"objects": {"Account": ["delete"]}, "fields": {"Account": {"Phone": "edit"}}}
    org = build_org(raw)
    account = view_for(org, org.users[-1]).object("Account")
    assert account is not None and (account.createable, account.updateable, account.deletable) == (False, True, True)
    name, phone, website = account.field("Name"), account.field("Phone"), account.field("Website")
    assert name is not None and not name.updateable  # `none` on a system field: read-only, still there
    assert phone is not None and phone.updateable  # the permission set raised what the profile hid
    assert website is not None and not website.updateable
    assert org.object("Account").field("Website").updateable  # type: ignore[union-attr]  # the org is untouched
