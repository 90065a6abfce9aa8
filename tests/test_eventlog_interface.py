"""The event-log consumer interface: records name a real partition (topic and number), rebalance hooks are
part of the interface (the consume loop installs its revoke handler on any log), events without a
messageId get one from their place in the log, and the shared enums live outside the YAML model."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from destination import kinds
from destination.actions import model
from destination.consume import Consumer
from destination.eventlog.base import EMBEDDED_TOPIC, LogConsumer, LogRecord, Partition, record_identity
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.ingest.segment import BadRequest, normalise_logged


class _Reader(LogConsumer):
    """A log whose partitions a test moves (as a Kafka group rebalance would)."""

    def __init__(self) -> None:
        self.commits: list[dict[Partition, int]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        return []

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        self.commits.append(dict(offsets))

    async def rebalance(self, revoked: Collection[Partition]) -> None:
        assert self.on_revoked is not None
        await self.on_revoked(revoked)


class _Drained:
    async def drain(self) -> None: ...


def test_partitions_are_values_named_by_topic_and_number() -> None:
    a, again, other = Partition("events", 3), Partition("events", 3), Partition("orders", 3)
    assert a == again and hash(a) == hash(again) and a != other
    assert str(a) == "events/3"
    assert sorted([Partition("b", 0), Partition("a", 2), Partition("a", 1)])[0] == Partition("a", 1)


def test_a_log_without_rebalances_has_no_hooks_and_the_consume_loop_installs_its_revoke_handler() -> None:
    reader = _Reader()
    assert reader.on_assigned is None and reader.on_revoked is None
    consumer = Consumer(reader, _Drained())  # type: ignore[arg-type]  # revocation only drains the pipeline
    assert reader.on_revoked == consumer.on_revoked


async def test_a_revoked_partition_is_committed_and_forgotten_through_the_interface_hook() -> None:
    reader = _Reader()
    consumer = Consumer(reader, _Drained())  # type: ignore[arg-type]
    kept, revoked = Partition("events", 0), Partition("events", 1)
    for partition in (kept, revoked):
        consumer.tracker.started(partition, 10)
        consumer.tracker.finished(partition, 10)
    await reader.rebalance([revoked])
    assert reader.commits == [{kept: 11, revoked: 11}]
    consumer.tracker.started(kept, 11)
    assert consumer.tracker.in_flight(revoked) == 0 and consumer.tracker.in_flight(kept) == 1


def test_identities_name_the_record_and_differ_for_every_record() -> None:
    assert record_identity(Partition("events", 2), 41, 1_764_658_000_123) == "kafka:events:2:41:1764658000123"
    assert record_identity(Partition("events", 2), 41) == "kafka:events:2:41"
    assert record_identity(Partition(EMBEDDED_TOPIC, 5), 9) == "eventlog:5:9"
    seen = {record_identity(Partition(t, p), o, 7) for t in ("a", "b") for p in range(3) for o in range(5)}
    assert len(seen) == 30


def test_a_produced_event_is_normalised_like_an_api_call() -> None:
    appended = int(datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    body = normalise_logged({"type": "identify", "userId": "u1", "traits": {"email": "a@x.example"}},
                            "kafka:events:0:7:1", appended)
    assert body["messageId"] == "kafka:events:0:7:1"
    assert body["receivedAt"] == body["timestamp"] == "2026-03-01T12:00:00.000Z"
    own = normalise_logged({"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2020-01-01T00:00:00Z"},
                           "kafka:events:0:8:1", appended)
    assert own["messageId"] == "m1" and own["timestamp"] == "2020-01-01T00:00:00.000Z"


def test_an_event_our_ingest_normalised_is_left_as_it_is() -> None:
    ingested = {"type": "track", "event": "E", "userId": "u", "messageId": "ajs-1", "receivedAt": "2026-01-01T00:00:00Z",
                "timestamp": "2025-12-31T23:59:58.000Z", "originalTimestamp": "2026-01-01T00:00:05Z",
                "sentAt": "2026-01-01T00:00:07Z"}
    assert normalise_logged(ingested, "kafka:e:0:1", 1_764_658_000_123) is ingested


@pytest.mark.parametrize(("body", "code"), [({"type": "identify"}, "missing_id"), ({"type": "nope", "userId": "u"},
                                            "invalid_type"), ({"type": "group", "userId": "u"}, "missing_group")])
def test_a_produced_event_the_api_would_refuse_is_refused(body: dict[str, Any], code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalise_logged(body, "kafka:e:0:1", None)
    assert refused.value.code == code


async def test_the_embedded_log_gives_an_event_without_message_id_its_position(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SqliteEventLog(path, partitions=4) as log:
        await log.append([Event("web", {"type": "identify", "userId": f"u{i}"}) for i in range(3)])
    reader = SqliteLogConsumer(path, consumer="check")
    await reader.start()
    try:
        records = await reader.fetch(10, wait_seconds=0.1)
        again = SqliteLogConsumer(path, consumer="again")  # a second reader sees the same identities
        await again.start()
        reread = await again.fetch(10, wait_seconds=0.1)
        await again.stop()
    finally:
        await reader.stop()
    assert all(isinstance(r.partition, Partition) and r.partition.topic == EMBEDDED_TOPIC for r in records)
    ids = [r.event.message_id for r in records if r.event is not None]
    assert ids == [f"eventlog:{r.partition.number}:{r.offset}" for r in records]
    assert [r.event.message_id for r in reread if r.event is not None] == ids


def test_the_shared_enums_live_in_kinds_and_the_model_reexports_them() -> None:
    for name in ("Operation", "Mode", "Policy", "Compare", "OnManyMatches", "Transform"):
        assert getattr(model, name) is getattr(kinds, name)
        assert getattr(kinds, name).__module__ == "destination.kinds"


async def test_the_consume_loop_waits_for_a_revoked_partitions_in_flight_events() -> None:
    reader = _Reader()
    consumer = Consumer(reader, _Drained())  # type: ignore[arg-type]
    partition = Partition("events", 0)
    consumer.tracker.started(partition, 0)

    async def finish_later() -> None:
        await asyncio.sleep(0.1)
        consumer.tracker.finished(partition, 0)

    finisher = asyncio.create_task(finish_later())
    await reader.rebalance([partition])
    await finisher
    assert reader.commits == [{partition: 1}], "committed after the in-flight event finished, before the revoke"
