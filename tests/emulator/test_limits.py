"""API usage counting, Sforce-Limit-Info, /limits, the daily maximum, request faults and size limits (§6, §8.3)."""

from __future__ import annotations

import time

import httpx


def test_every_data_call_is_counted_and_reported_in_sforce_limit_info(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    r = rest.get("/sobjects")
    assert r.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    rest.post("/composite/sobjects", json={"records": [{"attributes": {"type": "Account"}, "Name": f"A{i}"}
                                                       for i in range(200)]})
    assert emulator.state.usage.total == 2  # a collections call of 200 records is one call
    versions = httpx.get(f"{emulator.url}/services/data/")
    assert "Sforce-Limit-Info" not in versions.headers
    stats = httpx.get(f"{emulator.url}/__admin/stats").json()
    assert stats["api_calls"]["total"] == 2
    assert stats["api_calls"]["by_endpoint"] == {"sobjects": 1, "composite/sobjects": 1}
    assert stats["records"]["Account"] == 200


def test_limits_resource_reports_remaining_calls(rest: httpx.Client) -> None:
    rest.get("/sobjects")
    body = rest.get("/limits").json()
    assert body["DailyApiRequests"] == {"Max": 100000, "Remaining": 99999}
    assert "DailyBulkApiBatches" in body


def test_over_the_daily_maximum_calls_get_403_request_limit_exceeded(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{emulator.url}/__admin/faults", json={"api_daily_max": 3})
    assert all(rest.get("/sobjects").status_code == 200 for _ in range(3))
    r = rest.get("/sobjects")
    assert r.status_code == 403
    assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert r.headers["Sforce-Limit-Info"] == "api-usage=3/3"


def test_a_limit_window_fault_refuses_calls_until_it_closes(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{emulator.url}/__admin/faults", json={"limit_exceeded_for_seconds": 1.5})
    assert rest.get("/sobjects").status_code == 403
    time.sleep(1.6)
    assert rest.get("/sobjects").status_code == 200


def test_503_rate_is_seeded_and_reproducible(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    def run() -> list[int]:
        httpx.post(f"{emulator.url}/__admin/faults", json={"error_503_rate": 0.3, "seed": 42})
        return [rest.get("/sobjects").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second and 503 in first and 200 in first
    failed = next(r for r in [rest.get("/sobjects") for _ in range(40)] if r.status_code == 503)
    assert failed.json() == [{"message": "server too busy", "errorCode": "SERVER_UNAVAILABLE"}]


def test_latency_fault_delays_data_calls(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.faults.update({"latency_ms": 150})
    started = time.monotonic()
    assert rest.get("/sobjects").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_uri_over_16384_bytes_is_414_and_headers_push_it_to_431(rest: httpx.Client) -> None:
    assert rest.get("/sobjects", params={"x": "a" * 16_400}).status_code == 414
    assert rest.get("/sobjects", headers={"X-Big": "b" * 16_000}, params={"x": "a" * 1000}).status_code == 431


def test_unknown_fault_settings_are_refused(emulator) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{emulator.url}/__admin/faults", json={"chaos": 1})
    assert r.status_code == 400


def test_refused_sessions_oauth_and_admin_calls_are_not_counted(emulator) -> None:  # type: ignore[no-untyped-def]
    refused = httpx.get(f"{emulator.url}/services/data/v62.0/sobjects", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["Sforce-Limit-Info"] == "api-usage=0/100000"
    emulator.token()
    httpx.get(f"{emulator.url}/__admin/stats")
    assert "Sforce-Limit-Info" not in httpx.get(f"{emulator.url}/__admin/faults").headers
    assert emulator.state.usage.total == 0


def test_calls_are_counted_by_endpoint_kind(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    rest.get("/sobjects/Account/describe")
    rest.get("/query", params={"q": "SELECT Id FROM Account"})
    rest.get("/jobs/ingest")
    rest.get("/limits")
    rest.get("/sobjects/Account/001000000000000AAA")  # a 404 reached the API: it counts
    by_endpoint = httpx.get(f"{emulator.url}/__admin/stats").json()["api_calls"]["by_endpoint"]
    assert by_endpoint == {"sobjects/describe": 1, "query": 1, "jobs/ingest": 1, "limits": 1, "sobjects": 1}


def test_bulk_batches_key_depends_on_the_api_version_and_counts_uploaded_jobs(rest: httpx.Client,  # type: ignore[no-untyped-def]
                                                                              emulator) -> None:
    old = httpx.get(f"{emulator.url}/services/data/v48.0/limits", headers=rest.headers).json()
    assert old["DailyBulkApiRequests"] == {"Max": 15000, "Remaining": 15000} and "DailyBulkApiBatches" not in old
    job = rest.post("/jobs/ingest", json={"object": "Account", "operation": "insert"}).json()
    rest.put(f"/jobs/ingest/{job['id']}/batches", content=b"Name\nA\n", headers={"Content-Type": "text/csv"})
    body = rest.get("/limits").json()
    assert body["DailyBulkApiBatches"] == {"Max": 15000, "Remaining": 14999}
    assert {"DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB", "DataStorageMB"} <= set(body)
    assert all(set(v) == {"Max", "Remaining"} for v in body.values())


def test_admin_usage_sets_the_count_reported_and_enforced(rest: httpx.Client, emulator) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{emulator.url}/__admin/usage", json={"total": 99_999})
    ok = rest.get("/sobjects")
    assert ok.status_code == 200 and ok.headers["Sforce-Limit-Info"] == "api-usage=100000/100000"
    assert rest.get("/limits").status_code == 403
