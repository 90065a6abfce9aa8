"""End to end over real parts — the emulator over HTTPS, a tansu Kafka broker, the SQLite sync log, the
service as `destination run` builds it: a person's change in Salesforce becomes a Segment-shaped event on
the topic within two poll intervals; our own push write of the record produces none (echo suppressed,
recorded and counted); a delete produces a delete event."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from settings_support import OPERATOR
from sync_back_support import (
    WRITE_KEY,
    TopicReader,
    actions_dir,
    identify,
    person_delete,
    person_update,
    records,
    settings,
)

from destination.cli import main
from destination.config import load_settings
from destination.service import build

INTERVAL = 0.5


async def _wait(predicate: Any, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_person_change_published_own_write_suppressed_delete_published(
        store: str, tls_emulator: Any, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    topic = f"sf-changes-{uuid.uuid4().hex[:8]}"
    path = settings(tmp_path, tls_emulator, kafka_bootstrap, actions_dir(tmp_path, topic, interval=INTERVAL))
    if store == "postgres":  # the watermark and echo state in PostgreSQL instead of SQLite
        url = request.getfixturevalue("postgres_url")
        path.write_text(path.read_text().replace(f"sync_log_url: sqlite:///{tmp_path / 'sync.db'}",
                                                 f"sync_log_url: {url}"))
        assert url in path.read_text()
    config = load_settings(path)
    async with AsyncExitStack() as stack:
        service = await build(config, stack)
        assert service.sync_back is not None and service.consumer is not None
        tasks = [asyncio.create_task(service.consumer.run()), asyncio.create_task(service.sync_back.run())]
        reader = TopicReader(kafka_bootstrap, topic)
        await reader.start()
        try:
            await _wait(lambda: _polled(service), 10)  # the first poll is the `start: now` baseline
            transport = httpx.ASGITransport(app=service.app())
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ingest:
                r = await ingest.post("/v1/identify", json=identify("ada@example.com", "Engineer", "m-1"),
                                      auth=(WRITE_KEY, ""))
                assert r.status_code == 200
            await _wait(lambda: _contact(tls_emulator, "Engineer"), 20)
            contact = records(tls_emulator, "Contact")[0]
            polls = service.sync_back.polls
            await _wait(lambda: _after_polls(service, polls + 4), 20)  # two rounds (updates + deletes)
            assert await reader.read(0.5) == []  # our own write: no event
            states = {s.object: s for s in await service.sync_log.sync_back_states("app")}
            assert states["Contact"].echoes == 1 and states["Contact"].published == 0
            rows = [r for r in await service.sync_log.rows() if r.action == "sync_back"]
            assert [(r.status.value, r.error_code, r.record_id) for r in rows] == [
                ("skipped", "ECHO_SUPPRESSED", contact["Id"])]
            assert 'error_code="ECHO_SUPPRESSED",object="Contact",status="skipped"} 1.0' in \
                service.metrics.render().decode()

            loop = asyncio.get_running_loop()
            changed_at = loop.time()
            person_update(tls_emulator, "Contact", contact["Id"], {"Title": "CTO", "Department": "R&D"})
            [event] = await reader.until(lambda m: m.get("type") == "identify", 10)
            took = loop.time() - changed_at
            assert took <= 2 * INTERVAL + 1.0, f"published {took:.2f} s after the change"
            assert event["userId"] == "ada@example.com"
            assert event["traits"] == {"title": "CTO", "department": "R&D"}
            sf = event["context"]["salesforce"]
            assert (sf["object"], sf["id"], sf["lastModifiedById"]) == ("Contact", contact["Id"], "0058c0000000004AAA")
            assert sorted(sf["changed"]) == ["department", "title"]
            assert sf["previous"] == {"title": "Engineer", "department": None}
            assert event["messageId"].startswith("sf-") and event["timestamp"]

            person_delete(tls_emulator, "Contact", contact["Id"])
            [deleted] = await reader.until(lambda m: m.get("event") == "Contact Deleted", 10)
            assert deleted["type"] == "track" and deleted["userId"] == "ada@example.com"
            assert deleted["properties"]["id"] == contact["Id"]
            assert deleted["properties"]["previous"]["title"] == "CTO"
            await reader.read(2 * INTERVAL + 0.5)
            assert len(reader.messages) == 2  # nothing published twice
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                         headers=OPERATOR) as operator:
                page = (await operator.get("/sync-log")).text
            assert "app / contacts" in page and "app / sync_back (from Salesforce)" in page  # both directions
        finally:
            await reader.stop()
            service.sync_back.stop()
            service.consumer.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert await asyncio.to_thread(main, ["--config", str(path), "sync-back", "status", "--json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert (status["source"], status["object"], status["published"], status["echoes_suppressed"]) == (
        "app", "Contact", 2, 1)
    assert status["watermark"] and status["lag_seconds"] >= 0 and status["last_error"] is None


async def _polled(service: Any) -> bool:
    return bool(await service.sync_log.sync_back_states("app"))


async def _after_polls(service: Any, n: int) -> bool:
    return bool(service.sync_back.polls >= n)


async def _contact(emulator: Any, title: str) -> bool:
    return any(r["Title"] == title for r in await asyncio.to_thread(records, emulator, "Contact"))
