"""Outcome rows stay narrow: an event is kept once in the sync log however many outcome rows it has, every row
still reads it back, and pruning removes an event with the last row that had it. SQLite and a real
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.synclog import SyncLog, SyncLogFilter, open_sync_log, postgres
from destination.synclog.base import StoredEvent

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def _sql(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """One statement straight on the store (`?` placeholders, made `$n` for PostgreSQL); its rows."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = [tuple(r) for r in db.execute(sql, params).fetchall()]
            db.commit()
            return rows
        finally:
            db.close()
    for n in range(1, sql.count("?") + 1):
        sql = sql.replace("?", f"${n}", 1)
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *params)]
    finally:
        await conn.close()


async def _stored_events(url: str) -> list[tuple[object, ...]]:
    return sorted(await _sql(url, "SELECT source, message_id FROM sync_log_events"))


async def _age(url: str, message_id: str, action: str, days: int) -> None:
    when = NOW - timedelta(days=days)
    await _sql(url, "UPDATE sync_log SET updated_at = ? WHERE message_id = ? AND action = ?",
               when.isoformat() if url.startswith("sqlite") else when, message_id, action)


def _event(n: int, **extra: object) -> Event:
    return Event("web", {"type": "identify", "messageId": f"m-{n}", "userId": f"u{n}",
                         "traits": {"email": f"user{n}@example.com"}, **extra})


async def test_an_event_with_several_outcome_rows_is_kept_once_and_every_row_shows_it(
        log: SyncLog, log_url: str) -> None:
    e = _event(1)
    await log.record([Outcome.succeeded(e, record_id="00Q8c0000000001AAA", created=True, action="leads"),
                      *(Outcome.succeeded(e, record_id=r, created=False, action="contacts", target=r)
                        for r in ("0038c0000000001AAA", "0038c0000000002AAA")),
                      Outcome.skipped(_event(2), "NO_ACTION_MATCHED")])
    await log.record([Outcome.failed(e, "UNABLE_TO_LOCK_ROW", "locked", action="orders")])  # a later batch

    rows = await log.rows(SyncLogFilter(message_id="m-1"))
    assert len(rows) == 4 and all(r.event == e.body for r in rows)
    assert [await log.row(r.id) for r in rows] == rows
    assert (await log.rows(SyncLogFilter(message_id="m-2")))[0].event == _event(2).body
    assert await _stored_events(log_url) == [("web", "m-1"), ("web", "m-2")]


async def test_a_row_shows_the_latest_body_its_event_arrived_with(log: SyncLog) -> None:
    await log.record([Outcome.failed(_event(1), "REQUIRED_FIELD_MISSING", "missing", action="leads")])
    fixed = _event(1, traits={"email": "fixed@example.com", "name": "Ann"})
    await log.record([Outcome.succeeded(fixed, record_id="00Q8c0000000001AAA", created=True, action="leads")])

    [row] = await log.rows()
    assert row.status is Status.SUCCEEDED and row.event == fixed.body and row.attempts == 2


async def test_pruning_removes_an_event_with_the_last_outcome_row_that_had_it(log: SyncLog, log_url: str) -> None:
    both, alone = _event(1), _event(2)
    await log.record([Outcome.succeeded(both, record_id="00Q8c0000000001AAA", created=True, action="leads"),
                      Outcome.failed(both, "REQUIRED_FIELD_MISSING", "missing", action="contacts"),
                      Outcome.succeeded(alone, record_id="00Q8c0000000002AAA", created=True, action="leads")])
    for message_id, action in (("m-1", "leads"), ("m-1", "contacts"), ("m-2", "leads")):
        await _age(log_url, message_id, action, 40)

    assert await log.prune_outcomes(NOW - timedelta(days=30), failed=False, limit=100) == 2

    # m-1's failed row still needs its event (replay re-drives it); m-2 has no row left
    assert await _stored_events(log_url) == [("web", "m-1")]
    [kept] = await log.rows()
    assert (kept.message_id, kept.event) == ("m-1", both.body)
    assert await log.prune_outcomes(NOW - timedelta(days=30), failed=True, limit=100) == 1
    assert await _stored_events(log_url) == [] and await log.rows() == []


async def test_postgres_pruning_never_deletes_an_event_that_a_concurrent_write_gives_a_new_row(
        postgres_url: str) -> None:

    old = _event(1)
    async with open_sync_log(postgres_url) as log:
        await log.record([Outcome.succeeded(old, record_id="00Q8c0000000001AAA", created=True, action="leads")])
        await _age(postgres_url, "m-1", "leads", 40)
        writer = await asyncpg.connect(postgres_url)
        try:
            # another replica's record() of the same event, mid-transaction: it found the event its old row
            # refers to and holds it (FOR SHARE), and has written its own row referring to it
            async with writer.transaction():
                event_id = await writer.fetchval("SELECT event_id FROM sync_log WHERE message_id = 'm-1'")
                assert await writer.fetchval("SELECT id FROM sync_log_events WHERE id = $1 FOR SHARE",
                                             event_id) == event_id
                await writer.execute("INSERT INTO sync_log (source, message_id, action, target, status, fields, "
                                     "attempts, warnings, first_seen, updated_at, event_id) VALUES ('web', 'm-1', "
                                     "'contacts', '', 'failed', '[]', 1, '[]', now(), now(), $1)", event_id)
                pruned = await asyncio.wait_for(
                    log.prune_outcomes(NOW - timedelta(days=30), failed=False, limit=100), timeout=10)
        finally:
            await writer.close()
        assert pruned == 1
        [row] = await log.rows()
        assert (row.action, row.event) == ("contacts", old.body)


async def test_postgres_pruning_never_deletes_an_event_whose_new_row_was_committed_while_it_looked(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window between the prune's check (no row refers to the event, as of its statement's start) and its
    lock on the event: another replica's record() that held the event, wrote a row referring to it and
    committed in between. A gate in the prune's locking statement holds it there, after the check, before
    the lock."""
    old = _event(1)
    gate = 4242  # advisory lock key: held by the test, waited for by the prune's statement
    async with open_sync_log(postgres_url) as log:
        await log.record([Outcome.succeeded(old, record_id="00Q8c0000000001AAA", created=True, action="leads")])
        await _age(postgres_url, "m-1", "leads", 40)
        control = await asyncpg.connect(postgres_url)
        try:
            await control.execute(
                "CREATE OR REPLACE FUNCTION test_prune_gate(id bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE "
                f"COST 100000 AS $$ BEGIN PERFORM pg_advisory_lock_shared({gate}); "
                f"PERFORM pg_advisory_unlock_shared({gate}); RETURN true; END $$")
            locking = [name for name, value in vars(postgres).items() if isinstance(value, str)
                       and "FOR UPDATE OF e SKIP LOCKED" in value and "sync_log_events e" in value]
            assert locking, "the prune locks the events it found unreferenced"
            for name in locking:
                monkeypatch.setattr(postgres, name, getattr(postgres, name).replace(
                    "FOR UPDATE OF e SKIP LOCKED", "AND test_prune_gate(e.id) FOR UPDATE OF e SKIP LOCKED"))
            await control.execute("SELECT pg_advisory_lock($1)", gate)
            pruning = asyncio.create_task(log.prune_outcomes(NOW - timedelta(days=30), failed=False, limit=100))
            for _ in range(200):  # until the prune waits at the gate: its rows deleted, the event judged
                if await control.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                                        "AND datname = current_database()"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the prune never reached the gate")
            # another replica's record() of the same event for another action: it still sees the old row, so
            # it keeps the event's id, and it commits before the prune takes its lock
            await asyncio.wait_for(log.record([Outcome.failed(old, "UNABLE_TO_LOCK_ROW", "locked",
                                                              action="contacts")]), timeout=10)
            await control.execute("SELECT pg_advisory_unlock($1)", gate)
            assert await asyncio.wait_for(pruning, timeout=10) == 1
        finally:
            await control.execute("DROP FUNCTION IF EXISTS test_prune_gate(bigint)")
            await control.close()
        [row] = await log.rows()
        assert (row.action, row.event) == ("contacts", old.body)


async def test_postgres_a_write_that_waited_on_a_prune_of_its_event_keeps_the_event_afresh(
        postgres_url: str) -> None:
    old = _event(1)
    async with open_sync_log(postgres_url) as log:
        await log.record([Outcome.succeeded(old, record_id="00Q8c0000000001AAA", created=True, action="leads")])
        pruner = await asyncpg.connect(postgres_url)
        try:
            # another replica's prune, mid-transaction: the event's last row is gone and the event is locked
            async with pruner.transaction():
                [event_id] = [r[0] for r in await pruner.fetch("DELETE FROM sync_log WHERE message_id = 'm-1' "
                                                                "RETURNING event_id")]
                await pruner.execute("DELETE FROM sync_log_events WHERE id = $1", event_id)
                writing = asyncio.create_task(log.record([Outcome.failed(old, "UNABLE_TO_LOCK_ROW", "locked",
                                                                         action="contacts")]))
                await asyncio.sleep(0.5)
                assert not writing.done()  # it found the event through the row it still sees, and waits on it
            await asyncio.wait_for(writing, timeout=10)
        finally:
            await pruner.close()
        [row] = await log.rows()
        assert (row.action, row.event) == ("contacts", old.body)


@pytest.mark.parametrize("twice", [False, True], ids=["one_row_per_key", "a_key_twice_in_the_batch"])
async def test_postgres_two_replicas_keeping_the_same_new_event_at_once_leave_no_event_without_a_row(
        postgres_url: str, twice: bool) -> None:
    """Both find no row for the event, so each appends its body; the second one's row waits on the first's
    (same key), then updates it. The body no row refers to any more would never be pruned: the event's data
    kept past retention."""
    event = _event(1)
    async with open_sync_log(postgres_url) as log:
        other = await asyncpg.connect(postgres_url)
        try:
            # the other replica's record(), mid-transaction: its event appended, its row written
            async with other.transaction():
                event_id = await other.fetchval("INSERT INTO sync_log_events (source, message_id, body) "
                                                "VALUES ('web', 'm-1', $1) RETURNING id", json.dumps(event.body))
                await other.execute("INSERT INTO sync_log (source, message_id, action, target, status, fields, "
                                    "attempts, warnings, first_seen, updated_at, event_id) VALUES ('web', 'm-1', "
                                    "'leads', '', 'failed', '[]', 1, '[]', now(), now(), $1)", event_id)
                outcomes = [Outcome.succeeded(event, record_id="00Q8c0000000001AAA", created=True, action="leads")]
                if twice:  # a batch with a key twice is written row by row
                    outcomes.append(Outcome.succeeded(event, record_id="00Q8c0000000001AAA", created=False,
                                                    action="leads"))
                writing = asyncio.create_task(log.record(outcomes))
                await asyncio.sleep(0.5)
                assert not writing.done()  # it waits on the other's row
            await asyncio.wait_for(writing, timeout=10)
        finally:
            await other.close()
        [row] = await log.rows()
        assert (row.status, row.event) == (Status.SUCCEEDED, event.body)
        assert await _sql(postgres_url, "SELECT e.id FROM sync_log_events e WHERE NOT EXISTS "
                                        "(SELECT 1 FROM sync_log s WHERE s.event_id = e.id)") == []


async def test_an_event_given_as_its_json_is_stored_as_that_json_with_its_email(log: SyncLog, log_url: str) -> None:
    body = {"type": "identify", "messageId": "m-json", "userId": "ü", "context": {"traits": {"email": "A@B.example"}},
            "traits": {"name": "Zoë ☃", "n": 1.5}}
    packed = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    stored = StoredEvent("web", {"messageId": "m-json"}, packed=packed, email="a@b.example")
    await log.record([Outcome.succeeded(stored, record_id="00Q1", created=True, action="leads", object="Lead"),
                      Outcome.failed(stored, "STRING_TOO_LONG", "too long", action="contacts", object="Contact")])
    rows = await log.rows(SyncLogFilter(message_id="m-json"))
    assert [(r.action, r.event, r.email) for r in sorted(rows, key=lambda r: r.action)] == [
        ("contacts", body, "a@b.example"), ("leads", body, "a@b.example")]
    assert await _sql(log_url, "SELECT body FROM sync_log_events WHERE message_id = ?", "m-json") == [
        (packed.decode(),)]
