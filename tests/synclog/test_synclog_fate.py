"""Both sync-log stores keep one row per (event, action, record) — a record per row under
`on_many_matches: all` — migrate a log made before that key, and keep the newest event time of
`most_recent` values (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.synclog import SyncLog, SyncLogFilter, open_sync_log

# The sync_log table as it was made before outcomes had a target (one row per source, messageId, action).
OLD_TABLE = """CREATE TABLE sync_log (
    id {serial} PRIMARY KEY,
    source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL,
    object TEXT, operation TEXT, record_id TEXT, created {boolean}, status TEXT NOT NULL,
    error_code TEXT, message TEXT, fields TEXT NOT NULL, reason TEXT,
    attempts INTEGER NOT NULL, warnings TEXT NOT NULL, email TEXT, event TEXT NOT NULL,
    first_seen {timestamp} NOT NULL, updated_at {timestamp} NOT NULL,
    UNIQUE (source, message_id, action))"""
OLD_DEAD_LETTERS = """CREATE TABLE dead_letters (
    id {serial} PRIMARY KEY, source TEXT NOT NULL, reason TEXT NOT NULL, error_code TEXT,
    payload TEXT NOT NULL, created_at {timestamp} NOT NULL, replayed_at {timestamp})"""
OLD_ROW = ("INSERT INTO sync_log (source, message_id, action, record_id, created, status, fields, attempts, warnings, "
           "event, first_seen, updated_at) VALUES ('web', 'm-old', 'leads', '00Q8c0000000001AAA', {true}, "
           "'succeeded', '[]', 1, '[]', '{{}}', {now}, {now})")


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def log(log_url: str) -> AsyncIterator[SyncLog]:
    async with open_sync_log(log_url) as store:
        yield store


def _event(n: int) -> Event:
    return Event("web", {"type": "identify", "messageId": f"m-{n}", "traits": {"email": f"u{n}@example.com"}})


async def test_on_many_matches_all_keeps_one_row_per_record_and_a_replay_updates_each(log: SyncLog) -> None:
    e = _event(1)
    twins = ("0038c0000000001AAA", "0038c0000000002AAA")
    await log.record([Outcome.failed(e, "UNABLE_TO_LOCK_ROW", "locked", action="contacts", record_id=twins[0],
                                     target=twins[0]),
                      Outcome.succeeded(e, record_id=twins[1], created=False, action="contacts", target=twins[1])])
    await log.record([Outcome.succeeded(e, record_id=twins[0], created=False, action="contacts", target=twins[0])])
    rows = await log.rows(SyncLogFilter(message_id="m-1"))
    assert sorted((r.target, r.record_id, r.status, r.attempts) for r in rows) == [
        (twins[0], twins[0], Status.SUCCEEDED, 2), (twins[1], twins[1], Status.SUCCEEDED, 1)]


async def test_a_row_written_before_the_records_were_known_is_superseded_by_their_rows(log: SyncLog) -> None:
    e = _event(3)
    await log.record([Outcome.failed(e, "INTERNAL_ERROR", "OperationalError: disk I/O error", action="contacts")])
    await log.record([Outcome.succeeded(e, record_id="0038c0000000001AAA", created=False, action="contacts",
                                        target="0038c0000000001AAA")])
    assert [(r.target, r.status) for r in await log.rows()] == [("0038c0000000001AAA", Status.SUCCEEDED)]


async def test_a_redelivery_that_did_not_create_keeps_the_row_that_says_created(log: SyncLog) -> None:
    e = _event(2)
    await log.record([Outcome.succeeded(e, record_id="5008c0000000001AAA", created=True, action="cases")])
    await log.record([Outcome.succeeded(e, record_id="5008c0000000001AAA", created=False, action="cases")])
    assert [r.created for r in await log.rows()] == [True]
    assert await log.created_record("web", "m-2", "cases") == "5008c0000000001AAA"


async def test_value_times_keep_the_newest_event_time_per_record_and_field(log: SyncLog) -> None:
    newer = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    older = newer - timedelta(hours=1)
    await log.record_value_times([("Lead", "00Q8c0000000001AAA", "Description", newer),
                                  ("Lead", "00Q8c0000000001AAA", "Title", older)])
    await log.record_value_times([("Lead", "00Q8c0000000001AAA", "Description", older),
                                  ("Lead", "00Q8c0000000001AAA", "Title", newer)])
    found = await log.value_times("Lead", ["00Q8c0000000001AAA", "00Q8c0000000002AAA"], ["Description", "Title"])
    assert found == {"00Q8c0000000001AAA": {"Description": newer, "Title": newer}}
    assert await log.value_times("Contact", ["00Q8c0000000001AAA"], ["Description"]) == {}


async def _old_log(url: str) -> None:
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        db.execute(OLD_TABLE.format(serial="INTEGER", boolean="INTEGER", timestamp="TEXT"))
        db.execute(OLD_DEAD_LETTERS.format(serial="INTEGER", timestamp="TEXT"))
        db.execute("CREATE INDEX sync_log_status ON sync_log (status, updated_at)")
        db.execute(OLD_ROW.format(true=1, now="'2026-01-01T00:00:00+00:00'"))
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(OLD_TABLE.format(serial="BIGSERIAL", boolean="BOOLEAN", timestamp="TIMESTAMPTZ"))
        await conn.execute(OLD_DEAD_LETTERS.format(serial="BIGSERIAL", timestamp="TIMESTAMPTZ"))
        await conn.execute(OLD_ROW.format(true="TRUE", now="now()"))
    finally:
        await conn.close()


async def test_a_log_made_before_the_record_key_is_migrated_at_open(log_url: str) -> None:
    await _old_log(log_url)
    async with open_sync_log(log_url) as log:
        old = await log.rows()
        assert [(r.message_id, r.target, r.created) for r in old] == [("m-old", "", True)]
        e = Event("web", {"type": "identify", "messageId": "m-old"})
        await log.record([Outcome.succeeded(e, record_id=f"0038c000000000{n}AAA", created=False, action="contacts",
                                            target=f"0038c000000000{n}AAA") for n in (2, 3)])
        assert len(await log.rows(SyncLogFilter(message_id="m-old"))) == 3
    async with open_sync_log(log_url) as log:  # a second open finds the new key: nothing to migrate
        assert len(await log.rows()) == 3
