"""Bad input: 10,000 malformed Kafka messages are all dead-lettered with a reason while the consumer keeps
delivering the good ones; schemathesis finds no 5xx in the ingest API."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from kafka_broker import LEADS_BY_EMAIL as SOURCE
from kafka_broker import consume_until
from sf_support import connection_for

from destination.actions.loader import load_text
from destination.config import KafkaConfig
from destination.deliver import Delivery
from destination.eventlog.kafka import KafkaEventLog
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from destination.synclog import open_sync_log

BAD = int(os.environ.get("BAD_INPUT_MESSAGES", "10000"))
GOOD = 100


def _bad(i: int) -> tuple[bytes, bytes]:
    kind = i % 4
    if kind == 0:
        return b'{"type": "identify", "traits": {', b"web"  # invalid JSON
    if kind == 1:
        return json.dumps([i, "not", "an", "object"]).encode(), b"web"  # wrong type
    if kind == 2:
        return json.dumps({"type": "identify", "pad": "x" * 40_000}).encode(), b"web"  # oversized
    return json.dumps({"type": "identify", "traits": {"email": f"u{i}@x.example"}}).encode(), b"ghost"  # unknown


async def test_malformed_kafka_messages_are_dead_lettered_and_good_ones_delivered(
        kafka_bootstrap: str, tls_emulator: Any, tmp_path: Path) -> None:
    name = uuid.uuid4().hex[:8]
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=f"bad-{name}", group_id=f"g-{name}",
                         dead_letter_topic=f"dlq-{name}", idempotent=False, max_event_bytes=32_000,
                         create_topics={"enabled": True, "partitions": 4, "replication_factor": 1})
    async with KafkaEventLog(config):
        pass
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, max_request_size=2_000_000)
    await producer.start()
    futures = []
    for i in range(BAD + GOOD):
        if i % ((BAD + GOOD) // GOOD) == 0 and len([f for f in futures if f[1]]) < GOOD:
            value = json.dumps({"type": "identify", "messageId": f"good-{i}", "userId": f"u{i}",
                                "traits": {"email": f"good{i}@x.example"}}).encode()
            futures.append((await producer.send(config.topic, value=value, key=f"u{i}".encode(),
                                                headers=[("source", b"web")]), True))
        else:
            value, source = _bad(i)
            futures.append((await producer.send(config.topic, value=value, key=f"k{i % 16}".encode(),
                                                headers=[("source", source)]), False))
    await asyncio.gather(*(f for f, _ in futures))
    await producer.stop()
    good = sum(1 for _, ok in futures if ok)
    total = len(futures)
    async with SalesforceClient(connection_for(tls_emulator)) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        consumer = await consume_until(config, {"web": SOURCE}, Delivery({"default": client}, sync_log=sync_log),
                                       sync_log, total, seconds=120)
        dead = await sync_log.dead_letters(limit=total)
        counts = await sync_log.counts()
    assert consumer.consumed == total
    assert len(dead) == total - good and all(d.reason for d in dead)
    assert counts[Status.SUCCEEDED] == good
    reader = AIOKafkaConsumer(config.dead_letter_topic, bootstrap_servers=kafka_bootstrap,
                              auto_offset_reset="earliest", group_id=None, max_partition_fetch_bytes=5_000_000)
    await reader.start()
    seen = 0
    reasons: set[str] = set()
    for _ in range(60):
        batches = await reader.getmany(timeout_ms=1000, max_records=5000)
        for messages in batches.values():
            for message in messages:
                seen += 1
                reasons.add(dict(message.headers)["reason"].decode().split(":")[0].split(" ")[0])
        if seen >= total - good:
            break
    await reader.stop()
    assert seen == total - good
    assert reasons >= {"invalid", "an", "message", "unknown"}


@pytest.fixture(scope="module")
def ingest_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real ingest API (with a real embedded log) served by uvicorn in a thread."""
    from contextlib import asynccontextmanager

    import uvicorn
    from fastapi import FastAPI
    from running_emulator import free_port

    from destination.eventlog.sqlite import SqliteEventLog
    from destination.ingest.app import Ingest
    from destination.ingest.keys import WriteKeys

    sources = {"web": load_text("source: web\nwrite_keys: [k]\nactions:\n  - name: a\n    when: type exists\n"
                                "    object: Lead\n    operation: create\n", "w.yaml")}
    log = SqliteEventLog(tmp_path_factory.mktemp("fuzz") / "events.db")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        async with log:
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(Ingest(WriteKeys(sources), log).router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_schemathesis_finds_no_server_errors_in_the_ingest_api(ingest_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{ingest_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: Any) -> None:
            response = case.call(headers={"Authorization": "Basic aw=="})  # the source's key "k"
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.path, case.body, response.text)

        no_server_error()
    assert set(statuses) <= {200, 400, 429} and statuses.get(400) and statuses.get(200), statuses
