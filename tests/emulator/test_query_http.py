"""SOQL over HTTP: pages of 2,000 through nextRecordsUrl, Sforce-Query-Options, queryAll, error bodies."""

from __future__ import annotations

import httpx


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
    r = rest.get("/query/01g8cdeadbeef00-2000")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
