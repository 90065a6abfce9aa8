"""Batcher: operations grouped by batch key, flushed at a size bound or after a linger; bounded in total,
so a full batcher makes the consumer wait (backpressure).

The size bound counts records, not events: ops aimed at one record (same matcher values) coalesce into
one write, so they share one place of the 200 a collections call holds. A batch also stops at
OPS_PER_RECORD times its size in ops, which bounds how much one hot record can hold back.

The coalescing window: a full batch is not written at once. It is held (up to `window_ms` from its first
op) while the batcher has room, and later events of its records still join it, however far apart they
arrive: two events of one record 50,000 events apart make one write when `max_pending` can hold them.
Held batches are written oldest first when the batcher is nearly full (it keeps room for two batches in
flight, so reading and writing overlap); and, one at a time per key while the key writes nothing, when the
window has passed or no op has arrived for a linger (the stream paused). A batch that is not full is
written after `linger_ms`; a key's older held batches go first, so a record's writes keep event order.
`window_ms` 0 writes every full batch at once.

Parents before children: a batch whose ops look up parent records (lookups) is written only after the
batches that create or update those parents — pending ones are started first, in-flight ones waited for —
so a child finds a parent that an earlier event of the stream writes. A batch only ever waits for batches
started before it, so waits cannot form a cycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from .kinds import Mode
from .operations import DOMAIN_FACT, RecordFact, RecordOp

log = logging.getLogger("destination.batcher")
#: A batch as it is flushed: what `add` was given to hold for each op (the op itself unless told otherwise)
Flush = Callable[[list[Any]], Awaitable[None]]
OPS_PER_RECORD = 5
RecordKey = str | tuple[str, ...]


def _record(op: RecordOp) -> RecordKey | None:
    """The record an op is aimed at, within its batch key (whose matcher shape names the fields): its
    matcher values as RecordOp.record_key compares them — one string for one matcher, kept once per record
    in the window. None for a create."""
    key = op.record_key()
    if key is None:
        return None
    return key[0][1] if len(key) == 1 else tuple(value for _, value in key)


@dataclass(slots=True, eq=False)  # identity: a batch is found and removed as itself
class _Batch:
    """Ops not yet started, and the records they are aimed at (keys; a create counts as a record of its own)."""

    since: float  # when its first op arrived
    ops: list[Any] = field(default_factory=list)  # what add() was given to hold for each op
    records: list[RecordKey] = field(default_factory=list)
    creates: int = 0

    def places(self) -> int:
        return len(self.records) + self.creates


@dataclass
class _Group:
    current: _Batch
    held: deque[_Batch] = field(default_factory=deque)  # full batches in the window, oldest first
    where: dict[RecordKey, _Batch] = field(default_factory=dict)  # record → its newest unstarted batch
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one batch of a key in flight: keeps record order
    started: int = 0  # batches started and not finished (the one writing, and those queued behind it)

    def unstarted(self) -> list[_Batch]:
        """Held batches and the current one, oldest first (the order they must be written in)."""
        return [*self.held, self.current] if self.current.ops else list(self.held)


class _Writes:
    """An in-flight batch as a parent: its object and, computed once when a child asks, what it writes (only
    asked of an object a lookup reads, whose ops are held as themselves)."""

    def __init__(self, object_name: str, batch: list[Any]) -> None:
        self.batch = batch
        self.object = object_name
        self._facts: set[RecordFact] | None = None

    def facts(self) -> set[RecordFact]:
        if self._facts is None:
            self._facts = {fact for op in cast(list[RecordOp], self.batch) for fact in op.holds()}
        return self._facts


class Batcher:
    """Collects RecordOps and calls `flush(batch)` per key; at most one batch per key at a time."""

    def __init__(self, flush: Flush, *, rest_size: int = 200, bulk_size: int = 1000, linger_ms: int = 500,
                 max_pending: int = 10_000, window_ms: int = 0) -> None:
        self._flush = flush
        self.rest_size = rest_size
        self.bulk_size = bulk_size
        self.linger = linger_ms / 1000
        self.window = window_ms / 1000
        self.max_pending = max_pending
        # held ops are written before the batcher is full, so two batches can be in flight while it reads on
        self._hold_at_most = max(max_pending - 2 * rest_size, max_pending // 2)
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._pending = 0
        self._started = 0  # of `_pending`: ops in batches started and not yet finished
        self._held: deque[tuple[tuple[str, ...], _Batch]] = deque()  # every held batch, oldest first
        self._last_add = 0.0
        self._waiting = 0  # adds waiting for room
        self._space = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing: dict[asyncio.Task[None], _Writes] = {}  # in-flight batches, for children to wait on
        self._timer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._pending

    def _size(self, op: RecordOp) -> int:
        return self.bulk_size if op.mode is Mode.BULK else self.rest_size

    async def add(self, op: RecordOp, held: Any = None) -> None:
        """Queue an operation; waits while the batcher holds `max_pending` operations. `held`: what to keep
        for it until its batch is flushed, when not the op itself (a compact form its flush expands again);
        an op of an object that a lookup reads must be held as itself (parents-first reads its values)."""
        if self._pending >= self.max_pending:  # only a full batcher needs the condition (and its lock)
            self._relieve(self.max_pending - 1)
            self._waiting += 1  # a full batcher is no paused stream: held batches stay in the window
            try:
                async with self._space:
                    await self._space.wait_for(lambda: self._pending < self.max_pending)
            finally:
                self._waiting -= 1
        self._pending += 1
        self._last_add = now = time.monotonic()
        key = op.batch_key()
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(_Batch(now))
        size = self._size(op)
        record = _record(op)
        target = group.where.get(record) if record is not None else None
        if target is not None and len(target.ops) < size * OPS_PER_RECORD:
            batch = target  # a later event of a record still waiting: it joins that record's write
            batch.ops.append(op if held is None else held)
        else:
            batch = group.current
            if batch.places() >= size:
                batch = self._hold(key, group, now)  # full: a new record starts the next batch
            if not batch.ops:
                batch.since = now
            batch.ops.append(op if held is None else held)
            if record is None:
                batch.creates += 1
            else:
                batch.records.append(record)
                group.where[record] = batch
        if batch is group.current and len(batch.ops) >= size * OPS_PER_RECORD:
            self._hold(key, group, now)
        if self._held and (self.window <= 0 or self._pending - self._started > self._hold_at_most):
            self._relieve(self._hold_at_most)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._linger_loop())

    def _hold(self, key: tuple[str, ...], group: _Group, now: float) -> _Batch:
        """The group's current batch is full: held in the window; a new current batch takes its place."""
        group.held.append(group.current)
        self._held.append((key, group.current))
        group.current = _Batch(now)
        return group.current

    def _relieve(self, limit: int) -> None:
        """Start held batches, oldest first, until at most `limit` ops wait unstarted (all of them, without a
        window)."""
        while self._held and (self.window <= 0 or self._pending - self._started > limit):
            key, batch = self._held[0]
            self._start_through(key, batch)

    def _start_through(self, key: tuple[str, ...], last: _Batch) -> None:
        """Start the group's unstarted batches, oldest first, through `last`."""
        group = self._groups[key]
        for batch in group.unstarted():
            self._start(key, group, batch)
            if batch is last:
                return

    def _start(self, key: tuple[str, ...], group: _Group, batch: _Batch) -> None:
        if batch is group.current:
            group.current = _Batch(time.monotonic())
        else:
            group.held.remove(batch)
            self._held.remove((key, batch))
        for record in batch.records:
            if group.where.get(record) is batch:
                del group.where[record]
        ops = batch.ops
        if not ops:
            return
        self._started += len(ops)
        group.started += 1
        parents = self._parents_first(key, ops)
        task = asyncio.create_task(self._run(key, group, ops, parents))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._writing[task] = _Writes(key[1], ops)
        task.add_done_callback(self._writing.pop)

    def _parents_first(self, key: tuple[str, ...], batch: list[Any]) -> list[asyncio.Task[None]]:
        """Start the pending batches that write parents `batch` looks up; the in-flight batches (those just
        started included) that write them, for `batch` to wait for. Only ops held as themselves can look
        up parents or be one (see add)."""
        needs = {fact for op in batch if isinstance(op, RecordOp) for lookup in op.lookups
                 for fact in lookup.needs()}
        if not needs:
            return []
        objects = {obj for obj, _, _ in needs}
        domains = any(value.startswith(DOMAIN_FACT) for _, _, value in needs)  # domain_of only when asked
        for other, group in list(self._groups.items()):
            if other == key:
                continue
            waiting = group.unstarted()
            if not waiting or other[1] not in objects:  # the key's object, in lower case
                continue
            parent = next((b for b in reversed(waiting) if any(op.holds(domains) & needs for op in b.ops)), None)
            if parent is not None:
                self._start_through(other, parent)  # its own parents go first in turn
        return [task for task, writes in self._writing.items()
                if not task.done() and writes.object in objects and writes.facts() & needs]

    async def _run(self, key: tuple[str, ...], group: _Group, batch: list[Any],
                   parents: list[asyncio.Task[None]]) -> None:
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
                    self._started -= len(batch)
                    group.started -= 1
                    self._space.notify_all()
        self._start_due(key, group, time.monotonic())  # its next batch, when one is due, without a tick's wait

    def _start_due(self, key: tuple[str, ...], group: _Group, now: float) -> None:
        """Start the group's oldest unstarted batch when one is due: the stream paused for a linger (not held
        back by this batcher: nothing more to wait for), the oldest held batch's window has passed, or the
        current one has lingered. One at a time, and only while the key writes nothing: a due batch would
        wait behind that write anyway, and until it starts, later events of its records still join it (a
        pause that was only a blip costs one batch's coalescing, not the window's)."""
        if group.started:
            return
        waiting = group.unstarted()
        if not waiting:
            return
        idle = not self._waiting and now - self._last_add >= self.linger
        held = group.held[0] if group.held else None
        if idle or (held is not None and now - held.since >= self.window) or \
                (group.current.ops and now - group.current.since >= self.linger):
            self._start(key, group, waiting[0])

    async def _linger_loop(self) -> None:
        while any(g.current.ops or g.held for g in self._groups.values()):
            now = time.monotonic()
            for key, group in list(self._groups.items()):
                self._start_due(key, group, now)
            await asyncio.sleep(min(self.linger, 0.05) or 0.01)

    async def drain(self) -> None:
        """Flush everything now and wait until every batch is written."""
        for key, group in list(self._groups.items()):
            while group.current.ops or group.held:
                self._start_through(key, group.current if group.current.ops else group.held[-1])
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
