"""The ingest path's cheaper forms keep the old answers: the messageId window, the embedded log's multi-row
group commit (order, every group size), the 200 body, and the Kafka partition of a key (aiokafka's)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import httpx
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from ingest_support import IngestServer

from destination.eventlog.kafka_partition import murmur2, partition_of
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.ingest.dedup import RecentMessages
from destination.sqlite_rows import statement_sizes


def test_recent_messages_window_repeats_and_forget() -> None:
    recent = RecentMessages(window_seconds=0.2, max_entries=5)
    assert recent.first_times("web", ["a", "b", "a"]) == [True, True, False]  # a repeat inside one request
    assert not recent.first_time("web", "a") and recent.first_time("app", "a")  # per source
    assert recent.first_time("web", 7) and not recent.first_time("web", 7)  # a non-string messageId
    recent.forget("web", "a")
    assert recent.first_time("web", "a")
    for i in range(10):
        recent.first_time("web", f"x{i}")
    recent.first_time("web", "y")
    assert len(recent._seen) <= 6  # max_entries (+ the one just added)
    time.sleep(0.25)
    assert recent.first_time("web", "x9")  # out of the window: a first time again
    assert len(recent._seen) == 1


def test_statement_sizes_cover_every_group() -> None:
    for rows in (*range(0, 600), 1637, 20_000):
        sizes = statement_sizes(rows, 256)
        assert sum(sizes) == rows and all(s & (s - 1) == 0 and s <= 256 for s in sizes)
    assert len({s for rows in range(2000) for s in statement_sizes(rows, 256)}) == 9  # 9 statement shapes


async def test_group_commit_keeps_order_across_concurrent_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    sizes = [1, 100, 3, 257, 0, 512, 31]
    async with SqliteEventLog(path) as log:
        await asyncio.gather(*(log.append([Event("web", {"userId": f"u{n}-{i}", "n": n, "i": i}) for i in range(size)])
                               for n, size in enumerate(sizes)))
    consumer = SqliteLogConsumer(path, consumer="check")
    await consumer.start()
    records = await consumer.fetch(10_000, wait_seconds=0.05)
    await consumer.stop()
    bodies = [r.event.body for r in records if r.event]
    assert len(bodies) == sum(sizes)
    for n, size in enumerate(sizes):  # each append's events all there, in order
        mine = [b["i"] for b in bodies if b["n"] == n]
        assert mine == list(range(size))


async def test_the_200_is_the_segment_answer(ingest: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/track", json={"userId": "u1", "event": "e"}, auth=("web-key", ""))
    assert r.status_code == 200 and r.json() == {"success": True}
    assert r.headers["content-type"] == "application/json" and r.headers["content-length"] == str(len(r.content))


def test_kafka_partition_is_aiokafkas() -> None:
    rng = random.Random(7)
    for length in range(64):
        for _ in range(50):
            data = os.urandom(length)
            assert murmur2(data) == aiokafka_murmur2(data)
    partitions = list(range(8))
    for _ in range(2000):
        key = os.urandom(rng.randint(1, 40))
        count = rng.randint(1, 8)
        assert partition_of(key, partitions[:count]) == DefaultPartitioner()(key, partitions[:count], partitions[:count])
