"""The sync log in SQLite (embedded default): one file, WAL, every record() one durable transaction."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..outcomes import Outcome, Status
from ..sqlite_rows import (
    connect,
    immediate_transaction,
    insert_rows,
    insert_rows_in_transaction,
    statement_sizes,
)
from .base import (
    ANY,
    EVENT_COLUMNS,
    IN_FLIGHT,
    IN_FLIGHT_IDS,
    WRITTEN_COLUMNS,
    DeadLetter,
    InFlight,
    SeenRecord,
    SyncBackProgress,
    SyncBackState,
    SyncLog,
    SyncLogFilter,
    SyncLogRow,
    WritesNote,
    event_rows,
    in_flight_note,
    in_flight_rows,
    outcome_row,
    row_from_values,
    utcnow,
)
from .filters import where_sql
from .migrations import LATEST, migrate_sqlite
from .schema import (
    SUPERSEDED,
    page_statement,
    row_statement,
    upsert_statement,
)

# After a prune chunk, per event of the rows it deleted: the event, unless a row still refers to it (found through
# sync_log's unique key; writers take turns in SQLite, so no record() can be adding one meanwhile).
_UNREFERENCED_EVENTS = ("DELETE FROM sync_log_events WHERE id = ? AND NOT EXISTS "
                        "(SELECT 1 FROM sync_log s WHERE s.source = sync_log_events.source "
                        "AND s.message_id = sync_log_events.message_id AND s.event_id = sync_log_events.id)")
# A kept event that arrives again with another body (a fix, a replay of an edited event): the latest is kept.
_NEW_BODY = "UPDATE sync_log_events SET body = ? WHERE id = ? AND body <> ?"
_ROWS_PER_STATEMENT = 64  # 64 rows x 19 columns stays far under SQLite's variable limit (32,766 since 3.32)


_INTENT_ROWS = 100  # rows per create_intents / record_intents statement (6 columns: 600 variables)
# free pages handed back to the file system after a pruned chunk (8 MB of 4 KB pages); run with
# executescript: sqlite3's execute() steps a PRAGMA once, and each step frees one page
_VACUUM = "PRAGMA incremental_vacuum(2048)"


def _deletes_in(sql: str, groups: Mapping[tuple[str, ...], list[str]]) -> list[tuple[str, list[Any]]]:
    """`sql` (a DELETE ending in `IN`, its other placeholders filled by a group's key) once per group and
    chunk of 500 ids."""
    out: list[tuple[str, list[Any]]] = []
    for key, ids in groups.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            out.append((f"{sql} ({', '.join('?' * len(chunk))})", [*key, *chunk]))
    return out


def _delete_intents(keys: Sequence[tuple[str, str, str]]) -> list[tuple[str, list[Any]]]:
    """DELETE statements for (source, message_id, action) keys, grouped by source and action."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for source, message_id, action in keys:
        groups.setdefault((source, action), []).append(message_id)
    return _deletes_in("DELETE FROM create_intents WHERE source = ? AND action = ? AND message_id IN", groups)


def _delete_record_intents(created: Sequence[tuple[str, str]]) -> list[tuple[str, list[Any]]]:
    """DELETE statements for the record intents of (object, record_id) pairs, grouped by object."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for object_name, record_id in created:
        groups.setdefault((object_name,), []).append(record_id)
    return _deletes_in("DELETE FROM record_intents WHERE object = ? AND record_id IN", groups)


@functools.lru_cache(maxsize=16)
def _upsert_sql(rows: int) -> str:
    return upsert_statement(["?"] * len(WRITTEN_COLUMNS), rows)


# The events (source, messageId) already kept: the id their outcome rows refer to, found through sync_log's
# unique key (format: the source's placeholder, then the messageIds').
_KEPT_EVENTS = ("SELECT source, message_id, MAX(event_id) FROM sync_log WHERE source = {0} AND message_id IN ({1}) "
                "AND event_id IS NOT NULL GROUP BY source, message_id")


@functools.lru_cache(maxsize=16)
def _event_sql(rows: int) -> str:
    """INSERT of `rows` new events (id, source, message_id, body)."""
    return (f"INSERT INTO sync_log_events (id, {', '.join(EVENT_COLUMNS)}) "
            f"VALUES {', '.join(['(?, ?, ?, ?)'] * rows)}")


def _event_ids(db: sqlite3.Connection, events: list[tuple[str, str, str]]) -> dict[tuple[str, str], int]:
    """The `sync_log_events` id of each of a batch's events (source, messageId, body): an event a row already
    refers to keeps its id (and takes the new body, if it differs); the others are appended. Inside the
    caller's transaction."""
    ids: dict[tuple[str, str], int] = {}
    by_source: dict[str, list[str]] = {}
    for source, message_id, _ in events:
        by_source.setdefault(source, []).append(message_id)
    for source, message_ids in by_source.items():
        for start in range(0, len(message_ids), 500):
            chunk = message_ids[start:start + 500]
            found = db.execute(_KEPT_EVENTS.format("?", ", ".join("?" * len(chunk))), [source, *chunk])
            ids.update({(s, m): i for s, m, i in found})
    if ids:
        db.executemany(_NEW_BODY, [(body, ids[(s, m)], body) for s, m, body in events if (s, m) in ids])
    new = [event for event in events if (event[0], event[1]) not in ids]
    if new:
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM sync_log_events").fetchone()
        params: list[Any] = []
        for n, (source, message_id, body) in enumerate(new, start=last + 1):
            ids[(source, message_id)] = n
            params += (n, source, message_id, body)
        insert_rows_in_transaction(db, _event_sql, params, 4, _ROWS_PER_STATEMENT)
    return ids


def _keep_events(db: sqlite3.Connection, events: list[tuple[str, str, str]], params: list[Any]) -> None:
    """Keep a batch's events (_event_ids) and fill in each outcome row's event_id, the last of its
    WRITTEN_COLUMNS in `params` (a row's source and messageId lead it). Inside the caller's transaction."""
    ids = _event_ids(db, events)
    width = len(WRITTEN_COLUMNS)
    for end in range(width, len(params) + 1, width):
        params[end - 1] = ids[(params[end - width], params[end - width + 1])]


@functools.lru_cache(maxsize=16)
def _key_intents_sql(rows: int) -> str:
    """INSERT of `rows` record intents (connection, object, record_key, created_at); one already there for its
    key is renewed (fate unknown again, as of now)."""
    return ("INSERT INTO record_intents (connection, object, record_key, created_at) "
            f"VALUES {', '.join(['(?, ?, ?, ?)'] * rows)} ON CONFLICT (connection, object, record_key) "
            "DO UPDATE SET record_id = NULL, created_at = excluded.created_at")


@functools.lru_cache(maxsize=16)
def _settle_keys_sql(rows: int) -> str:
    """UPDATE of `rows` record intents of one connection and object: (record_key, record_id) pairs, then the
    connection and object (the primary key's index finds each row)."""
    return (f"UPDATE record_intents SET record_id = v.column2 FROM (VALUES {', '.join(['(?, ?)'] * rows)}) AS v "
            "WHERE record_intents.connection = ? AND record_intents.object = ? "
            "AND record_intents.record_key = v.column1")


@functools.lru_cache(maxsize=16)
def _value_times_sql(rows: int) -> str:
    """INSERT of `rows` (object, record_id, field, event_time); an older time never replaces a newer one (the
    rows of one statement are applied in order, as one statement each would be)."""
    return ("INSERT INTO value_times (object, record_id, field, event_time) "
            f"VALUES {', '.join(['(?, ?, ?, ?)'] * rows)} "
            "ON CONFLICT (object, record_id, field) DO UPDATE SET event_time = excluded.event_time "
            "WHERE excluded.event_time > value_times.event_time")


@functools.lru_cache(maxsize=16)
def _written_values_sql(rows: int) -> str:
    """INSERT of `rows` (object, record_id, field, value, written_at); the latest value of a field wins."""
    return ("INSERT INTO written_values (object, record_id, field, value, written_at) "
            f"VALUES {', '.join(['(?, ?, ?, ?, ?)'] * rows)} ON CONFLICT (object, record_id, field) "
            "DO UPDATE SET value = excluded.value, written_at = excluded.written_at")


def _param(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class SqliteSyncLog(SyncLog):
    """A sync log in one SQLite file; calls run in a worker thread so the event loop never blocks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._intents_open = True  # whether create_intents may hold rows (checked on open and after deletes)
        self._keys_open = True  # the same for record_intents

    async def open(self) -> None:
        db = connect(self.path, timeout=5.0)
        try:
            if migrate_sqlite(db) < LATEST:  # a table a migration copied left its old pages free: given back
                db.executescript("PRAGMA incremental_vacuum")  # (a file made with auto_vacuum=INCREMENTAL)
        except BaseException:  # a schema too new, or a migration that failed: nothing is left open
            db.close()
            raise
        self._intents_open = bool(db.execute("SELECT EXISTS (SELECT 1 FROM create_intents)").fetchone()[0])
        self._keys_open = bool(db.execute("SELECT EXISTS (SELECT 1 FROM record_intents)").fetchone()[0])
        self._db = db

    async def close(self) -> None:
        """Close once no worker thread is inside a statement (closing a connection another thread is using
        can crash the process); later calls find it closed."""
        def work() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None
        await asyncio.to_thread(work)

    async def _run(self, sql: str, params: Sequence[Any] = (), *, many: Sequence[Sequence[Any]] | None = None,
                   fetch: bool = True) -> list[tuple[Any, ...]]:
        def work() -> list[tuple[Any, ...]]:
            with self._lock:
                assert self._db is not None, "sync log is not open"
                if many is not None:
                    with immediate_transaction(self._db):
                        self._db.executemany(sql, many)
                    return []
                cursor = self._db.execute(sql, [_param(p) for p in params])
                return cursor.fetchall() if fetch else []
        return await asyncio.to_thread(work)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        now = utcnow().isoformat()  # the only datetime of a row: converted once per batch, not per column
        params: list[Any] = []
        for outcome in outcomes:
            params += outcome_row(outcome, now)
            params.append(None)  # event_id: known once the events are kept, in the transaction
        events = event_rows(outcomes)
        targeted = {(o.event.source, o.event.message_id, o.action or "") for o in outcomes if o.target}
        created = sorted({(o.object or "", o.record_id) for o in outcomes if o.created and o.record_id})
        await asyncio.to_thread(self._upsert, params, events, sorted(targeted), created)

    def _upsert(self, params: list[Any], events: list[tuple[str, str, str]], targeted: list[tuple[str, str, str]],
                created: Sequence[tuple[str, str]] = ()) -> None:
        """Every row of a batch and its events in one transaction, in multi-row statements (see sqlite_rows),
        with the create intents those outcomes settle and the record intents they close removed in the same
        commit (one fsync per batch: a DELETE per row outside a transaction would commit, and sync, each).
        `params` are the rows' WRITTEN_COLUMNS, each event_id still to be filled in."""
        width = len(WRITTEN_COLUMNS)
        with self._lock:
            db = self._db
            assert db is not None, "sync log is not open"
            intents_empty = keys_empty = False
            with immediate_transaction(db):
                _keep_events(db, events, params)
                insert_rows_in_transaction(db, _upsert_sql, params, width, _ROWS_PER_STATEMENT)
                if targeted:  # rare (on_many_matches: all)
                    db.executemany(SUPERSEDED.format("?", "?", "?"), targeted)
                if self._intents_open:  # skipped while the table is empty: most workloads never pay for it
                    keys = [(params[i], params[i + 1], params[i + 2]) for i in range(0, len(params), width)]
                    for sql, values in _delete_intents(keys):
                        db.execute(sql, values)
                    intents_empty = bool(db.execute("SELECT NOT EXISTS (SELECT 1 FROM create_intents)").fetchone()[0])
                if created and self._keys_open:  # the record intents these rows saying created close
                    for sql, values in _delete_record_intents(created):
                        db.execute(sql, values)
                    keys_empty = not db.execute("SELECT EXISTS (SELECT 1 FROM record_intents)").fetchone()[0]
            if intents_empty:  # changed with the table, under its lock (as record_intents sets them)
                self._intents_open = False
            if keys_empty:
                self._keys_open = False

    def _transaction(self, statements: list[tuple[str, list[Any]]]) -> None:
        """Statements in one transaction (the caller holds the lock)."""
        assert self._db is not None, "sync log is not open"
        with immediate_transaction(self._db):
            for sql, params in statements:
                self._db.execute(sql, params)

    async def _intents(self, statements: list[tuple[str, list[Any]]], opens: bool = False) -> None:
        """`opens`: the statements add intents; the flag turns on under the lock, with the table (set before,
        a record() emptying the table meanwhile would turn it off over the new intent)."""
        def work() -> None:
            with self._lock:
                if opens:
                    self._intents_open = True
                self._transaction(statements)
        if statements:
            await asyncio.to_thread(work)

    async def record_intents(self, intents: Sequence[tuple[str, str, str, str, str]]) -> None:
        now = utcnow().isoformat()
        statements = []
        for start in range(0, len(intents), _INTENT_ROWS):
            chunk = intents[start:start + _INTENT_ROWS]
            statements.append(("INSERT INTO create_intents (source, message_id, action, object, matchers, created_at) "
                               f"VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(chunk))} "
                               "ON CONFLICT (source, message_id, action) DO NOTHING",
                               [v for i in chunk for v in (*i, now)]))
        await self._intents(statements, opens=True)

    async def settle_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        statements = _delete_intents([(s, m, a) for s, m, a, r in settled if not r])
        created: dict[tuple[str, str], dict[str, str]] = {}  # of an intent given twice, the last Id wins
        for source, message_id, action, record_id in settled:
            if record_id:
                created.setdefault((source, action), {})[message_id] = record_id
        for (source, action), ids in created.items():
            pairs = list(ids.items())
            for start in range(0, len(pairs), _INTENT_ROWS):
                chunk = pairs[start:start + _INTENT_ROWS]
                cases = " ".join("WHEN ? THEN ?" for _ in chunk)
                statements.append((f"UPDATE create_intents SET record_id = CASE message_id {cases} END "
                                   f"WHERE source = ? AND action = ? AND message_id IN ({', '.join('?' * len(chunk))})",
                                   [v for pair in chunk for v in pair] + [source, action, *(m for m, _ in chunk)]))
        await self._intents(statements)

    async def open_intents(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start:start + 500])
            found = await self._run(
                f"SELECT message_id, record_id FROM create_intents WHERE source = ? AND action = ? AND message_id "
                f"IN ({', '.join('?' * len(chunk))})", [source, action, *chunk])
            out.update({m: r for m, r in found})
        return out

    async def record_key_intents(self, intents: Sequence[tuple[str, str, str]]) -> None:
        if not intents:
            return
        now = utcnow().isoformat()
        params = [v for intent in intents for v in (*intent, now)]  # a key given twice: renewed twice

        def work() -> None:
            with self._lock:  # the flag changes with the table, under its lock: a record() emptying the table
                assert self._db is not None, "sync log is not open"  # meanwhile cannot leave it false
                insert_rows(self._db, _key_intents_sql, params, 4, _INTENT_ROWS)
                self._keys_open = True
        await asyncio.to_thread(work)

    async def settle_key_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        made: dict[tuple[str, str], dict[str, str]] = {}  # (connection, object) -> key -> Id (the last one wins)
        gone = [(c, o, k) for c, o, k, r in settled if not r]
        for c, o, k, r in settled:
            if r:
                made.setdefault((c, o), {})[k] = r
        if not made and not gone:
            return

        def work() -> None:
            with self._lock:
                db = self._db
                assert db is not None, "sync log is not open"
                with immediate_transaction(db):  # one commit: the Ids, then the intents certainly not created
                    for (connection, obj), ids in made.items():
                        pairs = [v for pair in ids.items() for v in pair]
                        start = 0
                        for rows in statement_sizes(len(ids), _INTENT_ROWS):
                            end = start + 2 * rows
                            db.execute(_settle_keys_sql(rows), [*pairs[start:end], connection, obj])
                            start = end
                    if gone:
                        db.executemany("DELETE FROM record_intents WHERE connection = ? AND object = ? "
                                       "AND record_key = ?", gone)
        await asyncio.to_thread(work)

    async def open_key_intents(self, connection: str, object: str, keys: Sequence[str]
                               ) -> dict[str, tuple[str | None, datetime]]:
        out: dict[str, tuple[str | None, datetime]] = {}
        if not self._keys_open:  # most workloads never pay for the query
            return out
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            found = await self._run(
                f"SELECT record_key, record_id, created_at FROM record_intents WHERE connection = ? AND "
                f"object = ? AND record_key IN ({', '.join('?' * len(chunk))})", [connection, object, *chunk])
            out.update({k: (r, datetime.fromisoformat(t)) for k, r, t in found})
        return out

    async def rows(self, where: SyncLogFilter = ANY, *, limit: int = 100,
                   offset: int = 0) -> list[SyncLogRow]:
        clause, params = where_sql(where, lambda _: "?")
        found = await self._run(page_statement(clause, "?", "?"), [*params, limit, offset])
        return [row_from_values(r) for r in found]

    async def row(self, row_id: int) -> SyncLogRow | None:
        found = await self._run(row_statement("?"), [row_id])
        return row_from_values(found[0]) if found else None

    async def counts(self, where: SyncLogFilter = ANY) -> dict[Status, int]:
        clause, params = where_sql(where, lambda _: "?", with_status=False)
        found = await self._run(f"SELECT status, COUNT(*) FROM sync_log {clause} GROUP BY status", params)
        counts = {status: 0 for status in Status}
        counts.update({Status(s): n for s, n in found})
        return counts

    async def created_records(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        # `+status` / `+created` keep SQLite's planner on the (source, message_id, action) key: with a plain
        # `status = 'succeeded'` it picks the status index and scans every succeeded row, once per batch.
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start:start + 500])
            found = await self._run(
                f"SELECT message_id, record_id FROM sync_log WHERE source = ? AND action = ? AND message_id IN "
                f"({', '.join('?' * len(chunk))}) AND +status = 'succeeded' AND +created = 1", [source, action, *chunk])
            out.update({m: r for m, r in found if r})
        return out

    async def value_times(self, object: str, record_ids: Sequence[str], fields: Sequence[str]
                          ) -> dict[str, dict[str, datetime]]:
        out: dict[str, dict[str, datetime]] = {}
        names = list(fields)
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start:start + 500])
            found = await self._run(
                f"SELECT record_id, field, event_time FROM value_times WHERE object = ? AND record_id IN "
                f"({', '.join('?' * len(chunk))}) AND field IN ({', '.join('?' * len(names))})",
                [object, *chunk, *names])
            for record_id, name, moment in found:
                out.setdefault(record_id, {})[name] = datetime.fromisoformat(moment)
        return out

    async def record_value_times(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        if not rows:
            return
        # UTC with microseconds: the text sorts as the times do, so the WHERE keeps the newest
        params = [v for o, r, f, t in rows for v in (o, r, f, t.astimezone(UTC).isoformat(timespec="microseconds"))]

        def work() -> None:
            with self._lock:
                assert self._db is not None, "sync log is not open"
                insert_rows(self._db, _value_times_sql, params, 4, _ROWS_PER_STATEMENT)
        await asyncio.to_thread(work)

    async def record_written_values(self, rows: Sequence[tuple[str, str, str, Any]], *,
                                    in_flight: WritesNote | None = None) -> None:
        if not rows and in_flight is None:
            return
        now = utcnow().isoformat()
        params = [v for o, r, f, value in rows for v in (o, r, f, json.dumps(value, default=str), now)]

        def work() -> None:
            with self._lock:
                db = self._db
                assert db is not None, "sync log is not open"
                with immediate_transaction(db):
                    insert_rows_in_transaction(db, _written_values_sql, params, 5, _ROWS_PER_STATEMENT)
                    if in_flight is not None:
                        db.executemany("DELETE FROM written_values WHERE object = ? AND record_id = ? AND field = ?",
                                       in_flight.rows())
        await asyncio.to_thread(work)

    async def begin_writes(self, objects: Mapping[str, Sequence[str]]) -> WritesNote:
        now = utcnow()
        note, rows = in_flight_rows(objects, now)
        await self._run("INSERT INTO written_values (object, record_id, field, value, written_at) "
                        "VALUES (?, ?, ?, ?, ?)", many=[[*row, now.isoformat()] for row in rows])
        return note

    async def writes_in_flight(self, object: str) -> list[InFlight]:
        # the record_id range keeps this to the notes' rows of the primary key's index
        found = await self._run("SELECT record_id, value FROM written_values WHERE object = ? AND record_id >= ? "
                                "AND record_id < ? AND field = ?", [object.lower(), *IN_FLIGHT_IDS, IN_FLIGHT])
        return sorted((in_flight_note(r, v) for r, v in found), key=lambda n: n.since)

    async def written_values(self, object: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start:start + 500])
            found = await self._run(f"SELECT record_id, field, value FROM written_values WHERE object = ? AND "
                                    f"record_id IN ({', '.join('?' * len(chunk))})", [object, *chunk])
            for record_id, name, value in found:
                out.setdefault(record_id, {})[name] = json.loads(value)
        return out

    async def sync_back_states(self, source: str | None = None) -> list[SyncBackState]:
        found = await self._run("SELECT source, object, watermark, polled_at, last_error, published, echoes FROM "
                                "sync_back_state WHERE ? IS NULL OR source = ? ORDER BY source, object",
                                [source, source])
        return [SyncBackState(r[0], r[1], r[2], datetime.fromisoformat(r[3]) if r[3] else None, r[4], r[5], r[6])
                for r in found]

    async def seen_records(self, source: str, object: str, record_ids: Sequence[str]) -> dict[str, SeenRecord]:
        out: dict[str, SeenRecord] = {}
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start:start + 500])
            found = await self._run(f"SELECT record_id, modstamp, vals FROM sync_back_records WHERE source = ? AND "
                                    f"object = ? AND record_id IN ({', '.join('?' * len(chunk))})",
                                    [source, object, *chunk])
            out.update({r: SeenRecord(m, json.loads(v)) for r, m, v in found})
        return out

    async def save_sync_back(self, progress: SyncBackProgress) -> None:
        p = progress
        statements: list[tuple[str, list[Any]]] = [
            ("INSERT INTO sync_back_records (source, object, record_id, modstamp, vals) VALUES (?, ?, ?, ?, ?) "
             "ON CONFLICT (source, object, record_id) DO UPDATE SET modstamp = excluded.modstamp, "
             "vals = excluded.vals WHERE excluded.modstamp >= sync_back_records.modstamp",
             [p.source, p.object, rid, stamp, json.dumps(vals, default=str, sort_keys=True)])
            for rid, stamp, vals in p.records]
        statements.append((
            "INSERT INTO sync_back_state (source, object, watermark, polled_at, last_error, published, echoes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, object) DO UPDATE SET "
            "watermark = CASE WHEN excluded.watermark IS NULL OR (sync_back_state.watermark IS NOT NULL AND "
            "excluded.watermark < sync_back_state.watermark) THEN sync_back_state.watermark "
            "ELSE excluded.watermark END, polled_at = excluded.polled_at, last_error = excluded.last_error, "
            "published = sync_back_state.published + excluded.published, "
            "echoes = sync_back_state.echoes + excluded.echoes",
            [p.source, p.object, p.watermark, utcnow().isoformat(), p.error, p.published, p.echoes]))

        def work() -> None:
            with self._lock:
                self._transaction(statements)
        await asyncio.to_thread(work)

    async def dead_letter(self, source: str, reason: str, payload: str, error_code: str | None = None) -> int:
        found = await self._run(
            "INSERT INTO dead_letters (source, reason, error_code, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id", [source, reason, error_code, payload, utcnow()])
        return int(found[0][0])

    async def dead_letters(self, *, replayed: bool | None = False, limit: int = 1000) -> list[DeadLetter]:
        clause = {None: "", False: "WHERE replayed_at IS NULL", True: "WHERE replayed_at IS NOT NULL"}[replayed]
        found = await self._run(
            "SELECT id, source, reason, error_code, payload, created_at, replayed_at FROM dead_letters "
            f"{clause} ORDER BY id LIMIT ?", [limit])
        return [DeadLetter(id=r[0], source=r[1], reason=r[2], error_code=r[3], payload=r[4],
                           created_at=datetime.fromisoformat(r[5]),
                           replayed_at=datetime.fromisoformat(r[6]) if r[6] else None) for r in found]

    async def mark_replayed(self, ids: Sequence[int]) -> None:
        if ids:
            now = utcnow().isoformat()
            await self._run("UPDATE dead_letters SET replayed_at = ? WHERE id = ?", many=[[now, i] for i in ids])

    async def prune_outcomes(self, before: datetime, *, failed: bool, limit: int) -> int:
        # `+status` keeps the planner on the updated_at index (the status index would scan every other row)
        which = "status = 'failed'" if failed else "+status <> 'failed'"
        return await self._prune(f"DELETE FROM sync_log WHERE id IN (SELECT id FROM sync_log WHERE updated_at < ? "
                                 f"AND {which} ORDER BY updated_at LIMIT ?) RETURNING event_id",
                                 before, limit, events=True)

    async def prune_dead_letters(self, before: datetime, *, limit: int) -> int:
        return await self._prune("DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
                                 "WHERE created_at < ? ORDER BY created_at LIMIT ?) RETURNING id", before, limit)

    async def _prune(self, sql: str, before: datetime, limit: int, *, events: bool = False) -> int:
        """One chunk: a short write transaction, then the pages it freed go back to the file system (only in
        a file made with auto_vacuum=INCREMENTAL, i.e. by this version or later; an older file keeps its
        size and reuses the pages). With `events`, `sql` returns the event_id of the outcome rows it deleted,
        and their events go too once no row is left with them."""
        def work() -> int:
            with self._lock:
                db = self._db
                assert db is not None, "sync log is not open"
                with immediate_transaction(db):
                    gone = db.execute(sql, [before.astimezone(UTC).isoformat(), limit]).fetchall()
                    if events and gone:
                        db.executemany(_UNREFERENCED_EVENTS, [(i,) for i in sorted({i for (i,) in gone if i})])
                if gone:
                    db.executescript(_VACUUM)
                return len(gone)
        return await asyncio.to_thread(work)
