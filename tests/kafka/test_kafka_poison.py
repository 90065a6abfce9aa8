"""Events produced straight to Kafka get ingest's checks when they are read: one without the Segment spec's
shape is dead-lettered alone (POISON_MESSAGE, the reason naming the field), and the consumer keeps delivering
its neighbours (it used to stop the consumer)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka_broker import LEADS_BY_EMAIL, consume_until, creating_topics
from sf_support import connection_for

from destination.config import KafkaConfig
from destination.deliver import Delivery
from destination.eventlog.kafka import KafkaEventLog
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from destination.synclog import open_sync_log

POISON = [{"type": "identify", "userId": "u", "context": "x"},
          {"type": "identify", "userId": "u", "traits": ["a"]},
          {"type": "identify", "userId": ["u"], "traits": {"email": "p@x.example"}}]


async def test_malformed_events_from_kafka_fail_alone_and_neighbours_are_delivered(
        kafka_bootstrap: str, tls_emulator: Any, tmp_path: Path) -> None:
    name = uuid.uuid4().hex[:8]
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=f"poison-{name}", group_id=f"g-{name}",
                         dead_letter_topic=f"dlq-{name}", idempotent=False)
    async with KafkaEventLog(creating_topics(config, 1)):
        pass
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    bodies = []
    for i, poison in enumerate(POISON):
        bodies.append({"type": "identify", "messageId": f"good-{i}", "userId": f"g{i}",
                       "traits": {"email": f"good{i}@x.example"}})
        bodies.append({**poison, "messageId": f"poison-{i}"})
    bodies.append({"type": "identify", "messageId": "good-last", "userId": "gl", "traits": {"email": "gl@x.example"}})
    for body in bodies:
        await producer.send_and_wait(config.topic, json.dumps(body).encode(), key=b"k", headers=[("source", b"web")])
    await producer.stop()
    async with SalesforceClient(connection_for(tls_emulator)) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        consumer = await consume_until(config, {"web": LEADS_BY_EMAIL}, Delivery({"default": client},
                                                                                 sync_log=sync_log),
                                       sync_log, len(bodies), seconds=60)
        rows = {r.message_id: r for r in await sync_log.rows(limit=100)}
        dead = await sync_log.dead_letters()
    assert consumer.consumed == len(bodies)
    assert consumer.tracker.in_flight() == 0
    poisoned = {json.loads(d.payload)["messageId"]: d for d in dead}
    assert sorted(poisoned) == [f"poison-{i}" for i in range(len(POISON))]
    assert all(d.error_code == "POISON_MESSAGE" for d in dead)
    assert "context" in poisoned["poison-0"].reason and "traits" in poisoned["poison-1"].reason
    assert "userId" in poisoned["poison-2"].reason
    goods = [m for m in rows if m.startswith("good")]
    assert len(goods) == len(POISON) + 1 and all(rows[m].status is Status.SUCCEEDED for m in goods)
