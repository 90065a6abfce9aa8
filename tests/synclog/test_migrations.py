"""The sync log's schema is versioned: a database from the previous release (its DDL copied here from git
history, with rows in it) is recognised and migrated at open, keeping its rows readable through the
current API; two processes starting at once migrate once; a database from a newer release is refused.
SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.synclog import SyncLogFilter, open_sync_log
from destination.synclog.migrations import LATEST, MIGRATIONS, SchemaTooNew

TYPES = {"sqlite": {"serial": "INTEGER", "timestamp": "TEXT", "boolean": "INTEGER"},
         "postgres": {"serial": "BIGSERIAL", "timestamp": "TIMESTAMPTZ", "boolean": "BOOLEAN"}}

# The previous release's schema, as destination/synclog/schema.py made it before 11b50b2 (one row per
# source, messageId and action; no value_times, no create_intents).
V1 = [
    """CREATE TABLE IF NOT EXISTS sync_log (
        id {serial} PRIMARY KEY,
        source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL,
        object TEXT, operation TEXT, record_id TEXT, created {boolean}, status TEXT NOT NULL,
        error_code TEXT, message TEXT, fields TEXT NOT NULL, reason TEXT,
        attempts INTEGER NOT NULL, warnings TEXT NOT NULL, email TEXT, event TEXT NOT NULL,
        first_seen {timestamp} NOT NULL, updated_at {timestamp} NOT NULL,
        UNIQUE (source, message_id, action))""",
    "CREATE INDEX IF NOT EXISTS sync_log_status ON sync_log (status, updated_at)",
    "CREATE INDEX IF NOT EXISTS sync_log_record ON sync_log (record_id)",
    "CREATE INDEX IF NOT EXISTS sync_log_email ON sync_log (email)",
    "CREATE INDEX IF NOT EXISTS sync_log_updated ON sync_log (updated_at)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id {serial} PRIMARY KEY, source TEXT NOT NULL, reason TEXT NOT NULL, error_code TEXT,
        payload TEXT NOT NULL, created_at {timestamp} NOT NULL, replayed_at {timestamp})""",
]

V1_ROWS = [
    "INSERT INTO sync_log (source, message_id, action, object, operation, record_id, created, status, fields, "
    "attempts, warnings, email, event, first_seen, updated_at) VALUES ('web', 'm-1', 'leads', 'Lead', 'upsert', "
    "'00Q8c0000000001AAA', {true}, 'succeeded', '[]', 1, '[]', 'ann@example.com', "
    "'{{\"type\": \"identify\", \"messageId\": \"m-1\"}}', {now}, {now})",
    "INSERT INTO sync_log (source, message_id, action, object, operation, status, error_code, message, fields, "
    "attempts, warnings, event, first_seen, updated_at) VALUES ('web', 'm-2', 'leads', 'Lead', 'upsert', 'failed', "
    "'REQUIRED_FIELD_MISSING', 'Required fields are missing: [LastName]', '[\"LastName\"]', 3, '[]', "
    "'{{\"type\": \"identify\", \"messageId\": \"m-2\"}}', {now}, {now})",
    "INSERT INTO dead_letters (source, reason, error_code, payload, created_at, replayed_at) VALUES ('web', "
    "'leads: Required fields are missing', 'REQUIRED_FIELD_MISSING', '{{\"type\": \"identify\", "
    "\"messageId\": \"m-2\"}}', {now}, NULL)",
]

# The schema made by the releases between the target key and versioning (no schema_version table yet).
V2_UNVERSIONED = [
    V1[0].replace("action TEXT NOT NULL,", "action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',")
         .replace("UNIQUE (source, message_id, action)", "UNIQUE (source, message_id, action, target)"),
    *V1[1:],
    """CREATE TABLE IF NOT EXISTS value_times (
        object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL, event_time {timestamp} NOT NULL,
        PRIMARY KEY (object, record_id, field))""",
    """CREATE TABLE IF NOT EXISTS create_intents (
        source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,
        matchers TEXT NOT NULL, record_id TEXT, created_at {timestamp} NOT NULL,
        PRIMARY KEY (source, message_id, action))""",
]


async def _sql(url: str, statements: list[str], *, query: str | None = None) -> list[tuple[Any, ...]]:
    """Run statements (templates with the dialect's types) straight on the database; then `query`'s rows."""
    dialect = "sqlite" if url.startswith("sqlite") else "postgres"
    values = {**TYPES[dialect], "true": "1" if dialect == "sqlite" else "TRUE",
              "now": "'2026-06-01T09:30:00+00:00'"}
    if dialect == "sqlite":
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for statement in statements:
                db.execute(statement.format(**values))
            db.commit()
            return [tuple(r) for r in db.execute(query).fetchall()] if query else []
        finally:
            db.close()
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement.format(**values))
        return [tuple(r) for r in await conn.fetch(query)] if query else []
    finally:
        await conn.close()


async def _versions(url: str) -> list[int]:
    return [v for (v,) in await _sql(url, [], query="SELECT version FROM schema_version ORDER BY version")]


def test_the_migrations_are_numbered_in_order_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1)) and LATEST >= 3


async def test_a_previous_release_database_is_migrated_and_its_rows_stay_readable(log_url: str) -> None:
    await _sql(log_url, [*V1, *V1_ROWS])

    async with open_sync_log(log_url) as log:
        rows = {r.message_id: r for r in await log.rows()}
        assert rows["m-1"].status is Status.SUCCEEDED and rows["m-1"].target == "" and rows["m-1"].created is True
        assert rows["m-1"].record_id == "00Q8c0000000001AAA" and rows["m-1"].email == "ann@example.com"
        assert rows["m-2"].error_code == "REQUIRED_FIELD_MISSING" and rows["m-2"].fields == ("LastName",)
        assert rows["m-2"].attempts == 3 and rows["m-2"].event == {"type": "identify", "messageId": "m-2"}
        assert await log.counts() == {Status.SUCCEEDED: 1, Status.FAILED: 1, Status.SKIPPED: 0}
        assert await log.created_records("web", "leads", ["m-1", "m-2"]) == {"m-1": "00Q8c0000000001AAA"}
        [letter] = await log.dead_letters()
        assert letter.error_code == "REQUIRED_FIELD_MISSING" and letter.event() is not None
        # the current key works on the migrated table: a replay of m-2 updates its row, a record per row
        e = Event("web", {"type": "identify", "messageId": "m-2"})
        await log.record([Outcome.succeeded(e, record_id="00Q8c0000000002AAA", created=True, action="leads")])
        await log.record([Outcome.succeeded(e, record_id=f"0038c000000000{n}AAA", created=False, action="contacts",
                                            target=f"0038c000000000{n}AAA") for n in (3, 4)])
        assert len(await log.rows(SyncLogFilter(message_id="m-2"))) == 3
        assert (await log.rows(SyncLogFilter(message_id="m-2", action="leads")))[0].attempts == 4
        await log.record_intents([("web", "m-5", "leads", "Lead", "{}")])  # tables version 2 added
        await log.record_value_times([])

    assert await _versions(log_url) == list(range(1, LATEST + 1))
    async with open_sync_log(log_url) as log:  # a second open finds nothing to do
        assert len(await log.rows()) == 4
    assert await _versions(log_url) == list(range(1, LATEST + 1))


async def test_a_database_made_with_the_target_key_before_versions_is_recorded_as_version_2(log_url: str) -> None:
    await _sql(log_url, V2_UNVERSIONED)
    async with open_sync_log(log_url) as log:
        await log.record([Outcome.skipped(Event("web", {"type": "track", "messageId": "m-1"}), "NO_ACTION_MATCHED")])
    assert await _versions(log_url) == list(range(2, LATEST + 1))


async def _columns_and_indexes(url: str) -> tuple[set[tuple[str, str]], set[str]]:
    if url.startswith("sqlite"):
        tables = [t for (t,) in await _sql(url, [], query="SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {(t, c) for t in tables for (c,) in await _sql(url, [], query=f"SELECT name FROM pragma_table_info('{t}')")}
        indexes = {i for (i,) in await _sql(url, [], query="SELECT name FROM sqlite_master WHERE type = 'index' "
                                                           "AND name NOT LIKE 'sqlite_autoindex%'")}
        return columns, indexes
    columns = set(await _sql(url, [], query="SELECT table_name::text, column_name::text FROM information_schema.columns "
                                            "WHERE table_schema = current_schema()"))
    indexes = {i for (i,) in await _sql(url, [], query="SELECT indexname::text FROM pg_indexes "
                                                       "WHERE schemaname = current_schema()")}
    return columns, indexes


@asynccontextmanager
async def _another_database(request: pytest.FixtureRequest, like: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second empty database next to `like` (a file beside it, or a database on the same server)."""
    name = "other_" + secrets.token_hex(6)
    if like.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / name}.db"
        return
    server = str(request.getfixturevalue("postgres_server_url"))
    head, sep, query = like.partition("?")
    await _sql(server, [f'CREATE DATABASE "{name}"'])
    try:
        yield f"{head.rpartition('/')[0]}/{name}{sep}{query}"
    finally:
        await _sql(server, [f'DROP DATABASE "{name}" WITH (FORCE)'])


async def test_fresh_and_migrated_databases_end_with_the_same_tables_columns_and_indexes(
        log_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    async with open_sync_log(log_url):
        pass
    fresh = await _columns_and_indexes(log_url)
    assert {"sync_log", "dead_letters", "value_times", "create_intents", "schema_version"} <= {t for t, _ in fresh[0]}
    assert "dead_letters_created" in fresh[1]
    for old_schema in ([*V1, *V1_ROWS], V2_UNVERSIONED):
        async with _another_database(request, log_url, tmp_path) as old_url:
            await _sql(old_url, old_schema)
            async with open_sync_log(old_url):
                pass
            assert await _columns_and_indexes(old_url) == fresh


async def test_two_processes_starting_at_once_on_an_old_database_migrate_it_once(log_url: str) -> None:
    await _sql(log_url, [*V1, *V1_ROWS])

    async def start() -> int:
        async with open_sync_log(log_url) as log:
            return len(await log.rows())

    # each start on its own event loop and thread, as two processes would (SQLite's open is synchronous)
    counts = await asyncio.gather(*(asyncio.to_thread(asyncio.run, start()) for _ in range(2)))
    assert counts == [2, 2]
    assert await _versions(log_url) == list(range(1, LATEST + 1))  # one row per version: each applied once


async def test_a_database_migrated_by_a_newer_release_is_refused_at_open(log_url: str) -> None:
    async with open_sync_log(log_url):
        pass
    await _sql(log_url, [f"INSERT INTO schema_version (version, description, applied_at) "
                         f"VALUES ({LATEST + 1}, 'from the future', {{now}})"])
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}, newer than this release knows"):
        await open_sync_log(log_url).open()


async def test_a_version_4_database_keeps_each_event_once_after_migrating_and_its_rows_still_show_it(
        log_url: str) -> None:
    # version 4 as migrations 1-4 made it (released, never edited), each outcome row carrying its event
    dialect = "sqlite" if log_url.startswith("sqlite") else "postgres"
    v4 = [s for m in MIGRATIONS[:4] for s in (m.sqlite if dialect == "sqlite" and m.sqlite else m.statements)]
    versions = ["CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at {timestamp} NOT NULL)",
                *(f"INSERT INTO schema_version VALUES ({n}, 'v{n}', {{now}})" for n in range(1, 5))]
    second_action = ("INSERT INTO sync_log (source, message_id, action, object, operation, record_id, created, "
                     "status, fields, attempts, warnings, email, event, first_seen, updated_at) VALUES ('web', 'm-1', "
                     "'contacts', 'Contact', 'upsert', '0038c0000000001AAA', {true}, 'succeeded', '[]', 1, '[]', "
                     "'ann@example.com', '{{\"type\": \"identify\", \"messageId\": \"m-1\"}}', {now}, {now})")
    await _sql(log_url, [*versions, *v4, *V1_ROWS, second_action])

    async with open_sync_log(log_url) as log:
        rows = await log.rows()
        assert sorted((r.message_id, r.action) for r in rows) == [("m-1", "contacts"), ("m-1", "leads"),
                                                                  ("m-2", "leads")]
        assert {r.message_id: r.event for r in rows} == {"m-1": {"type": "identify", "messageId": "m-1"},
                                                         "m-2": {"type": "identify", "messageId": "m-2"}}
        assert (await log.row(rows[0].id)) == rows[0]

    assert await _versions(log_url) == list(range(1, LATEST + 1))
    assert sorted(await _sql(log_url, [], query="SELECT message_id FROM sync_log_events")) == [("m-1",), ("m-2",)]
    columns, indexes = await _columns_and_indexes(log_url)
    assert ("sync_log", "event") not in columns and "sync_log_email" not in indexes
