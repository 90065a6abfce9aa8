"""SOQL over HTTP: pages of 2,000 through nextRecordsUrl, Sforce-Query-Options, queryAll, error bodies."""

from __future__ import annotations

import re

import httpx
import pytest


def _seed(emulator, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        assert emulator.state.store.insert("Lead", {"LastName": f"L{i:05d}", "Company": "C"}).success


def test_4500_rows_come_back_in_three_pages(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    _seed(emulator, 4500)
    first = rest.get("/query", params={"q": "SELECT Id, LastName FROM Lead ORDER BY LastName"}).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (4500, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    second = rest.get(emulator.url + first["nextRecordsUrl"]).json()
    third = rest.get(emulator.url + second["nextRecordsUrl"]).json()
    assert (len(second["records"]), second["done"]) == (2000, False)
    assert (len(third["records"]), third["done"], "nextRecordsUrl" in third) == (500, True, False)
    names = [r["LastName"] for page in (first, second, third) for r in page["records"]]
    assert names == [f"L{i:05d}" for i in range(4500)]


def test_batch_size_header_is_honoured_within_200_to_2000(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    _seed(emulator, 450)
    body = rest.get("/query", params={"q": "SELECT Id FROM Lead"},
                    headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert len(body["records"]) == 200 and not body["done"]
    tiny = rest.get("/query", params={"q": "SELECT Id FROM Lead"}, headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(tiny.json()["records"]) == 200


def test_count_empty_result_and_query_all(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    assert rest.get("/query", params={"q": "SELECT Id FROM Case"}).json() == {"totalSize": 0, "done": True,
                                                                               "records": []}
    record_id = rest.post("/sobjects/Case", json={"Subject": "x"}).json()["id"]
    rest.delete(f"/sobjects/Case/{record_id}")
    assert rest.get("/query", params={"q": "SELECT COUNT() FROM Case"}).json()["totalSize"] == 0
    deleted = rest.get("/queryAll", params={"q": "SELECT Id, IsDeleted FROM Case"}).json()
    assert deleted["records"][0]["IsDeleted"] is True


def test_errors_are_400_arrays(rest: httpx.Client) -> None:
    r = rest.get("/query", params={"q": "SELECT Naem FROM Account"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = rest.get("/query", params={"q": "SELECT Id FROM Nope"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"
    r = rest.get("/query/01g000000000000AAA-2000")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_locators_look_like_salesforce_ids_and_query_all_pages_keep_deleted_rows(  # type: ignore[no-untyped-def]
        rest: httpx.Client, emulator) -> None:
    _seed(emulator, 2300)
    victim = emulator.state.store.records("Lead")[0]["Id"]
    assert rest.delete(f"/sobjects/Lead/{victim}").status_code == 204
    first = rest.get("/queryAll", params={"q": "SELECT Id, IsDeleted FROM Lead"}).json()
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    assert re.fullmatch(r"01g[0-9A-Za-z]{15}-2000", locator)
    assert first["nextRecordsUrl"] == f"/services/data/v62.0/queryAll/{locator}"
    rest_page = rest.get(f"/queryAll/{locator}").json()
    rows = first["records"] + rest_page["records"]
    assert (first["totalSize"], len(rows), rest_page["done"]) == (2300, 2300, True)
    assert [r["Id"] for r in rows if r["IsDeleted"]] == [victim]


def test_admin_reset_drops_open_locators(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    _seed(emulator, 2001)
    first = rest.get("/query", params={"q": "SELECT Id FROM Lead"}).json()
    emulator.state.cursors.reset()
    r = rest.get(emulator.url + first["nextRecordsUrl"])
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_relationships_render_as_nested_records(rest: httpx.Client) -> None:
    account = rest.post("/sobjects/Account", json={"Name": "Acme"}).json()["id"]
    kim_id = rest.post("/sobjects/Contact", json={"LastName": "Kim", "AccountId": account}).json()["id"]
    rest.post("/sobjects/Contact", json={"LastName": "Lone"})
    body = rest.get("/query", params={"q": "SELECT LastName, Account.Name FROM Contact ORDER BY LastName"}).json()
    kim, lone = body["records"]
    assert kim["Account"] == {"attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{account}"},
                              "Name": "Acme"}
    assert lone["Account"] is None
    body = rest.get("/query", params={"q": "SELECT Name, (SELECT LastName FROM Contacts) FROM Account"}).json()
    assert body["records"][0]["Contacts"] == {"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{kim_id}"},
         "LastName": "Kim"}]}


_NO_COLUMN = ("No such column 'Naem' on entity 'Account'. If you are attempting to use a custom field, be sure to "
              "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
              "appropriate names.")
_NO_TYPE = ("sObject type 'Contact123' is not supported. If you are attempting to use a custom object, be sure to "
            "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.")


@pytest.mark.parametrize(("q", "code", "message"), [
    ("SELECT Id FRM Account", "MALFORMED_QUERY", "unexpected token: 'FRM'\nposition 10"),
    # §3.3: schema errors point at the name with Salesforce's caret diagram.
    ("SELECT Naem FROM Account", "INVALID_FIELD",
     "\nSELECT Naem FROM Account\n       ^\nERROR at Row:1:Column:8\n" + _NO_COLUMN),
    ("SELECT Id\nFROM Account\nWHERE Naem = 'x'", "INVALID_FIELD",
     "\nWHERE Naem = 'x'\n      ^\nERROR at Row:3:Column:7\n" + _NO_COLUMN),
    ("SELECT Id FROM Contact123", "INVALID_TYPE",
     "\nSELECT Id FROM Contact123\n               ^\nERROR at Row:1:Column:16\n" + _NO_TYPE),
    ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD",
     "\nSELECT Id FROM Account WHERE Description = 'x'\n                             ^\nERROR at Row:1:Column:30\n"
     "field 'Description' can not be filtered in a query call"),
    ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
])
def test_error_bodies_are_salesforce_arrays(rest: httpx.Client, q: str, code: str, message: str) -> None:
    r = rest.get("/query", params={"q": q})
    assert r.status_code == 400 and r.json() == [{"message": message, "errorCode": code}]


def test_a_query_needs_q_and_a_session(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    r = rest.get("/query")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"
    r = httpx.get(f"{emulator.url}/services/data/v62.0/query", params={"q": "SELECT Id FROM Account"})
    assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
