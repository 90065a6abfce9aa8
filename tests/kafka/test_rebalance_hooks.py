"""The Kafka consumer calls the interface's rebalance hooks with Partition values: on_assigned when the
group gives it partitions, on_revoked before they go (here: a second member joins the group)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from kafka_broker import creating_topics, kafka_config

from destination.eventlog.base import Partition
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer


async def test_the_group_hands_partitions_to_the_hooks_as_partition_values(kafka_bootstrap: str) -> None:
    config = kafka_config(kafka_bootstrap)
    async with KafkaEventLog(creating_topics(config, 3)):
        pass
    assigned: list[Partition] = []
    revoked: list[Partition] = []
    joined = asyncio.Event()

    async def on_assigned(partitions: Collection[Partition]) -> None:
        assigned.extend(partitions)
        joined.set()

    async def on_revoked(partitions: Collection[Partition]) -> None:
        revoked.extend(partitions)

    first = KafkaLogConsumer(config, {"web"})
    first.on_assigned, first.on_revoked = on_assigned, on_revoked
    second = KafkaLogConsumer(config, {"web"})
    await first.start()
    try:
        async with asyncio.timeout(30):
            while not joined.is_set():
                await first.fetch(10, wait_seconds=0.2)
        assert sorted(assigned) == [Partition(config.topic, n) for n in range(3)]
        await second.start()
        try:
            async with asyncio.timeout(60):
                while not revoked:  # both members poll, so the group can rebalance
                    await asyncio.gather(first.fetch(10, wait_seconds=0.2), second.fetch(10, wait_seconds=0.2))
        finally:
            await second.stop()
    finally:
        await first.stop()
    assert set(revoked) <= {Partition(config.topic, n) for n in range(3)} and revoked
    assert all(isinstance(p, Partition) for p in assigned + revoked)
