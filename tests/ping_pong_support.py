"""Two-way sync ping-pong: the push direction and the sync-back direction on one org and one Kafka topic
(changes are published onto the topic the push consumes), with a person and the app editing the same
Contact's Title concurrently. Returns what happened, for the tests to judge convergence."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sync_back_support import WRITE_KEY, TopicReader, actions_dir, person_update, records, settings

from destination.config import load_settings
from destination.service import build

INTEGRATION_USER = "0058c0000000001AAA"  # emulator-client runs as admin@emulator.test
INTERVAL = 0.5


@dataclass
class PingPong:
    edits: list[tuple[str, str]] = field(default_factory=list)  # (side, value) in the order they were made
    final_title: str | None = None
    published: list[dict[str, Any]] = field(default_factory=list)  # the sync-back events on the topic
    api_calls: int = 0
    polls: int = 0
    echoes: int = 0
    errors: list[str] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)


async def ping_pong(emulator: Any, kafka: str, tmp_path: Path, seconds: float, seed: int = 7) -> PingPong:
    """Edit for `seconds` from both sides (a random side every 0.1 to 0.4 s), let it settle, report."""
    topic = f"pp-{uuid.uuid4().hex[:8]}"
    config = load_settings(settings(tmp_path, emulator, kafka, actions_dir(tmp_path, topic, interval=INTERVAL,
                                                                            email_synced=True), log_topic=topic))
    rng = random.Random(seed)
    out = PingPong()
    async with AsyncExitStack() as stack:
        service = await build(config, stack)
        assert service.consumer is not None and service.sync_back is not None
        tasks = [asyncio.create_task(service.consumer.run()), asyncio.create_task(service.sync_back.run())]
        reader = TopicReader(kafka, topic)
        await reader.start()
        transport = httpx.ASGITransport(app=service.app())
        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1"))

        async def app_edit(value: str) -> None:
            event = {"type": "identify", "messageId": uuid.uuid4().hex, "userId": "pp@example.com",
                     "timestamp": datetime.now(UTC).isoformat(),
                     "traits": {"email": "pp@example.com", "last_name": "Pong", "title": value}}
            (await http.post("/v1/identify", json=event, auth=(WRITE_KEY, ""))).raise_for_status()

        try:
            await app_edit("app-0")
            out.edits.append(("app", "app-0"))
            contact_id = None
            for _ in range(200):
                found = await asyncio.to_thread(records, emulator, "Contact")
                if found:
                    contact_id = found[0]["Id"]
                    break
                await asyncio.sleep(0.05)
            assert contact_id is not None
            start_calls = emulator.state.usage.total
            start_polls = service.sync_back.polls
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                n += 1
                if rng.random() < 0.5:
                    value = f"app-{n}"
                    await app_edit(value)
                    out.edits.append(("app", value))
                else:
                    value = f"person-{n}"
                    await asyncio.to_thread(person_update, emulator, "Contact", contact_id, {"Title": value})
                    out.edits.append(("person", value))
                await asyncio.sleep(rng.uniform(0.1, 0.4))
            await asyncio.sleep(4 * INTERVAL + 2)  # settle: the last change published, consumed, written or not
            while True:  # the whole topic: read until a read brings nothing new
                before = len(reader.messages)
                if len(await reader.read(1.0)) == before:
                    break
            out.final_title = next(r["Title"] for r in await asyncio.to_thread(records, emulator, "Contact"))
            out.published = [m for m in reader.messages if str(m.get("messageId", "")).startswith("sf-")]
            out.api_calls = emulator.state.usage.total - start_calls
            out.polls = service.sync_back.polls - start_polls
            states = await service.sync_log.sync_back_states("app")
            out.echoes = sum(s.echoes for s in states)
            out.errors = [s.last_error for s in states if s.last_error]
            out.rows = [(r.status.value, r.error_code, r.message, r.reason) for r in await service.sync_log.rows(limit=500) if r.action == "sync_back"]
        finally:
            await reader.stop()
            service.sync_back.stop()
            service.consumer.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
    return out


def judge(result: PingPong) -> None:
    """Convergence: each change published once; our own writes never come back as events; the API calls
    stay within polls + edits; the final Title is the last edit (most_recent)."""
    ids = [m["messageId"] for m in result.published]
    assert len(ids) == len(set(ids)), "a change was published more than once"
    ours = [m for m in result.published if m["context"]["salesforce"]["lastModifiedById"] == INTEGRATION_USER]
    assert ours == [], f"our own writes echoed: {ours}"
    people = sum(1 for side, _ in result.edits if side == "person")
    assert result.published and result.echoes, "a person's edits are published, our own are suppressed"
    assert len(result.published) <= people + 1  # at most one event per person edit (+ a first publish)
    app_edits = len(result.edits) - people
    # per poll round: one query and one getDeleted; per event that reaches the push: a lookup and a write
    bound = 2 * result.polls + 2 * (app_edits + len(result.published)) + 10
    assert result.api_calls <= bound, f"{result.api_calls} API calls > {bound}"
    assert result.final_title == result.edits[-1][1], f"final {result.final_title}, last edit {result.edits[-1]}"
