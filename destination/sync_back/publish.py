"""Where published changes go: a Kafka topic (through the event log's producer: acks=all, keyed like
ingested events) and/or a Segment-compatible HTTP endpoint (the batch API, the write key as Basic auth).
`publish` returns only once every destination acknowledged; it raises otherwise (the runner then keeps its
watermark and tries again at the next interval)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from ..actions.sync_back_model import HttpPublish, SyncBack
from ..config import KafkaConfig
from ..events import Event


class Publisher(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None: ...


class KafkaPublisher:
    """Appends to a topic with the event log's Kafka producer (the settings' brokers and security)."""

    def __init__(self, kafka: KafkaConfig, topic: str) -> None:
        from ..eventlog.kafka import KafkaEventLog

        self.log = KafkaEventLog(kafka.model_copy(update={"topic": topic}))

    async def open(self) -> None:
        await self.log.open()

    async def close(self) -> None:
        await self.log.close()

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            await self.log.append(events)


class HttpPublisher:
    """POSTs `{"batch": [...]}` to a Segment-compatible endpoint; anything but 2xx is a failure."""

    def __init__(self, config: HttpPublish, *, timeout: float = 10.0) -> None:
        self.config = config
        self.http = httpx.AsyncClient(timeout=timeout, auth=(config.write_key, ""))

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        await self.http.aclose()

    async def publish(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), 100):
            batch = [dict(e.body) for e in events[start:start + 100]]
            response = await self.http.post(self.config.url, json={"batch": batch})
            response.raise_for_status()


class FanOut:
    """Every configured destination; a change counts as published once all of them took it."""

    def __init__(self, publishers: Sequence[Publisher]) -> None:
        self.publishers = list(publishers)

    async def open(self) -> None:
        for p in self.publishers:
            await p.open()

    async def close(self) -> None:
        for p in self.publishers:
            await p.close()

    async def publish(self, events: Sequence[Event]) -> None:
        for p in self.publishers:
            await p.publish(events)


def publisher_for(config: SyncBack, kafka: KafkaConfig | None) -> FanOut:
    """The publishers a source's `sync_back` names (`kafka`: the settings' brokers, for `kafka_topic`)."""
    out: list[Publisher] = []
    if config.kafka_topic:
        if kafka is None:
            raise ValueError("sync_back.kafka_topic needs Kafka brokers in the settings (kafka:)")
        out.append(KafkaPublisher(kafka, config.kafka_topic))
    if config.http is not None:
        out.append(HttpPublisher(config.http))
    return FanOut(out)
