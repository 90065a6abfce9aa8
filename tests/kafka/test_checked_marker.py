"""The consumer checks an event's Segment shape once: records our ingest appended carry the `destination-checked`
header (ingest checked them before the append), records without receivedAt are checked as they are normalised
on read; only those two skip routing's check. A record of another producer that has receivedAt is still
checked when routed, so a malformed one ends as a failed INVALID_EVENT outcome, never an exception."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka_broker import LEADS_BY_EMAIL, consume_until, creating_topics, kafka_config

from destination.deliver import Delivery
from destination.eventlog.kafka import CHECKED_HEADER, KafkaEventLog, KafkaLogConsumer
from destination.outcomes import Status
from destination.synclog import open_sync_log

RECEIVED = "2026-01-01T00:00:00.000Z"
OURS = {"type": "identify", "userId": "u1", "messageId": "ours", "receivedAt": RECEIVED, "timestamp": RECEIVED,
        "traits": {"email": "ours@x.example"}}
FOREIGN_GOOD = {"type": "identify", "userId": "u2", "messageId": "foreign-good", "receivedAt": RECEIVED,
                "traits": {"email": "good@x.example"}}
FOREIGN_BAD = {"type": "identify", "userId": "u3", "messageId": "foreign-bad", "receivedAt": RECEIVED,
               "traits": ["not", "an", "object"]}  # receivedAt set: normalise_logged lets it through unchecked
FOREIGN_RAW = {"type": "identify", "userId": "u4", "messageId": "foreign-raw", "traits": {"email": "raw@x.example"}}


async def _fill(config: Any) -> None:
    async with KafkaEventLog(creating_topics(config, 1)) as log:
        await log.append_encoded("web", [json.dumps(OURS).encode()], ["u1"])
    producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap_servers)
    await producer.start()
    try:
        for body in (FOREIGN_GOOD, FOREIGN_BAD, FOREIGN_RAW):
            await producer.send_and_wait(config.topic, json.dumps(body).encode(), key=body["userId"].encode(),
                                         headers=[("source", b"web")])
    finally:
        await producer.stop()


async def test_only_records_of_our_ingest_or_normalised_on_read_are_marked_checked(kafka_bootstrap: str) -> None:
    config = kafka_config(kafka_bootstrap)
    await _fill(config)
    raw = AIOKafkaConsumer(config.topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                           auto_offset_reset="earliest")
    await raw.start()
    try:
        messages = [m for ms in (await raw.getmany(timeout_ms=5000)).values() for m in ms]
    finally:
        await raw.stop()
    headers = {json.loads(m.value)["messageId"]: dict(m.headers) for m in messages}
    assert headers["ours"].get(CHECKED_HEADER) == b"1"
    assert all(CHECKED_HEADER not in h for m, h in headers.items() if m != "ours")
    reader = KafkaLogConsumer(config, {"web"})
    await reader.start()
    records = []
    try:
        deadline = time.monotonic() + 20
        while len(records) < 4 and time.monotonic() < deadline:
            records += await reader.fetch(100, wait_seconds=0.5)
    finally:
        await reader.stop()
    checked = {r.event.message_id: r.checked for r in records if r.event is not None}
    assert checked == {"ours": True, "foreign-good": False, "foreign-bad": False, "foreign-raw": True}


async def test_a_malformed_event_of_another_producer_with_received_at_fails_invalid_event(
        kafka_bootstrap: str, delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    config = kafka_config(kafka_bootstrap)
    await _fill(config)
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        consumer = await consume_until(config, {"web": LEADS_BY_EMAIL}, delivery, sync_log, 4)
        rows = {r.message_id: r for r in await sync_log.rows(limit=10)}
    assert consumer.consumed == 4 and consumer.tracker.in_flight() == 0
    assert rows["foreign-bad"].status is Status.FAILED and rows["foreign-bad"].error_code == "INVALID_EVENT"
    assert "traits" in (rows["foreign-bad"].message or "")
    assert all(rows[m].status is Status.SUCCEEDED for m in ("ours", "foreign-good", "foreign-raw"))
