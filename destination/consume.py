"""Consume: read the event log in order, hand each event to the pipeline, and commit a partition's offset
only up to the last event whose outcomes are recorded (data path step 8). Undecodable records are
dead-lettered with a reason and acknowledged, so one poison message never blocks its partition."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Collection

from .acks import OffsetTracker
from .background import in_background
from .eventlog.base import LogConsumer, LogRecord, LogUnavailable, Partition
from .metrics import Metrics
from .pipeline import Pipeline

log = logging.getLogger("destination.consume")


class Consumer:
    """The loop between a LogConsumer and the Pipeline."""

    def __init__(self, source: LogConsumer, pipeline: Pipeline, *, commit_interval: float = 0.5,
                 fetch_size: int = 500, metrics: Metrics | None = None) -> None:
        self.source = source
        self.pipeline = pipeline
        self.metrics = metrics or getattr(pipeline, "metrics", None) or Metrics()  # the pipeline's, when it has one
        self.tracker: OffsetTracker[Partition] = OffsetTracker()
        self.commit_interval = commit_interval
        self.fetch_size = fetch_size
        self._stopping = asyncio.Event()
        self.consumed = 0
        self.revoke_timeout = 30.0
        self.lag_interval = 5.0  # seconds between updates of the consumer-lag gauge
        self.running = False
        self.stopped_by: str | None = None  # why run() ended, when it ended by an exception
        source.on_revoked = self.on_revoked

    async def on_revoked(self, partitions: Collection[Partition]) -> None:
        """A rebalance takes partitions away: finish their in-flight events (bounded), commit, forget them.
        Events still unfinished at the deadline are abandoned; their new owner re-reads them."""
        revoked = list(partitions)
        try:
            await asyncio.wait_for(self._settle(revoked), self.revoke_timeout)
        except TimeoutError:
            log.warning("rebalance: abandoning %d in-flight events of %s", sum(self.tracker.in_flight(p)
                                                                              for p in revoked), revoked)
        await self.commit()
        for partition in revoked:
            self.tracker.forget(partition)

    async def _settle(self, partitions: list[Partition]) -> None:
        await self.pipeline.drain()
        while any(self.tracker.in_flight(p) for p in partitions):  # noqa: ASYNC110 - the tracker is plain state
            await asyncio.sleep(0.05)

    def readiness(self) -> str | None:
        """Why this consumer is not consuming (None: it is, or is joining its group), from kept state."""
        if self.stopped_by is not None:
            return f"the consume loop stopped: {self.stopped_by}"
        if not self.running:
            return "the consume loop is not running"
        return self.source.readiness()

    async def run(self) -> None:
        """Until stop(): fetch, submit, commit what is safe; the lag gauge is updated alongside."""
        self.running = True
        try:
            async with in_background(self._report_lag()):
                await self._run()
        except Exception as exc:
            self.stopped_by = f"{type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            self.running = False

    async def _report_lag(self) -> None:
        """Every `lag_interval`: the lag per partition held, into the metrics (a separate task, so a consume loop
        held by backpressure still reports the lag that builds up)."""
        while True:
            try:
                self.metrics.lag(await self.source.lag())
            except (LogUnavailable, sqlite3.Error) as exc:  # the next interval tries again
                log.debug("consumer lag not known: %r", exc)
            await asyncio.sleep(self.lag_interval)

    async def _run(self) -> None:
        last_commit = time.monotonic()
        while not self._stopping.is_set():
            try:
                records = await self.source.fetch(self.fetch_size, wait_seconds=0.2)
            except LogUnavailable as exc:  # a broker outage is waited out: read again
                log.warning("fetch failed, retrying: %r", exc)
                await asyncio.sleep(1)
                continue
            for record in records:
                await self._submit(record)
            if time.monotonic() - last_commit >= self.commit_interval:
                await self.commit()
                last_commit = time.monotonic()
        await self.commit()

    async def _submit(self, record: LogRecord) -> None:
        self.tracker.started(record.partition, record.offset)
        self.consumed += 1
        if record.event is None:
            await self._poison(record, record.problem or "undecodable record")
            return
        # the tracker's method and its arguments, not a partial of them: a pending event holds less
        await self.pipeline.submit(record.event, self.tracker.finished, done_args=(record.partition, record.offset))

    async def _poison(self, record: LogRecord, reason: str) -> None:
        log.warning("dead-lettering record %s/%s: %s", record.partition, record.offset, reason)
        await self.source.dead_letter(record, reason)
        await self.pipeline.until_stored("dead-letter a poison message", lambda: self.pipeline.sync_log.dead_letter(
            "", reason, record.raw.decode("utf-8", "replace"), error_code="POISON_MESSAGE"))
        self.tracker.finished(record.partition, record.offset)

    async def commit(self) -> bool:
        """Commit what is safe; False when the log refused (a broker outage, a rebalance): the offsets stay
        committable and the next commit tries again, so the loop keeps going instead of dying."""
        offsets = self.tracker.committable()
        if not offsets:
            return True
        try:
            await self.source.commit(offsets)
        except LogUnavailable as exc:  # not committed yet
            log.warning("commit of %d partitions failed, retrying later: %r", len(offsets), exc)
            return False
        self.tracker.committed(offsets)
        return True

    async def drain(self) -> None:
        """Finish what is in flight and commit it."""
        await self.pipeline.drain()
        await self.commit()

    def stop(self) -> None:
        self._stopping.set()
        if self.pipeline is not None:  # a sync-log outage must not hold the shutdown: unrecorded events stay unacked
            self.pipeline.stop_waiting()
