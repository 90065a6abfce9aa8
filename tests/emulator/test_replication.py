"""Replication resources (sObject Get Updated / Get Deleted), SystemModstamp on every write path, and the
admin API's writes as a person (LastModifiedById tells their changes from the integration's)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from emulator_rest import rest_client

ADMIN_ID = "0058c0000000001AAA"
PERSON_ID = "0058c0000000004AAA"


def _window(rest: httpx.Client, kind: str, obj: str, start: datetime, end: datetime) -> httpx.Response:
    return rest.get(f"/sobjects/{obj}/{kind}/", params={"start": start.isoformat(), "end": end.isoformat()})


def _record(emulator: Any, obj: str, record_id: str) -> dict[str, Any]:
    rows = httpx.get(f"{emulator.url}/__admin/records/{obj}", params={"include_deleted": "true"}).json()
    return next(r for r in rows if r["Id"] == record_id)


def test_updated_lists_ids_changed_in_the_window_and_deleted_lists_the_recycle_bin(emulator: Any) -> None:
    now = datetime.now(UTC)
    with rest_client(emulator) as rest:
        kept = rest.post("/sobjects/Contact", json={"LastName": "Kept"}).json()["id"]
        gone = rest.post("/sobjects/Contact", json={"LastName": "Gone"}).json()["id"]
        assert rest.delete(f"/sobjects/Contact/{gone}").status_code == 204
        updated = _window(rest, "updated", "Contact", now - timedelta(minutes=5), now + timedelta(minutes=5))
        deleted = _window(rest, "deleted", "Contact", now - timedelta(minutes=5), now + timedelta(minutes=5))
        earlier = _window(rest, "updated", "Contact", now - timedelta(hours=2), now - timedelta(hours=1))
    assert updated.status_code == 200 and updated.json()["ids"] == [kept]
    body = deleted.json()
    assert [d["id"] for d in body["deletedRecords"]] == [gone]
    assert body["deletedRecords"][0]["deletedDate"] == _record(emulator, "Contact", gone)["SystemModstamp"]
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(body)
    assert earlier.json()["ids"] == []


def test_window_rules_seconds_ignored_start_before_end_and_thirty_days(emulator: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    minute = now.replace(second=0)
    with rest_client(emulator) as rest:
        same_minute = _window(rest, "updated", "Contact", minute.replace(second=5), minute.replace(second=50))
        backwards = _window(rest, "updated", "Contact", now, now - timedelta(hours=1))
        too_old = _window(rest, "updated", "Contact", now - timedelta(days=31), now)
        old_ok = _window(rest, "updated", "Contact", now - timedelta(days=29), now)
        deleted_too_old = _window(rest, "deleted", "Contact", now - timedelta(days=16), now)
        missing = rest.get("/sobjects/Contact/updated/", params={"start": now.isoformat()})
        future = _window(rest, "updated", "Contact", now - timedelta(hours=1), now + timedelta(days=1))
    for answer in (same_minute, backwards, too_old, deleted_too_old):
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    assert old_ok.status_code == 200
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MISSING_ARGUMENT"
    # latestDateCovered is never past the end, nor past the start of the current minute (changes may commit)
    covered = datetime.fromisoformat(future.json()["latestDateCovered"].replace("+0000", "+00:00"))
    assert covered <= datetime.now(UTC) and covered.second == 0


def test_system_modstamp_moves_on_rest_collections_and_bulk_writes(emulator: Any) -> None:
    with rest_client(emulator) as rest:
        rid = rest.post("/sobjects/Contact", json={"LastName": "A"}).json()["id"]
        stamps = [_record(emulator, "Contact", rid)["SystemModstamp"]]
        for write in (
            lambda: rest.patch(f"/sobjects/Contact/{rid}", json={"Title": "REST"}),
            lambda: rest.patch("/composite/sobjects", json={"records": [
                {"attributes": {"type": "Contact"}, "Id": rid, "Title": "Collections"}]}),
            lambda: _bulk_update(rest, rid),
        ):
            time.sleep(0.005)  # SystemModstamp has millisecond precision
            assert write().status_code < 300
            stamps.append(_record(emulator, "Contact", rid)["SystemModstamp"])
    assert stamps == sorted(set(stamps)) and len(stamps) == 4
    assert _record(emulator, "Contact", rid)["Title"] == "Bulk"


def _bulk_update(rest: httpx.Client, rid: str) -> httpx.Response:
    job = rest.post("/jobs/ingest", json={"object": "Contact", "operation": "update"}).json()
    rest.put(f"/jobs/ingest/{job['id']}/batches", content=f"Id,Title\n{rid},Bulk\n",
             headers={"Content-Type": "text/csv"})
    rest.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    for _ in range(200):
        state = rest.get(f"/jobs/ingest/{job['id']}").json()
        if state["state"] in ("JobComplete", "Failed"):
            break
        time.sleep(0.05)
    return rest.get(f"/jobs/ingest/{job['id']}")


def test_admin_writes_are_made_as_a_person_and_api_writes_as_the_caller(emulator: Any) -> None:
    admin = f"{emulator.url}/__admin/records"
    with rest_client(emulator) as rest:
        rid = rest.post("/sobjects/Contact", json={"LastName": "A"}).json()["id"]
        assert _record(emulator, "Contact", rid)["LastModifiedById"] == ADMIN_ID
        before = _record(emulator, "Contact", rid)["SystemModstamp"]
        time.sleep(0.005)
        assert httpx.patch(f"{admin}/Contact/{rid}", json={"Title": "CTO"}).status_code == 200
        changed = _record(emulator, "Contact", rid)
        assert (changed["Title"], changed["LastModifiedById"]) == ("CTO", PERSON_ID)
        assert changed["SystemModstamp"] > before and changed["LastModifiedDate"] == changed["SystemModstamp"]
        created = httpx.post(f"{admin}/Contact", json={"LastName": "B"}).json()["id"]
        assert _record(emulator, "Contact", created)["CreatedById"] == PERSON_ID
        assert httpx.delete(f"{admin}/Contact/{created}").status_code == 200
        assert _record(emulator, "Contact", created)["IsDeleted"] is True
        assert httpx.patch(f"{admin}/Contact/{rid}", params={"user": "nobody@x"}, json={}).status_code == 400
        bad = httpx.patch(f"{admin}/Contact/{rid}", json={"Email": "not an email"})
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"
        rest.patch(f"/sobjects/Contact/{rid}", json={"Title": "back"})
    assert _record(emulator, "Contact", rid)["LastModifiedById"] == ADMIN_ID
