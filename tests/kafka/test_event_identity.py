"""Events produced straight to the Kafka topic, without a messageId: each gets an identity from where it sits
in the log (topic, partition, offset, record timestamp), so each has its own sync-log row and a redelivery
is recognised; and they get the normalisation the HTTP API gives (receivedAt, a defaulted timestamp)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka_broker import consume_until, creating_topics, kafka_config

from destination.actions.loader import load_text
from destination.config import BatchingConfig, KafkaConfig
from destination.consume import Consumer
from destination.deliver import Delivery
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

#: A create per track event: without a stable identity, a redelivery would create the Lead again.
SIGNUPS = load_text("""source: web
actions:
  - name: signup
    when: type = "track" and event = "Signed Up"
    object: Lead
    operation: create
    fields: {Email: $.properties.email, LastName: $.properties.name, Company: Acme}
""", "web.yaml")


def _config(bootstrap: str) -> KafkaConfig:
    return kafka_config(bootstrap)


async def _produce_without_message_ids(config: KafkaConfig, n: int) -> None:
    """What a producer other than our ingest typically sends: Segment JSON, no messageId, no timestamp."""
    async with KafkaEventLog(creating_topics(config, 2)):
        pass  # creates the topics
    producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap_servers)
    await producer.start()
    try:
        for i in range(n):
            body = {"type": "track", "event": "Signed Up", "userId": f"u{i}",
                    "properties": {"email": f"s{i}@x.example", "name": f"Signer {i}"}}
            await producer.send_and_wait(config.topic, value=json.dumps(body).encode(), key=f"u{i}".encode(),
                                         headers=[("source", b"web")])
    finally:
        await producer.stop()


async def _consume_without_committing(config: KafkaConfig, delivery: Delivery, sync_log: Any, until: int) -> Consumer:
    """Deliver `until` records and stop as a crash would: outcomes recorded, offsets never committed."""
    source = KafkaLogConsumer(config, {"web"})
    await source.start()
    consumer = Consumer(source, Pipeline({"web": SIGNUPS}, delivery, sync_log, batching=BatchingConfig(linger_ms=50)),
                        commit_interval=3600)
    task = asyncio.create_task(consumer.run())
    for _ in range(600):  # up to 30 s, as consume_until
        if consumer.consumed >= until and consumer.tracker.in_flight() == 0:
            break
        await asyncio.sleep(0.05)
    task.cancel()  # no stop(): run() would commit on its way out
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await source.stop()
    return consumer


async def test_events_without_message_id_each_get_their_own_row_and_a_redelivery_creates_nothing_again(
        kafka_bootstrap: str, delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(kafka_bootstrap)
    await _produce_without_message_ids(config, 5)
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        with_log = Delivery(delivery.clients, sync_log=sync_log, budget=delivery.budget, backoff_seconds=0.01)
        first = await _consume_without_committing(config, with_log, sync_log, 5)
        assert first.consumed == 5
        rows = await sync_log.rows(SyncLogFilter(source="web"), limit=50)
        assert len(rows) == 5, "one row per event, not one for all events without a messageId"
        assert all(r.status is Status.SUCCEEDED and r.created for r in rows)
        identities = {r.message_id for r in rows}
        assert len(identities) == 5
        for identity in identities:
            kind, topic, partition, offset, timestamp = identity.split(":")
            assert (kind, topic) == ("kafka", config.topic)
            assert partition.isdigit() and offset.isdigit() and timestamp.isdigit()
        assert all(r.event["receivedAt"] and r.event["timestamp"] == r.event["receivedAt"] for r in rows)
        assert len(tls_emulator.state.store.records("Lead")) == 5

        # the redelivery: the same group starts again from its (missing) commit and reads every record again
        second = await consume_until(config, {"web": SIGNUPS}, with_log, sync_log, 5)
        assert second.consumed == 5
        rows_after = await sync_log.rows(SyncLogFilter(source="web"), limit=50)
        assert {r.message_id for r in rows_after} == identities, "the same identities on a redelivery"
        assert {r.record_id for r in rows_after} == {r.record_id for r in rows}
    assert len(tls_emulator.state.store.records("Lead")) == 5, "the redelivery created nothing again"


async def test_an_event_the_http_api_would_refuse_is_dead_lettered_with_its_reason(
        kafka_bootstrap: str, delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    config = _config(kafka_bootstrap)
    async with KafkaEventLog(creating_topics(config, 1)):
        pass
    producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap_servers)
    await producer.start()
    try:
        for body in ({"type": "track", "userId": "u1"},  # a track call needs `event`
                     {"type": "track", "event": "Signed Up", "userId": "u2",
                      "properties": {"email": "ok@x.example", "name": "Ok"}}):
            await producer.send_and_wait(config.topic, value=json.dumps(body).encode(), headers=[("source", b"web")])
    finally:
        await producer.stop()
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        consumer = await consume_until(config, {"web": SIGNUPS}, delivery, sync_log, 2)
        assert consumer.consumed == 2
        dead = await sync_log.dead_letters()
        assert [d.error_code for d in dead] == ["POISON_MESSAGE"]
        assert dead[0].reason.startswith("missing_event")
        assert (await sync_log.counts())[Status.SUCCEEDED] == 1
