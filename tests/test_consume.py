"""The consume loop when the event log refuses: a failed commit keeps its offsets for the next try, and a
failed fetch does not end the loop (a broker outage is waited out, not fatal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from destination.consume import Consumer
from destination.eventlog.base import LogConsumer, LogRecord, LogUnavailable, Partition

P0 = Partition("events", 0)


class _Flaky(LogConsumer):
    def __init__(self) -> None:
        self.down = True
        self.commits: list[Mapping[Partition, int]] = []
        self.fetches = 0
        self.owner: Consumer | None = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        self.fetches += 1
        if self.fetches == 1:
            raise LogUnavailable("broker down")
        assert self.owner is not None
        self.owner.stop()
        return []

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self.down:
            raise LogUnavailable("broker down")
        self.commits.append(offsets)


def _consumer(source: _Flaky) -> Consumer:
    pipeline: Any = None  # commit and fetch never reach the pipeline here
    consumer = Consumer(source, pipeline)
    source.owner = consumer
    return consumer


async def test_a_refused_commit_keeps_the_offsets_for_the_next_try() -> None:
    source = _Flaky()
    consumer = _consumer(source)
    for offset in range(3):
        consumer.tracker.started(P0, offset)
    consumer.tracker.finished(P0, 0)
    consumer.tracker.finished(P0, 1)
    assert await consumer.commit() is False
    assert consumer.tracker.committable() == {P0: 2}  # not marked committed
    source.down = False
    assert await consumer.commit() is True
    assert source.commits == [{P0: 2}] and consumer.tracker.committable() == {}


async def test_a_failed_fetch_does_not_end_the_loop() -> None:
    source = _Flaky()
    source.down = False
    consumer = _consumer(source)
    await consumer.run()  # returns normally once stop() is called, after the failed fetch
    assert source.fetches == 2
