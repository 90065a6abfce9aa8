"""The Kafka message contract (schemas/kafka-message.schema.json, docs/kafka.md) holds: every example in the
doc validates and is accepted by the consumer, the messages our own ingest produces validate, and the
schema refuses exactly the events the consumer dead-letters."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from kafka_broker import LEADS_BY_EMAIL as SOURCE
from kafka_broker import creating_topics

from destination.config import KafkaConfig
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer
from destination.ingest.app import Ingest
from destination.ingest.keys import WriteKeys
from destination.ingest.segment import BadRequest, normalise_logged

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "kafka-message.schema.json").read_text())
MESSAGE = jsonschema_rs.validator_for(SCHEMA)
EVENT = jsonschema_rs.validator_for({"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/event"})


def _doc_examples() -> list[dict[str, Any]]:
    text = (REPO / "docs" / "kafka.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def _config(bootstrap: str, **extra: Any) -> KafkaConfig:
    name = uuid.uuid4().hex[:8]
    return KafkaConfig(bootstrap_servers=bootstrap, topic=f"events-{name}", group_id=f"g-{name}",
                       dead_letter_topic=f"dlq-{name}", idempotent=False, **extra)  # tansu lacks InitProducerId


def test_every_example_in_the_doc_validates() -> None:
    examples = _doc_examples()
    assert len(examples) >= 3
    for example in examples:
        errors = [e.message for e in MESSAGE.iter_errors(example)]
        assert not errors, (example, errors)


async def test_the_consumer_accepts_every_example_in_the_doc(kafka_bootstrap: str) -> None:
    examples = _doc_examples()
    config = _config(kafka_bootstrap)
    config = config.model_copy(update={"topic_sources": {config.topic: "web-app"}})  # for header-less examples
    async with KafkaEventLog(creating_topics(config, 1)):
        pass
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for example in examples:
            await producer.send_and_wait(config.topic, value=json.dumps(example["value"]).encode(),
                                         key=example.get("key", "").encode() or None,
                                         headers=[(k, v.encode()) for k, v in example.get("headers", {}).items()])
    finally:
        await producer.stop()
    reader = KafkaLogConsumer(config, {"web-app"})
    await reader.start()
    records = []
    try:
        deadline = time.monotonic() + 20
        while len(records) < len(examples) and time.monotonic() < deadline:
            records += await reader.fetch(100, wait_seconds=0.5)
    finally:
        await reader.stop()
    assert [r.problem for r in records] == [None] * len(examples)
    assert all(r.event is not None and r.event.message_id for r in records)


async def test_the_messages_our_ingest_produces_validate(kafka_bootstrap: str) -> None:
    config = _config(kafka_bootstrap)
    batch = {"batch": [
        {"type": "identify", "userId": "u1", "traits": {"email": "a@x.example"}},
        {"type": "track", "event": "Order Completed", "anonymousId": "a1", "properties": {"total": 3}},
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
        {"type": "page", "userId": "u1", "name": "Home", "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "alias", "previousId": "a1", "userId": "u1"},
    ], "sentAt": datetime.now(UTC).isoformat()}
    async with KafkaEventLog(creating_topics(config, 2)) as log:
        app = FastAPI()
        app.include_router(Ingest(WriteKeys({"web": SOURCE}), log).router)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest",
                                     auth=("web-key", "")) as client:
            assert (await client.post("/v1/batch", json=batch)).status_code == 200
    reader = AIOKafkaConsumer(config.topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                              auto_offset_reset="earliest")
    await reader.start()
    messages: list[Any] = []
    try:
        deadline = time.monotonic() + 15
        while len(messages) < 5 and time.monotonic() < deadline:
            for batch_messages in (await reader.getmany(timeout_ms=500)).values():
                messages += batch_messages
    finally:
        await reader.stop()
    assert len(messages) == 5
    for message in messages:
        record = {"key": message.key.decode() if message.key else None,
                  "headers": {k: v.decode() for k, v in message.headers},
                  "value": json.loads(message.value)}
        errors = [e.message for e in MESSAGE.iter_errors(record)]
        assert not errors, (record, errors)


@pytest.mark.parametrize("value", [
    {"type": "identify", "userId": "u"},
    {"type": "identify", "anonymousId": "a"},
    {"type": "identify", "userId": 42},
    {"type": "alias", "previousId": "a"},
    {"type": "track", "userId": "u", "event": "E"},
    {"type": "group", "anonymousId": "a", "groupId": "g"},
    {"type": "screen", "userId": "u", "messageId": "m", "timestamp": "2026-01-01T00:00:00Z"},
    {"userId": "u"},
    {"type": "login", "userId": "u"},
    {"type": "identify"},
    {"type": "identify", "userId": ""},
    {"type": "track", "userId": "u"},
    {"type": "track", "userId": "u", "event": ""},
    {"type": "group", "userId": "u"},
    {"type": "page", "anonymousId": ""},
])
def test_the_schema_refuses_exactly_what_the_consumer_dead_letters(value: dict[str, Any]) -> None:
    try:
        normalise_logged(value, "kafka:t:0:0:0", 1_764_658_000_123)
        accepted = True
    except BadRequest:
        accepted = False
    assert EVENT.is_valid(value) is accepted
