"""The event log: one interface, two implementations (Kafka, embedded SQLite). An append returns only once
the events are durable; a consumer reads per partition in order and commits offsets explicitly."""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import orjson

from ..events import Event


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """One ordered partition of the log: a Kafka topic's partition, or a partition of the embedded log (whose
    topic is EMBEDDED_TOPIC). Offsets are per partition; commits and rebalances name partitions."""

    topic: str
    number: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.number}"


EMBEDDED_TOPIC = "embedded"


@dataclass(slots=True)  # not frozen: one is built per record read, and a frozen one's __init__ costs twice as much
class LogRecord:
    """An event as read back: where it sits in the log, and the event (None when it could not be decoded)."""

    partition: Partition
    offset: int
    event: Event | None
    raw: bytes = b""
    problem: str | None = None  # why `event` is None (invalid JSON, unknown source, ...)


_BLAKE2B_8 = hashlib.blake2b(digest_size=8)  # copied per key: cheaper than building a new hash object


def record_identity(partition: Partition, offset: int, appended_ms: int | None = None) -> str:
    """The messageId of an event that arrived without one, from where it sits in the log: a redelivery of
    the record gets the same identity (its outcome row is found again), two records never share one.
    Kafka: `kafka:<topic>:<partition>:<offset>:<record timestamp in ms>` — the timestamp, stored with the
    record, keeps identities apart when a deleted topic is created again and its offsets restart. The
    embedded log's offsets are unique in its file: `eventlog:<partition>:<offset>`."""
    if partition.topic == EMBEDDED_TOPIC:
        return f"eventlog:{partition.number}:{offset}"
    suffix = f":{appended_ms}" if appended_ms is not None and appended_ms >= 0 else ""
    return f"kafka:{partition.topic}:{partition.number}:{offset}{suffix}"


class LogUnavailable(Exception):
    """The event log cannot be reached right now (broker down or unreachable, database locked): nothing was
    stored or committed, try again later. Each log translates its library's failures into this one; any
    other exception is a bug."""


@functools.lru_cache(maxsize=65_536)
def partition_for(key: str, partitions: int) -> int:
    """Stable partition of an ordering key (same key → same partition → same order)."""
    h = _BLAKE2B_8.copy()
    h.update(key.encode())
    return int.from_bytes(h.digest(), "big") % partitions


class EventLog(ABC):
    """Where ingested events are made durable before the 200 goes out."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def append(self, events: Sequence[Event]) -> None:
        """Durably append; returns only when every event is stored (raises otherwise)."""

    async def append_encoded(self, source: str, bodies: Sequence[bytes], keys: Sequence[str]) -> None:
        """`append` for events of one source already serialised (each body its JSON object, as orjson writes
        it, with its ordering key, Event.partition_key): the ingest API's path, which has the bytes from its
        size check. A log that can store the bytes as they are overrides this."""
        await self.append([Event(source, orjson.loads(body)) for body in bodies])

    def readiness(self) -> str | None:
        """Why this log cannot take appends now (None: it can), from the state it keeps as it works — never a
        request to the broker or a write of its own."""
        return None

    async def __aenter__(self) -> EventLog:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


RebalanceHook = Callable[[Collection[Partition]], Awaitable[None]]


class LogConsumer(ABC):
    """Reads the log in order per partition; offsets are committed by the caller, only up to what has
    outcomes recorded.

    Rebalance hooks, set by whoever consumes (the consume loop), called by a log whose partitions move
    between readers (Kafka's consumer group; the embedded log never calls them): `on_assigned` after this
    reader gets partitions, `on_revoked` before partitions go — so their in-flight events can finish and be
    committed while this reader still owns them."""

    on_assigned: RebalanceHook | None = None
    on_revoked: RebalanceHook | None = None

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        """The next records (possibly none after `wait_seconds`)."""

    @abstractmethod
    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit: for each partition, the offset of the next record to read after a restart."""

    def readiness(self) -> str | None:
        """Why this reader is not reading now (None: it is, or is joining its group), from the state it keeps."""
        return None

    async def lag(self) -> dict[Partition, int]:
        """Per partition this reader holds: events in the log after its committed offset (not yet known for a
        partition: left out). Cheap enough to ask every few seconds; no request to the broker."""
        return {}

    async def dead_letter(self, record: LogRecord, reason: str) -> None:
        """Park a record that cannot be processed (a Kafka topic in Kafka mode; the caller's table otherwise)."""
        del record, reason
