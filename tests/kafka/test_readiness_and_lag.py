"""Against a real broker (tansu): the consumer lag per partition is the high watermark of the last fetch minus
what the group committed, and a consumer-only process's /readyz (on its operator listener) answers 503 while
its broker is down and 200 once it is back — without a request of its own to the broker per probe."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka_broker import Broker, creating_topics, kafka_config
from running_emulator import RunningEmulator, free_port
from settings_support import settings_file

from destination.config import KafkaConfig
from destination.eventlog.base import LogUnavailable, Partition
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer
from destination.events import Event
from destination.metrics import Metrics


def _config(bootstrap: str) -> KafkaConfig:
    return creating_topics(kafka_config(bootstrap, "lag"), partitions=4)


async def test_the_lag_per_partition_is_the_high_watermark_minus_the_committed_offset(kafka_bootstrap: str) -> None:
    config = _config(kafka_bootstrap)
    events = [Event("web", {"type": "identify", "messageId": f"m{i}", "userId": f"u{i}",
                            "traits": {"email": f"u{i}@x.example"}}) for i in range(30)]
    async with KafkaEventLog(config) as log:
        await log.append(events)
    reader = KafkaLogConsumer(config, {"web"})
    await reader.start()
    try:
        first: list[Any] = []
        for _ in range(100):  # one record handed out; the rest wait, read from the broker or not
            first = await reader.fetch(max_records=1, wait_seconds=0.2)
            if first:
                break
        assert len(first) == 1
        lag: dict[Partition, int] = {}
        for _ in range(100):  # every partition's high watermark arrives with a fetch response
            lag = await reader.lag()
            if len(lag) == 4 and sum(lag.values()) == 30:
                break
            await asyncio.sleep(0.05)  # the fetcher runs in the background
        assert sum(lag.values()) == 30 and len(lag) == 4, lag  # nothing committed: every event still to do
        record = first[0]
        await reader.commit({record.partition: record.offset + 1})
        after = await reader.lag()
        assert after[record.partition] == lag[record.partition] - (record.offset + 1)
        assert sum(after.values()) == 30 - (record.offset + 1)
        metrics = Metrics()
        metrics.lag(after)
        text = metrics.render().decode()
        line = f'destination_consumer_lag_events{{partition="{record.partition.number}",topic="{config.topic}"}}'
        assert f"{line} {float(after[record.partition])}" in text
    finally:
        await reader.stop()


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    return r.status_code, r.json()


def _readyz_until(port: int, status: int, seconds: float, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    answer: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        try:
            answer = _readyz(port)
        except httpx.HTTPError:
            answer = (0, {})
        if answer[0] == status:
            return answer[1]
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered {status}; last {answer}; log:\n{log.read_text()[-3000:]}")


def test_a_consumer_only_process_is_not_ready_while_its_broker_is_down_and_ready_once_it_is_back(
        persistent_broker: Broker, tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    name = uuid.uuid4().hex[:8]
    op_port = free_port()
    config = settings_file(tmp_path, tls_emulator, f"""http: {{operator_listen: '127.0.0.1:{op_port}'}}
kafka:
  bootstrap_servers: {persistent_broker.bootstrap}
  topic: ready-{name}
  group_id: g-{name}
  dead_letter_topic: dlq-{name}
  idempotent: false
  create_topics: {{enabled: true, partitions: 2, replication_factor: 1}}
""", event_log="{kind: kafka}")
    log = tmp_path / "consumer.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run",
                                    "--consumer-only"], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        ready = _readyz_until(op_port, 200, 60, log)
        assert set(ready["checks"]) == {"consumer", "sync_log", "salesforce:default"}  # no event log check
        persistent_broker.stop()
        checks = _readyz_until(op_port, 503, 30, log)["checks"]
        assert checks["consumer"]["ok"] is False and "brokers" in checks["consumer"]["problem"], checks
        assert checks["sync_log"] == checks["salesforce:default"] == {"ok": True}
        persistent_broker.start()
        _readyz_until(op_port, 200, 60, log)
    finally:
        process.terminate()
        process.wait(timeout=60)


async def test_the_kafka_event_log_is_not_ready_while_its_broker_is_down_and_ready_once_it_is_back(
        persistent_broker: Broker) -> None:
    config = _config(persistent_broker.bootstrap)
    event = Event("web", {"type": "identify", "messageId": "r1", "userId": "u1"})
    async with KafkaEventLog(config.model_copy(update={"append_timeout_seconds": 1.0})) as log:
        await log.append([event])
        assert log.readiness() is None
        persistent_broker.stop()
        with pytest.raises(LogUnavailable):
            await log.append([event])
        problem = log.readiness()
        assert problem is not None and ("brokers" in problem or "append" in problem), problem
        persistent_broker.start()
        for _ in range(150):  # no append meanwhile, and well inside the 30 s hold: the brokers answering clears it
            if log.readiness() is None:
                break
            await asyncio.sleep(0.1)
        assert log.readiness() is None
        await log.append([event])
