"""Fidelity: simple-salesforce, unchanged, against the emulator over HTTPS with the emulator's CA.

simple-salesforce builds `https://{domain}.salesforce.com` URLs itself, so the test resolves
`emulator.my.salesforce.com` to the emulator's loopback port (DNS only — TLS still verifies the name
against the emulator's certificate, which covers *.my.salesforce.com)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import urllib3.util.connection
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

HOST = "emulator.my.salesforce.com"


@pytest.fixture
def sf(tls_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Salesforce]:
    port = urlsplit(tls_emulator.url).port
    original = urllib3.util.connection.create_connection

    def resolve(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, _ = address
        if host == HOST:
            return original(("127.0.0.1", port), *args, **kwargs)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", resolve)
    session = requests.Session()
    session.verify = str(tls_emulator.ca_pem)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces `verify`
    client = Salesforce(consumer_key="emulator-client", consumer_secret="emulator-secret", domain="emulator.my",
                        session=session, version="59.0")
    yield client
    session.close()


def test_login_with_client_credentials_uses_the_instance_url(sf: Salesforce) -> None:
    assert sf.sf_instance == HOST and sf.session_id.startswith("00D8c0000000001!")


def test_create_get_update_delete_and_describe(sf: Salesforce) -> None:
    created = sf.Contact.create({"LastName": "Lovelace", "Email": "ada@example.com"})
    assert created["success"] and created["id"].startswith("003")
    assert sf.Contact.get(created["id"])["Email"] == "ada@example.com"
    assert sf.Contact.update(created["id"], {"Title": "Countess"}) == 204
    assert sf.Contact.get(created["id"])["Title"] == "Countess"
    assert sf.Contact.delete(created["id"]) == 204
    describe = sf.Contact.describe()
    assert describe["keyPrefix"] == "003" and any(f["name"] == "External_Id__c" and f["externalId"]
                                                  for f in describe["fields"])
    assert any(o["name"] == "Survey_Response__c" for o in sf.describe()["sobjects"])
    # not pytest.raises: the exception it keeps holds the response, and with it a TLS connection the session
    # cannot close, which held the emulator's shutdown for 10 s
    try:
        sf.Contact.create({"FirstName": "NoLastName"})
        raise AssertionError("a Contact without LastName was created")
    except SalesforceMalformedRequest as refused:
        code = refused.content[0]["errorCode"]
    assert code == "REQUIRED_FIELD_MISSING"


def test_upsert_by_external_id_creates_then_updates(sf: Salesforce) -> None:
    assert sf.Account.upsert("External_Id__c/ACME-1", {"Name": "Acme"}) == 201
    assert sf.Account.upsert("External_Id__c/ACME-1", {"Name": "Acme Corp"}) == 200
    assert sf.Account.get_by_custom_id("External_Id__c", "ACME-1")["Name"] == "Acme Corp"


def test_query_and_query_all_with_paging(sf: Salesforce, tls_emulator: Any) -> None:
    for i in range(2100):
        tls_emulator.state.store.insert("Lead", {"LastName": f"L{i:04d}", "Company": "C"})
    first = sf.query("SELECT Id, LastName FROM Lead ORDER BY LastName")
    assert first["totalSize"] == 2100 and not first["done"] and len(first["records"]) == 2000
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert more["done"] and len(more["records"]) == 100
    everything = sf.query_all("SELECT Id FROM Lead WHERE LastName LIKE 'L1%'")
    assert everything["totalSize"] == 1000 and len(everything["records"]) == 1000


def test_bulk2_insert_upsert_delete_with_result_csvs(sf: Salesforce, tls_emulator: Any) -> None:
    records = [{"LastName": f"Bulk{i}", "External_Id__c": f"B{i}"} for i in range(5)]
    records.append({"LastName": "", "External_Id__c": "B-bad"})
    inserted = sf.bulk2.Contact.insert(records=records, wait=1)
    assert inserted[0]["numberRecordsProcessed"] == 6 and inserted[0]["numberRecordsFailed"] == 1
    failed = sf.bulk2.Contact.get_failed_records(inserted[0]["job_id"])
    assert "REQUIRED_FIELD_MISSING" in failed and "B-bad" in failed
    successful = sf.bulk2.Contact.get_successful_records(inserted[0]["job_id"])
    assert successful.count("true") == 5
    upserted = sf.bulk2.Contact.upsert(records=[{"External_Id__c": "B0", "LastName": "Changed"},
                                                {"External_Id__c": "B9", "LastName": "New"}],
                                       external_id_field="External_Id__c", wait=1)
    assert upserted[0]["numberRecordsFailed"] == 0
    ids = [r["Id"] for r in tls_emulator.state.store.records("Contact")]
    deleted = sf.bulk2.Contact.delete(records=[{"Id": i} for i in ids], wait=1)
    assert deleted[0]["numberRecordsProcessed"] == len(ids) == 6 and deleted[0]["numberRecordsFailed"] == 0
    assert tls_emulator.state.store.records("Contact") == []
