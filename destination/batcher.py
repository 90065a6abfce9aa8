"""Batcher: operations grouped by batch key, flushed at a size bound or after a linger; bounded in total,
so a full batcher makes the consumer wait (backpressure).

The size bound counts records, not events: ops aimed at one record (same matcher values) coalesce into
one write, so they share one place of the 200 a collections call holds. A full batch is sent when an op
for one more record arrives (or at the linger), so further events of its records still join it. A batch
also stops at OPS_PER_RECORD times its size in ops, which bounds how much one hot record can hold back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .kinds import Mode
from .operations import RecordOp

Flush = Callable[[list[RecordOp]], Awaitable[None]]
OPS_PER_RECORD = 5


@dataclass
class _Group:
    ops: list[RecordOp] = field(default_factory=list)
    records: set[object] = field(default_factory=set)  # record keys of `ops` (an op's id for creates)
    since: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one batch of a key in flight: keeps record order


class Batcher:
    """Collects RecordOps and calls `flush(batch)` per key; at most one batch per key at a time."""

    def __init__(self, flush: Flush, *, rest_size: int = 200, bulk_size: int = 1000, linger_ms: int = 500,
                 max_pending: int = 10_000) -> None:
        self._flush = flush
        self.rest_size = rest_size
        self.bulk_size = bulk_size
        self.linger = linger_ms / 1000
        self.max_pending = max_pending
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._pending = 0
        self._space = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return self._pending

    def _size(self, op: RecordOp) -> int:
        return self.bulk_size if op.mode is Mode.BULK else self.rest_size

    async def add(self, op: RecordOp) -> None:
        """Queue an operation; waits while the batcher holds `max_pending` operations."""
        if self._pending >= self.max_pending:  # only a full batcher needs the condition (and its lock)
            async with self._space:
                await self._space.wait_for(lambda: self._pending < self.max_pending)
        self._pending += 1
        key = op.batch_key()
        group = self._groups.setdefault(key, _Group())
        record = op.record_key()
        record = id(op) if record is None else record
        size = self._size(op)
        if record not in group.records and len(group.records) >= size:
            self._start(key)  # full: a new record starts the next batch (more events of these may follow)
        if not group.ops:
            group.since = time.monotonic()
        group.ops.append(op)
        group.records.add(record)
        if len(group.ops) >= size * OPS_PER_RECORD:
            self._start(key)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._linger_loop())

    def _start(self, key: tuple[str, ...]) -> None:
        group = self._groups[key]
        if not group.ops:
            return
        batch, group.ops = group.ops, []
        group.records = set()
        group.since = time.monotonic()
        task = asyncio.create_task(self._run(group, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, group: _Group, batch: list[RecordOp]) -> None:
        async with group.lock:
            try:
                await self._flush(batch)
            finally:
                async with self._space:
                    self._pending -= len(batch)
                    self._space.notify_all()

    async def _linger_loop(self) -> None:
        while any(g.ops for g in self._groups.values()):
            now = time.monotonic()
            for key, group in list(self._groups.items()):
                if group.ops and now - group.since >= self.linger:
                    self._start(key)
            await asyncio.sleep(min(self.linger, 0.05) or 0.01)

    async def drain(self) -> None:
        """Flush everything now and wait until every batch is written."""
        for key in list(self._groups):
            while self._groups[key].ops:
                self._start(key)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
