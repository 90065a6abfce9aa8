"""Admin API: records, reset, lead conversion, faults read-back."""

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
