"""Embedded event log: one SQLite file in WAL mode, synchronous=FULL, with group commit — concurrent
appends share one transaction, so many small requests cost one fsync."""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from ..events import Event
from ..health import Health
from ..sqlite_rows import connect, insert_rows
from .base import (
    EMBEDDED_TOPIC,
    EventLog,
    LogConsumer,
    LogRecord,
    LogUnavailable,
    Partition,
    partition_for,
    record_identity,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    partition INTEGER NOT NULL,
    source TEXT NOT NULL,
    body TEXT NOT NULL,
    appended_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_partition ON events (partition, offset);
CREATE TABLE IF NOT EXISTS commits (
    consumer TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (consumer, partition)
);
"""


# free pages handed back to the file system after a pruned chunk (8 MB of 4 KB pages); run with
# executescript: sqlite3's execute() steps a PRAGMA once, and each step frees one page
_VACUUM = "PRAGMA incremental_vacuum(2048)"
_INSERT = "INSERT INTO events (partition, source, body, appended_at) VALUES "
_COLUMNS = 4


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    return _INSERT + ",".join(["(?,?,?,?)"] * rows)


def _connect(path: Path) -> sqlite3.Connection:
    db = connect(path, timeout=30)
    db.executescript(_SCHEMA)
    return db


class SqliteEventLog(EventLog):
    """Appends with group commit; the partition comes from the event's ordering key."""

    def __init__(self, path: Path, partitions: int = 8, max_group: int = 20_000) -> None:
        self.path = path
        self.partitions = partitions
        self.max_group = max_group
        self._db: sqlite3.Connection | None = None
        # each append: its rows as one flat parameter list (partition, source, body, appended_at, ...)
        self._queue: asyncio.Queue[tuple[list[int | str | float], asyncio.Future[None]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._largest_chunk = 1
        self.appends = Health()

    async def open(self) -> None:
        self._db = await asyncio.to_thread(_connect, self.path)
        variables = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._largest_chunk = 1 << min(8, (variables // _COLUMNS).bit_length() - 1)  # ≤ 256 rows a statement
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass

        def work() -> None:  # once no insert is running in a worker thread
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None
        await asyncio.to_thread(work)

    @property
    def backlog(self) -> int:
        """Appends waiting for the next group commit (for overload answers)."""
        return self._queue.qsize() if self._queue is not None else 0

    async def append(self, events: Sequence[Event]) -> None:
        now = time.time()
        partitions = self.partitions
        params: list[int | str | float] = []
        for e in events:
            params += (partition_for(e.partition_key, partitions), e.source, orjson.dumps(e.body).decode(), now)
        await self._stored(params)

    async def append_encoded(self, source: str, bodies: Sequence[bytes], keys: Sequence[str]) -> None:
        if len(bodies) != len(keys):
            raise ValueError("one ordering key per body")
        # the rows, flat, built by iterators in C (a Python loop over the events cost about twice as much)
        rows = zip(map(partition_for, keys, itertools.repeat(self.partitions)), itertools.repeat(source),
                   map(bytes.decode, bodies), itertools.repeat(time.time()))
        await self._stored(list(itertools.chain.from_iterable(rows)))

    async def _stored(self, params: list[int | str | float]) -> None:
        """Queue rows (flat) for the next group commit; returns once they are committed."""
        assert self._queue is not None, "open() first"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((params, done))
        await done

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            group = [first]
            params = list(first[0])
            limit = self.max_group * _COLUMNS
            while not self._queue.empty() and len(params) < limit:
                item = self._queue.get_nowait()
                group.append(item)
                params += item[0]
            try:
                await asyncio.to_thread(self._insert, params)
            except sqlite3.Error as exc:  # locked past the timeout, disk full, I/O error: nothing was stored
                self.appends.failure(f"the last append failed: {exc}")
                for _, done in group:
                    if not done.done():
                        done.set_exception(LogUnavailable(f"the event log could not store the events: {exc}"))
                continue
            self.appends.success()
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    def readiness(self) -> str | None:
        if self._db is None or self._writer is None:
            return "the embedded event log is not open"
        if self._writer.done():
            return "the embedded event log's writer stopped"
        return self.appends.failing()

    def _insert(self, params: list[int | str | float]) -> None:
        """One transaction for the group, in multi-row INSERTs: executemany would step (and so release and
        re-take the GIL) once per row, and each re-take can wait for the event loop's switch interval."""
        with self._lock:
            if self._db is None:
                raise sqlite3.OperationalError("the event log is closed")
            insert_rows(self._db, _insert_sql, params, _COLUMNS, self._largest_chunk)

    async def prune(self, before: float, *, limit: int) -> int:
        """Retention: delete events appended before `before` (epoch seconds) that every consumer has committed
        (so each has its outcomes recorded), at most `limit` per partition and chunk, each chunk a short
        transaction between appends. Returns how many went. Offsets are never reused (AUTOINCREMENT), so
        identities made from them stay unique."""
        bounds = await asyncio.to_thread(self._committed_bounds)
        pruned = 0
        for partition, bound in sorted(bounds.items()):
            while True:
                deleted = await asyncio.to_thread(self._prune_chunk, partition, bound, before, limit)
                pruned += deleted
                if deleted < limit:
                    break
        return pruned

    def _committed_bounds(self) -> dict[int, int]:
        """Partition → the offset below which every consumer that ever committed has committed (a consumer
        without a commit for a partition holds all of it)."""
        with self._lock:
            if self._db is None:
                return {}
            rows = self._db.execute("SELECT consumer, partition, next_offset FROM commits").fetchall()
        by_consumer: dict[str, dict[int, int]] = {}
        for consumer, partition, next_offset in rows:
            by_consumer.setdefault(consumer, {})[partition] = next_offset
        partitions = {partition for _, partition, _ in rows}
        return {p: min(c.get(p, 0) for c in by_consumer.values()) for p in partitions}

    def _prune_chunk(self, partition: int, bound: int, before: float, limit: int) -> int:
        """The oldest committed events of a partition up to the first one appended at or after `before` (in
        offset order, which is append order), deleted as one offset range."""
        with self._lock:
            if self._db is None:
                return 0
            rows = self._db.execute("SELECT offset, appended_at FROM events WHERE partition = ? AND offset < ? "
                                    "ORDER BY offset LIMIT ?", (partition, bound, limit)).fetchall()
            old = list(itertools.takewhile(lambda row: row[1] < before, rows))
            if not old:
                return 0
            deleted = self._db.execute("DELETE FROM events WHERE partition = ? AND offset BETWEEN ? AND ?",
                                       (partition, old[0][0], old[-1][0])).rowcount
            self._db.executescript(_VACUUM)
            return int(deleted)


class SqliteLogConsumer(LogConsumer):
    """Reads from the committed positions; one consumer name = one independent reader."""

    def __init__(self, path: Path, consumer: str = "destination", partitions: int = 8) -> None:
        self.path = path
        self.consumer = consumer
        self.partitions = partitions
        self.fetches = Health()
        self._db: sqlite3.Connection | None = None
        self._position: int = 0  # highest offset handed out so far
        self._commits: dict[int, int] = {}  # partition → next offset, as stored (read once at start)
        # reads and commits run in worker threads: stop() closes the connection only between them (closing a
        # connection another thread is using can crash the process)
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._db = await asyncio.to_thread(_connect, self.path)
        self._commits = self._committed()
        committed = self._commits
        partitions = [p for (p,) in self._db.execute("SELECT DISTINCT partition FROM events")]
        # resume from the least advanced partition; records below a partition's own commit are skipped
        self._position = min((committed.get(p, 0) for p in partitions), default=1) - 1

    def _committed(self) -> dict[int, int]:
        assert self._db is not None
        return {p: o for p, o in self._db.execute("SELECT partition, next_offset FROM commits WHERE consumer = ?",
                                                  (self.consumer,))}

    async def stop(self) -> None:
        def work() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None
        await asyncio.to_thread(work)

    def readiness(self) -> str | None:
        if self._db is None:
            return "the embedded event log consumer is stopped"
        return self.fetches.failing()

    async def lag(self) -> dict[Partition, int]:
        return {Partition(EMBEDDED_TOPIC, p): n for p, n in (await asyncio.to_thread(self._lag)).items()}

    def _lag(self) -> dict[int, int]:
        """Events at or after each partition's committed offset (offsets are unique across partitions, so a
        count, not a difference): an index range scan per partition, as long as the lag."""
        with self._lock:
            if self._db is None:
                return {}
            partitions = set(range(self.partitions)) | set(self._commits)
            return {p: self._db.execute("SELECT COUNT(*) FROM events WHERE partition = ? AND offset >= ?",
                                        (p, self._commits.get(p, 0))).fetchone()[0] for p in sorted(partitions)}

    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                records = await asyncio.to_thread(self._read, max_records)
            except sqlite3.OperationalError as exc:
                self.fetches.failure(f"the last read failed: {exc}")
                raise LogUnavailable(f"fetch failed: {exc}") from exc
            self.fetches.success()
            if records or time.monotonic() >= deadline:
                return records
            await asyncio.sleep(min(0.02, max(deadline - time.monotonic(), 0)))

    def _read(self, max_records: int) -> list[LogRecord]:
        with self._lock:
            if self._db is None:  # stopped while this read was on its way
                return []
            rows = self._db.execute("SELECT offset, partition, source, body FROM events WHERE offset > ? ORDER BY offset "
                                    "LIMIT ?", (self._position, max_records)).fetchall()
        committed = self._commits
        out = []
        for offset, number, source, body in rows:
            self._position = offset
            if offset < committed.get(number, 0):
                continue
            partition = Partition(EMBEDDED_TOPIC, number)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                out.append(LogRecord(partition, offset, None, body.encode(), f"invalid JSON: {exc}"))
                continue
            if isinstance(data, dict) and not data.get("messageId"):  # the ingest API always sets one
                data["messageId"] = record_identity(partition, offset)
            out.append(LogRecord(partition, offset, Event(source, data), b""))
        return out

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        if not offsets:
            return
        try:
            await asyncio.to_thread(self._commit, {p.number: o for p, o in offsets.items()})
        except sqlite3.OperationalError as exc:
            raise LogUnavailable(f"commit failed: {exc}") from exc

    def _commit(self, offsets: dict[int, int]) -> None:
        with self._lock:
            if self._db is None:
                raise sqlite3.OperationalError("the event log consumer is stopped")
            self._commit_locked(self._db, offsets)

    def _commit_locked(self, db: sqlite3.Connection, offsets: dict[int, int]) -> None:
        db.executemany("INSERT INTO commits (consumer, partition, next_offset) VALUES (?, ?, ?) "
                             "ON CONFLICT(consumer, partition) DO UPDATE SET next_offset = "
                             "MAX(next_offset, excluded.next_offset)",
                             [(self.consumer, p, o) for p, o in offsets.items()])
        for partition, offset in offsets.items():
            self._commits[partition] = max(offset, self._commits.get(partition, 0))
