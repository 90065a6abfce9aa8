"""sObject Collections over HTTP: per-record results in a 200, allOrNone rollback, 200-record cap (§4, §8.6)."""

from __future__ import annotations

from typing import Any

import httpx


def _accounts(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"attributes": {"type": "Account"}, "Name": f"Acct {i}", **extra} for i in range(n)]


def test_create_answers_200_with_one_result_per_record_in_order(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    records = [*_accounts(2), {"attributes": {"type": "Contact"}, "FirstName": "No last name"}]
    r = rest.post("/composite/sobjects", json={"allOrNone": False, "records": records})
    assert r.status_code == 200
    body = r.json()
    assert [item["success"] for item in body] == [True, True, False]
    assert body[0]["id"].startswith("001") and body[0]["errors"] == []
    assert body[2] == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                     "message": "Required fields are missing: [LastName]",
                                                     "fields": ["LastName"]}]}
    assert len(emulator.state.store.records("Account")) == 2


def test_all_or_none_rolls_back_every_record_when_one_fails(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    records = [*_accounts(2), {"attributes": {"type": "Account"}, "Name": "x" * 300}]
    body = rest.post("/composite/sobjects", json={"allOrNone": True, "records": records}).json()
    assert [e["statusCode"] for item in body for e in item["errors"]] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "STRING_TOO_LONG"]
    assert not any(item["success"] for item in body)
    assert emulator.state.store.records("Account") == []


def test_update_changes_records_and_reports_bad_ids_per_item(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    created = rest.post("/composite/sobjects", json={"records": _accounts(2)}).json()
    updates = [{"attributes": {"type": "Account"}, "id": created[0]["id"], "NumberOfEmployees": 27000},
               {"attributes": {"type": "Account"}, "id": "001xx000003DGb2999", "Name": "bad"},
               {"attributes": {"type": "Account"}, "Id": created[1]["id"], "Phone": "555"}]
    body = rest.patch("/composite/sobjects", json={"allOrNone": False, "records": updates}).json()
    assert [item["success"] for item in body] == [True, False, True]
    assert body[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    store = emulator.state.store
    assert store.get(created[0]["id"])[1]["NumberOfEmployees"] == 27000
    assert store.get(created[1]["id"])[1]["Phone"] == "555"


def test_update_with_all_or_none_restores_earlier_values(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    created = rest.post("/composite/sobjects", json={"records": _accounts(1)}).json()
    updates = [{"attributes": {"type": "Account"}, "id": created[0]["id"], "Name": "Renamed"},
               {"attributes": {"type": "Account"}, "id": created[0]["id"][:3] + "8c0000009999", "Name": "x"}]
    body = rest.patch("/composite/sobjects", json={"allOrNone": True, "records": updates}).json()
    assert body[0] == {"id": created[0]["id"], "success": False,
                       "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                   "message": "Record rolled back because not all records were valid and the "
                                              "request was using AllOrNone header", "fields": []}]}
    assert emulator.state.store.get(created[0]["id"])[1]["Name"] == "Acct 0"


def test_upsert_creates_and_updates_by_external_id_with_created_flags(rest: httpx.Client) -> None:
    rest.patch("/sobjects/Account/External_Id__c/AAA", json={"Name": "Old"})
    records = [{"attributes": {"type": "Account"}, "Name": "Company One", "External_Id__c": "AAA"},
               {"attributes": {"type": "Account"}, "Name": "Company Two", "External_Id__c": "BBB"},
               {"attributes": {"type": "Account"}, "Name": "Twin 1", "External_Id__c": "CCC"},
               {"attributes": {"type": "Account"}, "Name": "Twin 2", "External_Id__c": "ccc"}]
    body = rest.patch("/composite/sobjects/Account/External_Id__c", json={"records": records}).json()
    assert [(i["success"], i.get("created")) for i in body] == [(True, False), (True, True), (False, False),
                                                               (False, False)]
    assert body[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert rest.get("/sobjects/Account/External_Id__c/AAA").json()["Name"] == "Company One"


def test_delete_by_ids_reports_each_and_requires_at_least_one(rest: httpx.Client) -> None:
    created = rest.post("/composite/sobjects", json={"records": _accounts(2)}).json()
    ids = [created[0]["id"], created[1]["id"], "001RM000003oLrB000"]
    body = rest.delete("/composite/sobjects", params={"ids": ",".join(ids), "allOrNone": "false"}).json()
    assert [i["success"] for i in body] == [True, True, False]
    assert body[0] == {"id": created[0]["id"], "success": True, "errors": []}
    assert body[2] == {"success": False, "errors": [{"statusCode": "MALFORMED_ID",
                                                     "message": "malformed id 001RM000003oLrB000", "fields": []}]}
    missing = rest.delete("/composite/sobjects")
    assert missing.status_code == 400
    assert missing.json() == [{"message": "At least 1 Id is required.", "errorCode": "REQUIRED_FIELD_MISSING"}]


def test_more_than_200_records_is_refused_with_400(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    r = rest.post("/composite/sobjects", json={"records": _accounts(201)})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    ok = rest.post("/composite/sobjects", json={"records": _accounts(200)})
    assert ok.status_code == 200 and len(emulator.state.store.records("Account")) == 200


def test_lock_faults_fail_single_records_with_unable_to_lock_row(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.faults.update({"lock_error_rate": 0.5, "seed": 7})
    body = rest.post("/composite/sobjects", json={"records": _accounts(40)}).json()
    codes = [item["errors"][0]["statusCode"] for item in body if not item["success"]]
    assert codes and set(codes) == {"UNABLE_TO_LOCK_ROW"} and len(codes) < 40
    assert len(emulator.state.store.records("Account")) == 40 - len(codes)
