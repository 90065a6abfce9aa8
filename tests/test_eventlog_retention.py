"""Retention of the embedded event log: only events every consumer has committed (their outcomes are
recorded) and older than the age are deleted; a consumer resumes where it was; the file gives the space
back and offsets are never reused. Ages are set by writing explicit append times (no sleeping)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from destination.config import RetentionConfig
from destination.eventlog.base import EMBEDDED_TOPIC, LogRecord, Partition
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.metrics import Metrics
from destination.retention import Pruned, Retention
from destination.synclog import open_sync_log

DAY = 86_400.0


def _events(n: int, start: int = 0, body_bytes: int = 0) -> list[Event]:
    return [Event("web", {"type": "identify", "messageId": f"m-{i}", "userId": f"u{i}",
                          "traits": {"note": "x" * body_bytes}}) for i in range(start, start + n)]


def _backdate(path: Path, up_to_offset: int, days: float) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET appended_at = ? WHERE offset <= ?", (time.time() - days * DAY, up_to_offset))
    db.commit()
    db.close()


async def _read_all(path: Path, consumer: str) -> list[LogRecord]:
    reader = SqliteLogConsumer(path, consumer=consumer)
    await reader.start()
    try:
        return await reader.fetch(10_000, wait_seconds=0)
    finally:
        await reader.stop()


async def _commit(path: Path, consumer: str, offsets: dict[int, int]) -> None:
    reader = SqliteLogConsumer(path, consumer=consumer)
    await reader.start()
    try:
        await reader.commit({Partition(EMBEDDED_TOPIC, p): o for p, o in offsets.items()})
    finally:
        await reader.stop()


async def test_only_committed_events_older_than_the_age_are_pruned_and_the_consumer_resumes_unchanged(
        tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SqliteEventLog(path, partitions=2) as log:
        await log.append(_events(40))
        records = await _read_all(path, "destination")
        assert {r.partition.number for r in records} == {0, 1} and [r.offset for r in records] == list(range(1, 41))
        _backdate(path, 30, days=10)  # offsets 1-30 are 10 days old, 31-40 new
        commits = {0: 21, 1: 36}  # partition 0 committed below 21, partition 1 below 36
        await _commit(path, "destination", commits)

        pruned = await log.prune(time.time() - 7 * DAY, limit=4)

    gone = [r for r in records if r.offset < commits[r.partition.number] and r.offset <= 30]
    assert pruned == len(gone) > 0
    kept = [r for r in records if r not in gone]
    db = sqlite3.connect(path)
    assert [o for (o,) in db.execute("SELECT offset FROM events ORDER BY offset")] == [r.offset for r in kept]
    db.close()
    # uncommitted events (old or new) are all still there, under the same offsets and identities
    resumed = await _read_all(path, "destination")
    assert [(r.partition, r.offset, r.event) for r in resumed] == \
           [(r.partition, r.offset, r.event) for r in kept if r.offset >= commits[r.partition.number]]


async def test_a_consumer_that_committed_less_holds_pruning_back(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SqliteEventLog(path, partitions=2) as log:
        await log.append(_events(20))
        records = await _read_all(path, "destination")
        _backdate(path, 20, days=30)
        await _commit(path, "destination", {0: 21, 1: 21})
        await _commit(path, "audit", {0: 6})  # behind on partition 0, nothing committed on partition 1

        pruned = await log.prune(time.time() - DAY, limit=1000)

    assert pruned == len([r for r in records if r.partition.number == 0 and r.offset < 6])
    assert {r.offset for r in await _read_all(path, "audit")} == \
           {r.offset for r in records if r.partition.number == 1 or r.offset >= 6}


async def test_a_pruned_log_gives_its_pages_back_and_never_reuses_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with SqliteEventLog(path, partitions=1) as log, open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as sync:
        await log.append(_events(400, body_bytes=2000))
        await _commit(path, "destination", {0: 401})
        _backdate(path, 400, days=8)
        db = sqlite3.connect(path)
        before = db.execute("PRAGMA page_count").fetchone()[0]
        metrics = Metrics()

        pruned = await Retention(RetentionConfig(event_log_days=7, batch_rows=150), sync, log, metrics).run_once()

        assert pruned == Pruned(event_log=400)
        assert metrics.registry.get_sample_value("destination_retention_pruned_rows_total",
                                                 {"store": "event_log"}) == 400
        after = db.execute("PRAGMA page_count").fetchone()[0]
        assert after < before / 4, (before, after)  # a new file is made with auto_vacuum=INCREMENTAL
        await log.append(_events(1, start=400))
        assert db.execute("SELECT offset FROM events").fetchall() == [(401,)]
        db.close()
