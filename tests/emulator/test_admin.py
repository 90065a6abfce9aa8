"""Admin API (/__admin, no auth): records, reset, lead conversion, faults, usage, stats."""

from __future__ import annotations

import httpx


def test_records_reset_and_convert_lead(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    lead_id = rest.post("/sobjects/Lead", json={"LastName": "L", "Company": "Co"}).json()["id"]
    admin = f"{emulator.url}/__admin"
    assert [r["Id"] for r in httpx.get(f"{admin}/records/Lead").json()] == [lead_id]
    converted = httpx.post(f"{admin}/convert-lead/{lead_id}").json()
    assert converted["accountId"].startswith("001") and converted["contactId"].startswith("003")
    assert httpx.post(f"{admin}/reset").json() == {"reset": True}
    assert httpx.get(f"{admin}/records/Lead").json() == []
    assert httpx.get(f"{admin}/stats").json()["api_calls"]["total"] == 0
    assert rest.get("/sobjects").status_code == 200  # tokens survive a reset
    assert httpx.get(f"{admin}/records/Nope").status_code == 404


def test_faults_can_be_read_back(emulator) -> None:  # type: ignore[no-untyped-def]
    admin = f"{emulator.url}/__admin"
    httpx.post(f"{admin}/faults", json={"lock_error_rate": 0.05, "seed": 1})
    assert httpx.get(f"{admin}/faults").json()["lock_error_rate"] == 0.05


def test_records_can_include_deleted_ones(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    kept = rest.post("/sobjects/Account", json={"Name": "kept"}).json()["id"]
    gone = rest.post("/sobjects/Account", json={"Name": "gone"}).json()["id"]
    assert rest.delete(f"/sobjects/Account/{gone}").status_code == 204
    admin = f"{emulator.url}/__admin/records/account"  # object names are case-insensitive, as in the API
    assert [r["Id"] for r in httpx.get(admin).json()] == [kept]
    everything = {r["Id"]: r["IsDeleted"] for r in httpx.get(admin, params={"include_deleted": "true"}).json()}
    assert everything == {kept: False, gone: True}


def test_reset_forgets_bulk_jobs_but_keeps_faults(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    admin = f"{emulator.url}/__admin"
    rest.post("/jobs/ingest", json={"object": "Account", "operation": "insert"})
    httpx.post(f"{admin}/faults", json={"latency_ms": 1})
    assert httpx.get(f"{admin}/stats").json()["bulk_jobs"] == 1
    httpx.post(f"{admin}/reset")
    assert httpx.get(f"{admin}/stats").json()["bulk_jobs"] == 0
    assert rest.get("/jobs/ingest").json()["records"] == []
    assert httpx.get(f"{admin}/faults").json()["latency_ms"] == 1


def test_bad_fault_or_usage_bodies_are_400_and_change_nothing(emulator) -> None:  # type: ignore[no-untyped-def]
    admin = f"{emulator.url}/__admin"
    for body in ({"api_daily_max": 5, "error_503_rate": 2}, {"api_daily_max": 0}, {"chaos": 1}, [1]):
        r = httpx.post(f"{admin}/faults", json=body)
        assert r.status_code == 400 and r.json()[0]["errorCode"] in ("INVALID_FIELD", "JSON_PARSER_ERROR")
    assert httpx.get(f"{admin}/faults").json() | {"limit_window_open": False} == {
        "latency_ms": 0.0, "error_503_rate": 0.0, "lock_error_rate": 0.0, "token_lifetime_seconds": None,
        "seed": None, "limit_exceeded_for_seconds": 0.0, "limit_window_open": False, "api_daily_max": 100000,
        "trigger_error_above": None, "trigger_error_marker": None, "lost_response_rate": 0.0}
    for body in ({"total": -1}, {"total": "7"}, {}):
        assert httpx.post(f"{admin}/usage", json=body).status_code == 400
    assert httpx.post(f"{admin}/usage", json={"total": 7}).json()["total"] == 7
    assert httpx.get(f"{admin}/stats").json()["api_calls"]["total"] == 7


def test_admin_needs_no_session(emulator) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(f"{emulator.url}/__admin/stats").status_code == 200
    assert httpx.get(f"{emulator.url}/__admin/records/Lead").json() == []
