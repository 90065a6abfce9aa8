"""A broker restart (SIGKILL, then the same port and storage): topics, messages and committed offsets
survive it; ingest answers a retryable 503 while the broker is down and accepts the retry afterwards; the
consumer keeps running through the outage and resumes from its committed offsets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from kafka_broker import LEADS_BY_EMAIL as SOURCE
from kafka_broker import Broker, consume_until, creating_topics, kafka_config

from destination.config import BatchingConfig, KafkaConfig
from destination.consume import Consumer
from destination.deliver import Delivery
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer
from destination.events import Event
from destination.ingest.app import Ingest
from destination.ingest.keys import WriteKeys
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log


def _config(broker: Broker, **extra: Any) -> KafkaConfig:
    return creating_topics(kafka_config(broker.bootstrap, **extra))


def _events(prefix: str, n: int) -> list[Event]:
    return [Event("web", {"type": "identify", "messageId": f"{prefix}{i}", "userId": f"{prefix}{i}",
                          "traits": {"email": f"{prefix}{i}@x.example"}}) for i in range(n)]


async def _committed(config: KafkaConfig, partitions: int = 8) -> int:
    """The sum of the group's committed offsets over the topic's partitions."""
    reader = AIOKafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=config.group_id,
                              enable_auto_commit=False)
    await reader.start()
    try:
        return sum([await reader.committed(TopicPartition(config.topic, p)) or 0 for p in range(partitions)])
    finally:
        await reader.stop()


async def test_messages_and_committed_offsets_survive_a_broker_sigkill(persistent_broker: Broker, delivery: Delivery,
                                                                     tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(persistent_broker)
    async with KafkaEventLog(config) as log:
        await log.append(_events("a", 40))
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        first = await consume_until(config, {"web": SOURCE}, delivery, sync_log, 40)
        assert first.consumed == 40
        persistent_broker.kill()
        persistent_broker.start()
        assert await _committed(config) == 40
        async with KafkaEventLog(config) as log:
            await log.append(_events("b", 5))
        second = await consume_until(config, {"web": SOURCE}, delivery, sync_log, 5, seconds=60)
        assert second.consumed == 5  # resumed from the committed offsets: nothing re-read, nothing skipped
        assert (await sync_log.counts())[Status.SUCCEEDED] == 45
    assert len(tls_emulator.state.store.records("Lead")) == 45


async def test_ingest_answers_503_while_the_broker_is_down_and_accepts_the_retry(persistent_broker: Broker) -> None:
    config = _config(persistent_broker, append_timeout_seconds=1)
    async with KafkaEventLog(config) as log:
        app = FastAPI()
        app.include_router(Ingest(WriteKeys({"web": SOURCE}), log).router)
        batch = {"batch": [e.body for e in _events("c", 3)]}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest",
                                     auth=("web-key", "")) as client:
            persistent_broker.kill()
            began = time.monotonic()
            refused = await client.post("/v1/batch", json=batch)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert time.monotonic() - began < 5  # bounded by append_timeout_seconds, not aiokafka's 40 s
            persistent_broker.start()
            accepted = await client.post("/v1/batch", json=batch)  # the same messageIds: not taken for repeats
            assert accepted.status_code == 200
    reader = AIOKafkaConsumer(config.topic, bootstrap_servers=persistent_broker.bootstrap, group_id=None,
                              auto_offset_reset="earliest")
    await reader.start()
    ids: set[str] = set()
    deadline = time.monotonic() + 15
    while len(ids) < 3 and time.monotonic() < deadline:
        for messages in (await reader.getmany(timeout_ms=500)).values():
            ids.update(m.value.decode().split('"messageId":"')[1].split('"')[0] for m in messages)
    await reader.stop()
    assert ids == {"c0", "c1", "c2"}


async def test_the_consumer_keeps_running_through_an_outage_and_resumes(persistent_broker: Broker, delivery: Delivery,
                                                                       tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(persistent_broker)
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        async with KafkaEventLog(config) as log:
            await log.append(_events("d", 20))
        source = KafkaLogConsumer(config, {"web"})
        await source.start()
        consumer = Consumer(source, Pipeline({"web": SOURCE}, delivery, sync_log,
                                             batching=BatchingConfig(linger_ms=50)), commit_interval=0.1)
        task = asyncio.create_task(consumer.run())

        async def settled(n: int) -> bool:
            return (consumer.consumed >= n and consumer.tracker.in_flight() == 0
                    and not consumer.tracker.committable())

        await _until(lambda: settled(20))
        persistent_broker.kill()
        await asyncio.sleep(2)  # the consumer loop meets the outage (fetches and heartbeats fail)
        assert not task.done()
        persistent_broker.start()
        async with KafkaEventLog(config) as log:
            await log.append(_events("e", 20))
        await _until(lambda: settled(40), seconds=60)
        consumer.stop()
        await task
        await consumer.drain()
        await source.stop()
        assert consumer.consumed == 40  # after the restart it went on from its position: nothing re-read
        assert (await sync_log.counts())[Status.SUCCEEDED] == 40
    assert await _committed(config) == 40
    assert len(tls_emulator.state.store.records("Lead")) == 40


async def _until(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
