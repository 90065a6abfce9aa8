"""A write key sent inside an event body authenticates the request and is then dropped: it is never stored
in the event log, so the sync-log API and page (which show the stored event) cannot serve it."""

from __future__ import annotations

import httpx
from ingest_support import IngestServer


async def test_a_write_key_in_the_body_is_not_stored_with_the_event(ingest: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/identify", json={"writeKey": "web-key", "userId": "u1", "traits": {"a": 1}})
        assert r.status_code == 200
        r = await http.post("/v1/batch", json={"writeKey": "app-key", "batch": [
            {"type": "track", "event": "E", "userId": "u2", "writeKey": "app-key"},
            {"type": "identify", "userId": "u3", "writeKey": "web-key"}]})
        assert r.status_code == 200
    logged = await ingest.logged()
    assert len(logged) == 3
    assert all("writeKey" not in body for _, body in logged), logged
    assert not any("-key" in str(body) for _, body in logged)
