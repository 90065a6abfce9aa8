"""Deletes and loop protection, end to end over real parts — the emulator over HTTPS, a tansu Kafka broker,
the sync log (SQLite and PostgreSQL), the service as `destination run` builds it: a delete the push direction
made does not come back as a "Contact Deleted" event (skipped with ECHO_SUPPRESSED, recorded and counted),
while a person's delete of another record still does."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sync_back_support import (
    WRITE_KEY,
    TopicReader,
    actions_dir,
    identify,
    person_create,
    person_delete,
    records,
    settings,
)

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
async def test_our_delete_is_suppressed_as_echo_and_a_persons_delete_is_published(
        store: str, tls_emulator: Any, kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    topic = f"sf-deletes-{uuid.uuid4().hex[:8]}"
    path = settings(tmp_path, tls_emulator, kafka_bootstrap, actions_dir(tmp_path, topic, interval=INTERVAL,
                                                                         deletes=True))
    if store == "postgres":
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
            await _wait(lambda: _polled(service), 10)  # the `start: now` baseline
            transport = httpx.ASGITransport(app=service.app())
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                         auth=(WRITE_KEY, "")) as ingest:
                r = await ingest.post("/v1/identify", json=identify("ada@example.com", "Engineer", "m-1"))
                assert r.status_code == 200
                await _wait(lambda: _contacts(tls_emulator, 1), 20)
                [ours] = records(tls_emulator, "Contact")
                theirs = person_create(tls_emulator, "Contact", {"LastName": "Hopper", "Email": "grace@example.com",
                                                                 "Title": "Admiral"})
                await reader.until(lambda m: m.get("traits", {}).get("title") == "Admiral", 10)  # the person's create
                r = await ingest.post("/v1/track", json={"type": "track", "event": "Contact Removed",
                                                         "messageId": "m-2", "userId": "ada@example.com",
                                                         "properties": {"email": "ada@example.com"}})
                assert r.status_code == 200
            await _wait(lambda: _deleted(tls_emulator, ours["Id"]), 20)  # our push deleted Ada
            person_delete(tls_emulator, "Contact", theirs)

            deletes = await reader.until(lambda m: m.get("event") == "Contact Deleted", 10)
            assert [(m["properties"]["id"], m.get("userId")) for m in deletes] == [(theirs, "grace@example.com")]
            polls = service.sync_back.polls
            await _wait(lambda: _after_polls(service, polls + 4), 20)  # two more rounds: nothing else comes
            await reader.read(0.5)
            assert [(m.get("event"), m["context"]["salesforce"]["id"]) for m in reader.messages
                    if m.get("event") == "Contact Deleted"] == [("Contact Deleted", theirs)]

            rows = [r for r in await service.sync_log.rows() if r.action == "sync_back" and r.operation == "delete"]
            assert sorted((r.record_id, r.status.value, r.error_code) for r in rows) == sorted([
                (ours["Id"], "skipped", "ECHO_SUPPRESSED"), (theirs, "succeeded", None)])
            states = {s.object: s for s in await service.sync_log.sync_back_states("app")}
            # echoes: our create of Ada and our delete of her; published: Grace's create and her delete
            assert (states["Contact"].echoes, states["Contact"].published) == (2, 2)
            assert 'error_code="ECHO_SUPPRESSED",object="Contact",status="skipped"} 2.0' in \
                service.metrics.render().decode()
        finally:
            await reader.stop()
            service.sync_back.stop()
            service.consumer.stop()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _polled(service: Any) -> bool:
    return bool(await service.sync_log.sync_back_states("app"))


async def _after_polls(service: Any, n: int) -> bool:
    return bool(service.sync_back.polls >= n)


async def _contacts(emulator: Any, n: int) -> bool:
    return len(await asyncio.to_thread(records, emulator, "Contact")) == n


async def _deleted(emulator: Any, record_id: str) -> bool:
    return all(r["Id"] != record_id for r in await asyncio.to_thread(records, emulator, "Contact"))
