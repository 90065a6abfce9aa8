"""Retention on both sync-log stores (SQLite and a real PostgreSQL): rows older than the sync-log age go,
failed rows and dead letters stay until the longer dead-letter age, in bounded chunks. Ages are set by
writing explicit timestamps into the rows (no sleeping)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from destination.config import RetentionConfig
from destination.events import Event
from destination.metrics import Metrics
from destination.outcomes import Outcome
from destination.retention import Pruned, Retention, pruning
from destination.synclog import SyncLog, open_sync_log

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def _set_time(url: str, table: str, column: str, key: str, value: str | int, when: datetime) -> None:
    """Backdate rows: `column` := `when` where `key` = `value` (as the store keeps times)."""
    sql = f"UPDATE {table} SET {column} = {{0}} WHERE {key} = {{1}}"
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        db.execute(sql.format("?", "?"), (when.isoformat(), value))
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql.format("$1", "$2"), when, value)
    finally:
        await conn.close()


def _event(n: int) -> Event:
    return Event("web", {"type": "identify", "messageId": f"m-{n}", "userId": f"u{n}"})


async def _outcomes(log: SyncLog, url: str, ages: dict[int, tuple[str, int]]) -> None:
    """Rows m-<n> with a status ('succeeded', 'skipped', 'failed') and an age in days."""
    made = {"succeeded": lambda e: Outcome.succeeded(e, record_id="00Q8c0000000001AAA", created=True, action="leads"),
            "skipped": lambda e: Outcome.skipped(e, "NOTHING_TO_CHANGE", action="leads"),
            "failed": lambda e: Outcome.failed(e, "REQUIRED_FIELD_MISSING", "missing", action="leads")}
    await log.record([made[status](_event(n)) for n, (status, _) in ages.items()])
    for n, (_, days) in ages.items():
        await _set_time(url, "sync_log", "updated_at", "message_id", f"m-{n}", NOW - timedelta(days=days))


async def _dead_letters(log: SyncLog, url: str, ages: list[int]) -> list[int]:
    ids = [await log.dead_letter("web", f"leads: {days} days old", "{}", "REQUIRED_FIELD_MISSING") for days in ages]
    for letter, days in zip(ids, ages, strict=True):
        await _set_time(url, "dead_letters", "created_at", "id", letter, NOW - timedelta(days=days))
    return ids


def _counter(metrics: Metrics, store: str) -> float:
    return metrics.registry.get_sample_value("destination_retention_pruned_rows_total", {"store": store}) or 0.0


async def test_outcomes_older_than_the_sync_log_age_go_and_failed_ones_wait_for_the_dead_letter_age(
        log: SyncLog, log_url: str) -> None:
    await _outcomes(log, log_url, {1: ("succeeded", 40), 2: ("skipped", 31), 3: ("failed", 40), 4: ("succeeded", 10),
                                   5: ("failed", 100), 6: ("skipped", 29)})
    young, _ = await _dead_letters(log, log_url, [40, 100])
    metrics = Metrics()
    retention = Retention(RetentionConfig(sync_log_days=30, dead_letter_days=90), log, metrics=metrics)

    pruned = await retention.run_once(NOW)

    assert pruned == Pruned(sync_log=2, failed=1, dead_letters=1, event_log=0)
    assert sorted(r.message_id for r in await log.rows()) == ["m-3", "m-4", "m-6"]
    assert [d.id for d in await log.dead_letters(replayed=None)] == [young]
    assert (_counter(metrics, "sync_log"), _counter(metrics, "dead_letters")) == (3, 1)
    assert await retention.run_once(NOW) == Pruned()  # nothing older left


async def test_pruning_deletes_in_chunks_of_batch_rows_until_nothing_old_is_left(log: SyncLog, log_url: str) -> None:
    await _outcomes(log, log_url, {n: ("succeeded", 45 if n < 25 else 5) for n in range(30)})
    assert await log.prune_outcomes(NOW - timedelta(days=30), failed=False, limit=10) == 10  # one chunk

    pruned = await Retention(RetentionConfig(sync_log_days=30, batch_rows=4), log).run_once(NOW)

    assert pruned.sync_log == 15
    assert sorted(r.message_id for r in await log.rows()) == [f"m-{n}" for n in range(25, 30)]


async def test_zero_or_null_ages_keep_everything(log: SyncLog, log_url: str) -> None:
    await _outcomes(log, log_url, {1: ("succeeded", 4000), 2: ("failed", 4000)})
    await _dead_letters(log, log_url, [4000])
    for config in (RetentionConfig(sync_log_days=0, dead_letter_days=0, event_log_days=0),
                   RetentionConfig(sync_log_days=None, dead_letter_days=None, event_log_days=None)):
        assert await Retention(config, log).run_once(NOW) == Pruned()
    assert len(await log.rows()) == 2 and len(await log.dead_letters()) == 1


async def test_a_replayed_row_counts_its_age_from_the_replay(log: SyncLog, log_url: str) -> None:
    """A failed row re-driven later gets a new updated_at: its age restarts, so it is not pruned under it."""
    await _outcomes(log, log_url, {1: ("failed", 100)})
    await log.record([Outcome.succeeded(_event(1), record_id="00Q8c0000000001AAA", created=True, action="leads")])
    assert await Retention(RetentionConfig(), log).run_once() == Pruned()
    assert [r.status.value for r in await log.rows()] == ["succeeded"]


async def test_the_background_pruner_runs_at_start_logs_its_counts_and_keeps_running(
        log: SyncLog, log_url: str, caplog: pytest.LogCaptureFixture) -> None:
    await _outcomes(log, log_url, {1: ("succeeded", 400), 2: ("succeeded", 1)})
    metrics = Metrics()
    caplog.set_level(logging.INFO, "destination.retention")
    async with pruning(Retention(RetentionConfig(), log, metrics=metrics), every=3600):
        for _ in range(500):  # the first run starts at once; wait for it (bounded), not for a fixed time
            if _counter(metrics, "sync_log"):
                break
            await asyncio.sleep(0.01)
    assert _counter(metrics, "sync_log") == 1
    assert [r.message_id for r in await log.rows()] == ["m-2"]
    lines = [r for r in caplog.records if r.name == "destination.retention"]
    assert lines and lines[0].getMessage().startswith("retention: pruned 1 sync-log rows (0 of them failed), "
                                                      "0 dead letters, 0 event-log events")


async def test_a_new_sqlite_sync_log_gives_the_pages_of_pruned_rows_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    async with open_sync_log(url) as log:
        big = [Outcome.succeeded(Event("web", {"type": "identify", "messageId": f"m-{n}", "traits": {"x": "y" * 2000}}),
                                 record_id="00Q8c0000000001AAA", created=True, action="leads") for n in range(300)]
        await log.record(big)
        db = sqlite3.connect(tmp_path / "sync.db")
        db.execute("UPDATE sync_log SET updated_at = ?", ((NOW - timedelta(days=31)).isoformat(),))
        db.commit()
        before = db.execute("PRAGMA page_count").fetchone()[0]
        assert (await Retention(RetentionConfig(batch_rows=100), log).run_once(NOW)).sync_log == 300
        after = db.execute("PRAGMA page_count").fetchone()[0]
        db.close()
    assert after < before / 4, (before, after)
