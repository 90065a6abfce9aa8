"""The Kafka event log and consumer against a real broker: durable appends, keyed partitions, manual
commits only after outcomes, restart resumes, poison messages dead-lettered without blocking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka_broker import LEADS_BY_EMAIL as SOURCE
from kafka_broker import consume_until, creating_topics, kafka_config

from destination.config import KafkaConfig
from destination.deliver import Delivery
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer
from destination.events import Event
from destination.outcomes import Status
from destination.synclog import open_sync_log


def _config(bootstrap: str, partitions: int = 8) -> KafkaConfig:
    return creating_topics(kafka_config(bootstrap), partitions)


async def _run_consumer(config: KafkaConfig, delivery: Delivery, sync_log: Any, until: int) -> Any:
    return await consume_until(config, {"web": SOURCE}, delivery, sync_log, until)


async def test_events_flow_from_kafka_to_outcomes_and_commits_resume(kafka_bootstrap: str, delivery: Delivery,
                                                                    tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(kafka_bootstrap)
    async with KafkaEventLog(config) as log:
        await log.append([Event("web", {"type": "identify", "messageId": f"k{i}", "userId": f"u{i % 7}",
                                        "traits": {"email": f"k{i}@x.example"}}) for i in range(60)])
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        first = await _run_consumer(config, delivery, sync_log, 60)
        assert first.consumed == 60
        counts = await sync_log.counts()
        assert counts[Status.SUCCEEDED] == 60
        async with KafkaEventLog(config) as log:
            await log.append([Event("web", {"type": "identify", "messageId": "late", "userId": "z",
                                            "traits": {"email": "late@x.example"}})])
        second = await _run_consumer(config, delivery, sync_log, 1)
        assert second.consumed == 1  # committed offsets: nothing re-read
    assert len(tls_emulator.state.store.records("Lead")) == 61


async def test_poison_messages_are_dead_lettered_and_the_partition_keeps_going(
        kafka_bootstrap: str, delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(kafka_bootstrap, partitions=1)
    async with KafkaEventLog(config):
        pass
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    good = json.dumps({"type": "identify", "messageId": "g1", "userId": "u", "traits": {"email": "g@x.example"}})
    for value, source in ((b"{not json", b"web"), (good.encode(), b"nope"), (b"[1,2]", b"web"),
                          (good.encode(), b"web")):
        await producer.send_and_wait(config.topic, value=value, key=b"u", headers=[("source", source)])
    await producer.stop()
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        consumer = await _run_consumer(config, delivery, sync_log, 4)
        assert consumer.consumed == 4
        dead = await sync_log.dead_letters()
        assert sorted(d.error_code or "" for d in dead) == ["POISON_MESSAGE"] * 3
        assert (await sync_log.counts())[Status.SUCCEEDED] == 1
    reader = AIOKafkaConsumer(config.dead_letter_topic, bootstrap_servers=kafka_bootstrap,
                              auto_offset_reset="earliest", group_id=None)
    await reader.start()
    batches = await reader.getmany(timeout_ms=5000)
    await reader.stop()
    reasons = [dict(m.headers)["reason"].decode() for ms in batches.values() for m in ms]
    assert any("invalid JSON" in r for r in reasons) and any("unknown source" in r for r in reasons)


async def test_a_produced_event_is_read_as_checked_and_an_ingested_one_is_not(kafka_bootstrap: str) -> None:
    """The reader normalises an event a producer wrote straight to the topic, checking its shape, and says so
    (routing skips its own check); one our ingest wrote (with receivedAt) is passed on as it is, unchecked.
    The last `source` header names the source."""
    config = _config(kafka_bootstrap, partitions=1)
    ingested = {"type": "identify", "userId": "u", "messageId": "i1", "receivedAt": "2026-01-01T00:00:00.000Z",
                "timestamp": "2026-01-01T00:00:00.000Z"}
    async with KafkaEventLog(config) as log:
        await log.append([Event("web", ingested)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    produced = {"type": "identify", "userId": "u", "messageId": "p1", "timestamp": "2026-01-01T00:00:00Z"}
    await producer.send_and_wait(config.topic, value=json.dumps(produced).encode(), key=b"u",
                                 headers=[("source", b"nope"), ("source", b"web")])
    await producer.stop()
    reader = KafkaLogConsumer(config, {"web"})
    await reader.start()
    try:
        records: list[Any] = []
        for _ in range(100):
            records += await reader.fetch(10, wait_seconds=0.2)
            if len(records) >= 2:
                break
    finally:
        await reader.stop()
    first, second = (r.event for r in records)
    assert (first.body, first.checked) == (ingested, False)
    assert second.source == "web" and second.checked
    assert second.body["timestamp"] == "2026-01-01T00:00:00.000Z" and "receivedAt" in second.body
