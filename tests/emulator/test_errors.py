"""One test per Salesforce error code the emulator produces on single-record REST calls: the HTTP status and
the exact body shape of the reference (§2, §6.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_rest import rest_client
from running_emulator import started

from salesforce_emulator.state import build_state


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) <= {"message", "errorCode", "fields", "duplicateResult"}
    return body[0]


def test_required_field_missing_names_every_missing_field(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Lead", json={"FirstName": "A"}), 400)
    assert err == {"message": "Required fields are missing: [LastName, Company]",
                   "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Company"]}


def test_required_field_cleared_on_update(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Contact", json={"LastName": "A"}).json()["id"]
    err = _error(rest.patch(f"/sobjects/Contact/{record_id}", json={"LastName": None}), 400)
    assert err["errorCode"] == "REQUIRED_FIELD_MISSING" and err["fields"] == ["LastName"]


def test_invalid_field_for_an_unknown_column(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Account", json={"Name": "A", "Naem": "x"}), 400)
    assert err == {"message": "No such column 'Naem' on sobject of type Account", "errorCode": "INVALID_FIELD",
                   "fields": ["Naem"]}


def test_invalid_field_when_id_is_sent_on_create(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Account", json={"Name": "A", "Id": "001000000000001AAA"}), 400)
    assert err == {"message": "The Id field should not be specified in the sobject data.",
                   "errorCode": "INVALID_FIELD"}


def test_invalid_field_for_insert_update_on_read_only_fields(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Lead", json={"LastName": "A", "Company": "B", "IsConverted": True}), 400)
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE" and err["fields"] == ["IsConverted"]
    assert err["message"].startswith("Unable to create/update fields: IsConverted.")


def test_string_too_long_quotes_the_label_and_max_length(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Contact", json={"LastName": "x" * 81}), 400)
    assert err["errorCode"] == "STRING_TOO_LONG" and err["fields"] == ["LastName"]
    assert err["message"].endswith("(max length=80)") and err["message"].startswith("LastName: data value too large")


def test_invalid_email_address(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Contact", json={"LastName": "A", "Email": "not-an-email"}), 400)
    assert err == {"message": "Email: invalid email address: not-an-email", "errorCode": "INVALID_EMAIL_ADDRESS",
                   "fields": ["Email"]}


def test_invalid_or_null_for_restricted_picklist(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Lead", json={"LastName": "A", "Company": "B", "Status": "Bogus"}), 400)
    assert err == {"message": "Status: bad value for restricted picklist field: Bogus",
                   "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"]}


def test_unrestricted_picklist_accepts_any_value(rest: httpx.Client) -> None:
    assert rest.post("/sobjects/Lead", json={"LastName": "A", "Company": "B", "Rating": "Lukewarm"}).status_code == 201


def test_json_parser_error_for_a_value_of_the_wrong_json_type(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Account", json={"Name": "A", "NumberOfEmployees": "many"}), 400)
    assert err["errorCode"] == "JSON_PARSER_ERROR" and "many" in err["message"]
    bad_json = rest.post("/sobjects/Account", content=b"{not json", headers={"Content-Type": "application/json"})
    assert _error(bad_json, 400)["errorCode"] == "JSON_PARSER_ERROR"


def test_field_custom_validation_exception_from_a_validation_rule(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Opportunity", json={"Name": "Deal", "StageName": "Prospecting",
                                                          "CloseDate": "2026-12-31", "Amount": -5}), 400)
    assert err == {"message": "Amount must not be negative.", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                   "fields": ["Amount"]}


def test_duplicate_value_on_a_unique_field_names_the_existing_record(rest: httpx.Client) -> None:
    first = rest.post("/sobjects/Account", json={"Name": "A", "External_Id__c": "K-1"}).json()["id"]
    err = _error(rest.post("/sobjects/Account", json={"Name": "B", "External_Id__c": "k-1"}), 400)
    assert err == {"message": f"duplicate value found: External_Id__c duplicates value on record with id: {first}",
                   "errorCode": "DUPLICATE_VALUE", "fields": ["External_Id__c"]}


def test_invalid_cross_reference_key_for_a_lookup_to_a_missing_record(rest: httpx.Client) -> None:
    err = _error(rest.post("/sobjects/Contact", json={"LastName": "A", "AccountId": "0018c0000009999AAA"}), 400)
    assert err == {"message": "invalid cross reference id", "errorCode": "INVALID_CROSS_REFERENCE_KEY",
                   "fields": ["AccountId"]}


def test_malformed_id_in_the_path(rest: httpx.Client) -> None:
    err = _error(rest.patch("/sobjects/Contact/001900K0001pPuOAAU", json={"LastName": "x"}), 400)
    assert err == {"message": "Contact ID: id value of incorrect type: 001900K0001pPuOAAU",
                   "errorCode": "MALFORMED_ID", "fields": ["Id"]}


def test_entity_is_deleted_on_update_of_a_deleted_record(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Account", json={"Name": "A"}).json()["id"]
    rest.delete(f"/sobjects/Account/{record_id}")
    err = _error(rest.patch(f"/sobjects/Account/{record_id}", json={"Name": "B"}), 404)
    assert err == {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}


def test_not_found_for_an_unknown_record(rest: httpx.Client) -> None:
    err = _error(rest.patch("/sobjects/Account/0018c0000009999AAA", json={"Name": "B"}), 404)
    assert err == {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}


def test_cannot_update_converted_lead(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    lead_id = rest.post("/sobjects/Lead", json={"LastName": "L", "Company": "Co", "Email": "l@co.example"}).json()["id"]
    assert emulator.state.store.convert_lead(lead_id).success
    lead = rest.get(f"/sobjects/Lead/{lead_id}").json()
    assert lead["IsConverted"] is True and lead["ConvertedContactId"].startswith("003")
    contact = rest.get(f"/sobjects/Contact/{lead['ConvertedContactId']}").json()
    assert contact["Email"] == "l@co.example" and contact["AccountId"] == lead["ConvertedAccountId"]
    err = _error(rest.patch(f"/sobjects/Lead/{lead_id}", json={"Title": "x"}), 400)
    assert err == {"message": "cannot reference converted lead", "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD"}


def test_unable_to_lock_row_from_the_fault_injector(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    record_id = rest.post("/sobjects/Account", json={"Name": "A"}).json()["id"]
    emulator.state.faults.update({"lock_error_rate": 1.0})
    err = _error(rest.patch(f"/sobjects/Account/{record_id}", json={"Name": "B"}), 400)
    assert err == {"message": f"unable to obtain exclusive access to this record or 1 records: {record_id}",
                   "errorCode": "UNABLE_TO_LOCK_ROW"}


def test_invalid_session_id_for_a_bad_token(emulator) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{emulator.url}/services/data/v62.0/sobjects", headers={"Authorization": "Bearer nope"})
    assert _error(r, 401) == {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    assert _error(httpx.get(f"{emulator.url}/services/data/v62.0/sobjects"), 401)["errorCode"] == "INVALID_SESSION_ID"


def test_method_not_allowed(rest: httpx.Client) -> None:
    assert _error(rest.put("/sobjects/Account"), 405)["errorCode"] == "METHOD_NOT_ALLOWED"


def test_duplicates_detected_carries_the_existing_record_id(tmp_path: Path) -> None:
    org_yaml = tmp_path / "org.yaml"
    org_yaml.write_text("extends: default\nobjects:\n  Contact:\n    duplicate_rules:\n"
                        "      - {name: Same_Email, match_fields: [Email]}\n")
    with started(build_state(org_yaml)) as emulator, rest_client(emulator) as rest:
        first = rest.post("/sobjects/Contact", json={"LastName": "A", "Email": "a@x.example"}).json()["id"]
        err = _error(rest.post("/sobjects/Contact", json={"LastName": "B", "Email": "A@x.example"}), 400)
    assert err["errorCode"] == "DUPLICATES_DETECTED" and err["message"] == "Use one of these records?"
    match = err["duplicateResult"]["matchResults"][0]["matchRecords"][0]["record"]
    assert match["Id"] == first


@pytest.mark.parametrize("version", ["v19.0", "v99.0", "62.0"])
def test_unknown_api_version_is_not_found(emulator, version: str) -> None:  # type: ignore[no-untyped-def]
    token = emulator.state.tokens.issue("admin@emulator.test", "emulator-client").token
    r = httpx.get(f"{emulator.url}/services/data/{version}/sobjects", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404
