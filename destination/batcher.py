"""Batcher: operations grouped by batch key, flushed at a size bound or after a linger; bounded in total,
so a full batcher makes the consumer wait (backpressure).

The size bound counts records, not events: ops aimed at one record (same matcher values) coalesce into
one write, so they share one place of the 200 a collections call holds. A full batch is sent when an op
for one more record arrives (or at the linger), so further events of its records still join it. A batch
also stops at OPS_PER_RECORD times its size in ops, which bounds how much one hot record can hold back.

Parents before children: a batch whose ops look up parent records (lookups) is written only after the
batches that create or update those parents — pending ones are started first, in-flight ones waited for —
so a child finds a parent that an earlier event of the stream writes. A batch only ever waits for batches
started before it, so waits cannot form a cycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .kinds import Mode
from .operations import DOMAIN_FACT, RecordFact, RecordOp

log = logging.getLogger("destination.batcher")
Flush = Callable[[list[RecordOp]], Awaitable[None]]
OPS_PER_RECORD = 5


@dataclass
class _Group:
    ops: list[RecordOp] = field(default_factory=list)
    records: set[object] = field(default_factory=set)  # record keys of `ops` (an op's id for creates)
    since: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one batch of a key in flight: keeps record order


class _Writes:
    """An in-flight batch as a parent: its object and, computed once when a child asks, what it writes."""

    def __init__(self, batch: list[RecordOp]) -> None:
        self.batch = batch
        self.object = batch[0].object.lower()
        self._facts: set[RecordFact] | None = None

    def facts(self) -> set[RecordFact]:
        if self._facts is None:
            self._facts = {fact for op in self.batch for fact in op.holds()}
        return self._facts


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
        self._writing: dict[asyncio.Task[None], _Writes] = {}  # in-flight batches, for children to wait on
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
        matched = op.record_key()
        record: object = id(op) if matched is None else matched  # a create is a record of its own
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
        parents = self._parents_first(key, batch)
        task = asyncio.create_task(self._run(group, batch, parents))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._writing[task] = _Writes(batch)
        task.add_done_callback(self._writing.pop)

    def _parents_first(self, key: tuple[str, ...], batch: list[RecordOp]) -> list[asyncio.Task[None]]:
        """Start the pending batches that write parents `batch` looks up; the in-flight batches (those just
        started included) that write them, for `batch` to wait for."""
        needs = {fact for op in batch for lookup in op.lookups for fact in lookup.needs()}
        if not needs:
            return []
        objects = {obj for obj, _, _ in needs}
        domains = any(value.startswith(DOMAIN_FACT) for _, _, value in needs)  # domain_of only when asked
        for other, group in list(self._groups.items()):
            if other != key and group.ops and group.ops[0].object.lower() in objects \
                    and any(op.holds(domains) & needs for op in group.ops):
                self._start(other)  # its own parents go first in turn
        return [task for task, writes in self._writing.items()
                if not task.done() and writes.object in objects and writes.facts() & needs]

    async def _run(self, group: _Group, batch: list[RecordOp], parents: list[asyncio.Task[None]]) -> None:
        async with group.lock:  # taken before waiting: later batches of this key stay behind this one
            if parents:
                await asyncio.wait(parents)  # their outcomes are theirs; only the order matters here
            try:
                await self._flush(batch)
            except Exception:  # flush is the error boundary; never let a batch end unnoticed in a task
                log.exception("batch of %d operations ended with an exception its flush did not handle", len(batch))
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
