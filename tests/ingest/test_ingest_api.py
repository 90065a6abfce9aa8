"""The Segment Tracking API: paths, auth forms, encodings, limits, batch merging, dedup, skew correction,
and segment-analytics-python posting to it unchanged."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ingest_support import IngestServer


def _basic(key: str, colon: bool = True) -> dict[str, str]:
    raw = f"{key}:" if colon else key
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


async def _post(server: IngestServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        if isinstance(body, (bytes, str)):
            return await http.post(path, content=body, **kw)
        return await http.post(path, json=body, **kw)


async def test_identify_is_logged_durably_with_message_id_and_received_at(ingest: IngestServer) -> None:
    r = await _post(ingest, "/v1/identify", {"userId": "u1", "traits": {"email": "a@b.c"}}, headers=_basic("web-key"))
    assert r.status_code == 200 and r.json() == {"success": True}
    [(source, body)] = await ingest.logged()
    assert source == "web" and body["type"] == "identify" and body["messageId"].startswith("ajs-")
    assert body["receivedAt"].endswith("Z") and body["timestamp"]


@pytest.mark.parametrize("how", ["basic-colon", "basic-bare", "body", "bearer-body"])
async def test_every_write_key_form_is_accepted(ingest: IngestServer, how: str) -> None:
    body: dict[str, Any] = {"userId": "u1", "event": "Clicked"}
    headers: dict[str, str] = {}
    if how == "basic-colon":
        headers = _basic("app-key")
    elif how == "basic-bare":
        headers = _basic("app-key", colon=False)
    else:
        body["writeKey"] = "app-key"
        if how == "bearer-body":
            headers = {"Authorization": "Bearer anything"}
    assert (await _post(ingest, "/v1/track", body, headers=headers)).status_code == 200
    assert (await ingest.logged())[0][0] == "app"


async def test_unknown_or_missing_keys_are_refused(ingest: IngestServer) -> None:
    for headers in (_basic("nope"), {}):
        r = await _post(ingest, "/v1/track", {"userId": "u", "event": "E"}, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "invalid_write_key"
    assert await ingest.logged() == []


async def test_text_plain_gzip_and_short_paths(ingest: IngestServer) -> None:
    payload = json.dumps({"writeKey": "web-key", "anonymousId": "a1", "event": "Viewed"}).encode()
    r = await _post(ingest, "/v1/t", gzip.compress(payload),
                    headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert r.status_code == 200
    assert (await ingest.logged())[0][1]["type"] == "track"


async def test_size_limits_answer_400_or_413_with_code_and_message(ingest: IngestServer) -> None:
    big_event = {"userId": "u", "event": "E", "properties": {"x": "a" * 33_000}}
    r = await _post(ingest, "/v1/track", big_event, headers=_basic("web-key"))
    assert r.status_code == 400 and set(r.json()) == {"code", "message"} and r.json()["code"] == "event_too_large"
    many = {"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2501}
    r = await _post(ingest, "/v1/batch", many, headers=_basic("web-key"))
    assert r.status_code == 400 and r.json()["code"] == "batch_too_large"
    huge = {"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "b" * 20_000}}] * 30}
    r = await _post(ingest, "/v1/batch", huge, headers=_basic("web-key"))
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert (await _post(ingest, "/v1/track", b"{not json", headers=_basic("web-key"))).status_code == 400
    assert await ingest.logged() == []


async def test_batch_context_and_integrations_are_merged_into_each_event(ingest: IngestServer) -> None:
    batch = {"context": {"library": {"name": "x"}, "ip": "1.2.3.4"}, "integrations": {"Salesforce": False},
             "batch": [{"type": "identify", "userId": "u1", "context": {"ip": "5.6.7.8"}},
                       {"type": "group", "userId": "u1", "groupId": "g1", "integrations": {"Salesforce": True}}]}
    assert (await _post(ingest, "/v1/batch", batch, headers=_basic("web-key"))).status_code == 200
    bodies = [b for _, b in await ingest.logged()]
    assert bodies[0]["context"] == {"library": {"name": "x"}, "ip": "5.6.7.8"}
    assert bodies[0]["integrations"] == {"Salesforce": False} and bodies[1]["integrations"] == {"Salesforce": True}


async def test_a_message_id_is_logged_once_within_the_window(ingest: IngestServer) -> None:
    event = {"userId": "u1", "event": "E", "messageId": "dup-1"}
    for _ in range(3):
        assert (await _post(ingest, "/v1/track", event, headers=_basic("web-key"))).status_code == 200
    assert len(await ingest.logged()) == 1


async def test_timestamps_are_corrected_for_device_clock_skew(ingest: IngestServer) -> None:
    now = datetime.now(UTC)
    ahead = now + timedelta(hours=1)
    event = {"userId": "u1", "event": "E", "timestamp": (ahead - timedelta(minutes=5)).isoformat(),
             "sentAt": ahead.isoformat()}
    assert (await _post(ingest, "/v1/track", event, headers=_basic("web-key"))).status_code == 200
    body = (await ingest.logged())[0][1]
    corrected = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs(corrected - (now - timedelta(minutes=5))) < timedelta(seconds=30)
    assert body["originalTimestamp"]


async def test_bad_events_are_refused_not_logged(ingest: IngestServer) -> None:
    for path, body in (("/v1/track", {"userId": "u"}), ("/v1/identify", {"traits": {}}),
                       ("/v1/group", {"userId": "u"}), ("/v1/batch", {"batch": [{"type": "bogus", "userId": "u"}]})):
        r = await _post(ingest, path, body, headers=_basic("web-key"))
        assert r.status_code == 400, (path, r.text)
    assert await ingest.logged() == []


async def test_segment_analytics_python_posts_unchanged(ingest: IngestServer) -> None:
    import segment.analytics as analytics

    client = analytics.Client(write_key="web-key", host=ingest.url, sync_mode=False, max_retries=1)

    def send() -> None:
        client.identify("user-1", {"email": "ada@example.com", "last_name": "Lovelace"})
        client.track("user-1", "Order Completed", {"order_id": "o-1", "total": 99.5})
        client.group("user-1", "g-1", {"name": "Acme"})
        client.flush()
        client.join()

    await asyncio.to_thread(send)
    logged = await ingest.logged()
    assert [b["type"] for _, b in logged] == ["identify", "track", "group"]
    assert {s for s, _ in logged} == {"web"}
    assert logged[1][1]["properties"]["total"] == 99.5 and logged[0][1]["context"]["library"]["name"]


async def test_out_of_range_timestamps_are_a_400_not_a_crash(ingest: IngestServer) -> None:
    # found by schemathesis: skew correction of year-1 timestamps overflowed
    event = {"userId": "u1", "event": "E", "timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"}
    r = await _post(ingest, "/v1/track", event, headers=_basic("web-key"))
    assert r.status_code == 400 and r.json()["code"] == "invalid_timestamp"
