"""sObject REST over HTTP: describe, create / retrieve / update / delete, upsert by external ID (§2, §8.4)."""

from __future__ import annotations

from email.utils import format_datetime

import httpx
from emulator_rest import rest_client

from salesforce_emulator.ids import checksum, is_well_formed


def test_global_describe_lists_every_object_with_its_key_prefix(rest: httpx.Client) -> None:
    body = rest.get("/sobjects").json()
    assert body["maxBatchSize"] == 200
    prefixes = {o["name"]: o["keyPrefix"] for o in body["sobjects"]}
    assert prefixes["Account"] == "001" and prefixes["Lead"] == "00Q" and prefixes["Survey_Response__c"] == "a00"
    assert body["sobjects"][0]["urls"]["rowTemplate"].endswith("/{ID}")


def test_describe_reports_field_properties_writers_rely_on(rest: httpx.Client) -> None:
    r = rest.get("/sobjects/lead/describe")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Lead" and body["keyPrefix"] == "00Q"
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["LastName"]["nillable"] is False and fields["LastName"]["defaultedOnCreate"] is False
    assert fields["External_Id__c"]["externalId"] and fields["External_Id__c"]["unique"]
    assert fields["External_Id__c"]["idLookup"]
    assert fields["Status"]["restrictedPicklist"] and {"value": "Working - Contacted", "label": "Working - Contacted",
                                                       "active": True, "defaultValue": False,
                                                       "validFor": None} in fields["Status"]["picklistValues"]
    assert fields["IsConverted"]["createable"] is False and fields["IsConverted"]["updateable"] is False
    assert fields["Name"]["calculated"] is True
    assert fields["ConvertedContactId"]["referenceTo"] == ["Contact"]
    assert fields["Description"]["filterable"] is False
    assert fields["Email"]["length"] == 80 and fields["Company"]["length"] == 255


def test_describe_revalidates_with_if_modified_since(rest: httpx.Client) -> None:
    first = rest.get("/sobjects/Account/describe")
    assert first.headers["Last-Modified"]
    again = rest.get("/sobjects/Account/describe", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert again.status_code == 304
    stale = format_datetime(__import__("datetime").datetime(2000, 1, 1, tzinfo=__import__("datetime").UTC),
                            usegmt=True)
    assert rest.get("/sobjects/Account/describe", headers={"If-Modified-Since": stale}).status_code == 200


def test_create_returns_201_with_an_18_character_id_of_the_right_prefix(rest: httpx.Client) -> None:
    r = rest.post("/sobjects/Account", json={"Name": "Acme", "NumberOfEmployees": 12})
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and body["errors"] == []
    record_id = body["id"]
    assert len(record_id) == 18 and record_id.startswith("001") and is_well_formed(record_id)
    assert record_id[15:] == checksum(record_id[:15])
    assert r.headers["Location"].endswith(f"/sobjects/Account/{record_id}")


def test_retrieve_returns_attributes_and_every_field_or_the_requested_ones(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Contact", json={"LastName": "Smith", "FirstName": "Jo",
                                                      "Birthdate": "1990-02-03"}).json()["id"]
    full = rest.get(f"/sobjects/Contact/{record_id}").json()
    assert full["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{record_id}"}
    assert full["Name"] == "Jo Smith" and full["Birthdate"] == "1990-02-03" and full["Email"] is None
    assert full["CreatedDate"].endswith("+0000") and full["CreatedDate"] == full["LastModifiedDate"]
    some = rest.get(f"/sobjects/Contact/{record_id[:15]}", params={"fields": "LastName,email"}).json()
    assert list(some) == ["attributes", "LastName", "Email"]


def test_update_returns_204_and_moves_last_modified_date(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Lead", json={"LastName": "Doe", "Company": "Initech"}).json()["id"]
    before = rest.get(f"/sobjects/Lead/{record_id}").json()
    __import__("time").sleep(0.01)
    r = rest.patch(f"/sobjects/Lead/{record_id}", json={"Title": "CTO", "Company": "Initrode"})
    assert r.status_code == 204 and r.content == b""
    after = rest.get(f"/sobjects/Lead/{record_id}").json()
    assert (after["Title"], after["Company"]) == ("CTO", "Initrode")
    assert after["LastModifiedDate"] > before["LastModifiedDate"] and after["CreatedDate"] == before["CreatedDate"]
    assert after["SystemModstamp"] == after["LastModifiedDate"]


def test_post_with_http_method_override_updates(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Lead", json={"LastName": "Doe", "Company": "Initech"}).json()["id"]
    r = rest.post(f"/sobjects/Lead/{record_id}", params={"_HttpMethod": "PATCH"}, json={"Title": "VP"})
    assert r.status_code == 204
    assert rest.get(f"/sobjects/Lead/{record_id}").json()["Title"] == "VP"


def test_delete_returns_204_then_the_record_is_deleted(rest: httpx.Client) -> None:
    record_id = rest.post("/sobjects/Case", json={"Subject": "Help"}).json()["id"]
    assert rest.delete(f"/sobjects/Case/{record_id}").status_code == 204
    again = rest.delete(f"/sobjects/Case/{record_id}")
    assert again.status_code == 404 and again.json() == [{"message": "entity is deleted",
                                                          "errorCode": "ENTITY_IS_DELETED"}]
    assert rest.get(f"/sobjects/Case/{record_id}").json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_upsert_creates_201_then_updates_200_with_created_false(rest: httpx.Client) -> None:
    created = rest.patch("/sobjects/Contact/External_Id__c/C%2F1", json={"LastName": "One"})
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": True}
    updated = rest.patch("/sobjects/Contact/External_Id__c/c%2F1", json={"LastName": "Uno"})
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
    record = rest.get(f"/sobjects/Contact/{created.json()['id']}").json()
    assert (record["LastName"], record["External_Id__c"]) == ("Uno", "C/1")
    by_key = rest.get("/sobjects/Contact/External_Id__c/C%2F1").json()
    assert by_key["Id"] == created.json()["id"]


def test_upsert_update_answers_204_before_api_46(emulator) -> None:  # type: ignore[no-untyped-def]
    with rest_client(emulator, "45.0") as old:
        assert old.patch("/sobjects/Account/External_Id__c/A1", json={"Name": "A"}).status_code == 201
        r = old.patch("/sobjects/Account/External_Id__c/A1", json={"Name": "B"})
        assert r.status_code == 204 and r.content == b""


def test_upsert_on_a_non_unique_external_id_matching_two_records_answers_300(tmp_path, emulator) -> None:  # type: ignore[no-untyped-def]
    store = emulator.state.store
    lead = emulator.state.org.object("Lead")
    lead.fields["Email"].id_lookup = True  # an idLookup field that is not unique, like Email on some objects
    store._index[("Lead", "Email")] = {}
    for name in ("A", "B"):
        assert store.insert("Lead", {"LastName": name, "Company": "X", "Email": "dup@example.com"}).success
    with rest_client(emulator) as rest:
        r = rest.patch("/sobjects/Lead/Email/dup@example.com", json={"Title": "x"})
    assert r.status_code == 300
    assert len(r.json()) == 2 and all(u.startswith("/services/data/v62.0/sobjects/Lead/00Q") for u in r.json())


def test_upsert_on_an_unknown_or_non_external_field_is_404(rest: httpx.Client) -> None:
    r = rest.patch("/sobjects/Account/Nope__c/1", json={"Name": "A"})
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
    assert rest.patch("/sobjects/Account/Phone/1", json={"Name": "A"}).status_code == 404


def test_post_to_id_creates_like_an_upsert_with_a_null_key(rest: httpx.Client) -> None:
    r = rest.post("/sobjects/Account/Id", json={"Name": "ById"})
    assert r.status_code == 201 and r.json()["id"].startswith("001")


def test_unknown_object_and_unknown_id_are_404_not_found(rest: httpx.Client) -> None:
    for r in (rest.get("/sobjects/Nope__c/describe"), rest.post("/sobjects/Nope__c", json={}),
              rest.get("/sobjects/Account/001000000000000AAA")):
        assert r.status_code == 404
        assert r.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_custom_object_gets_its_own_prefix_and_auto_name(rest: httpx.Client) -> None:
    r = rest.post("/sobjects/Survey_Response__c", json={"Score__c": 9, "Sentiment__c": "Positive",
                                                        "Submitted_At__c": "2026-01-02T03:04:05Z"})
    assert r.status_code == 201
    record = rest.get(f"/sobjects/Survey_Response__c/{r.json()['id']}").json()
    assert record["Id"].startswith("a00") and record["Name"] == record["Id"]
    assert record["Submitted_At__c"] == "2026-01-02T03:04:05.000+0000" and record["Score__c"] == 9
