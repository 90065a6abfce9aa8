"""The consume loop when the event log refuses: a failed commit keeps its offsets for the next try, and a
failed fetch does not end the loop (a broker outage is waited out, not fatal). Its readiness: running, or
why it stopped; a kept failure counts until a later success or for its hold at most."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import pytest

from destination.consume import Consumer
from destination.eventlog.base import LogConsumer, LogRecord, LogUnavailable, Partition
from destination.health import Health

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


class _Broken(_Flaky):
    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        raise RuntimeError("a bug in the reader")


async def test_the_consumer_is_ready_only_while_its_loop_runs_and_says_why_a_dead_loop_stopped() -> None:
    source = _Flaky()
    source.down = False
    consumer = _consumer(source)
    assert consumer.readiness() == "the consume loop is not running"
    broken = _consumer(_Broken())
    with pytest.raises(RuntimeError):
        await broken.run()
    assert broken.readiness() == "the consume loop stopped: RuntimeError: a bug in the reader"


def test_a_failure_counts_until_a_later_success_or_for_the_hold_at_most() -> None:
    health = Health(hold_seconds=0.2)
    assert health.failing() is None
    health.failure("the last append failed: database or disk is full")
    problem = health.failing()
    assert problem is not None and problem.startswith("the last append failed: database or disk is full (")
    health.success()
    assert health.failing() is None
    health.failure("again")
    time.sleep(0.25)
    assert health.failing() is None  # stale: nothing has tried since, so it no longer holds the instance out
    forever = Health(hold_seconds=math.inf)
    forever.failure("the sync log cannot record outcomes")
    time.sleep(0.05)
    assert forever.failing() is not None
