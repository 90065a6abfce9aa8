"""The sync log in PostgreSQL (asyncpg): for several replicas sharing one log."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ..outcomes import Outcome, Status
from .base import (
    ANY,
    COLUMNS,
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
from .migrations import migrate_postgres
from .schema import SUPERSEDED, UPSERT_CONFLICT, page_statement, row_statement, upsert_statement

# A batch's events: those an outcome row already refers to (the latest id, should replicas have raced to keep
# one first) are locked against a concurrent prune (which skips them; one it locked first is gone once this
# waited, and is kept afresh) and given the new body if theirs differs; the rest are appended. `ids` is every
# event's id. $1-$3: the events' sources, messageIds and bodies.
_EVENTS = """WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(source, message_id, body)),
kept AS (SELECT e.id, e.source, e.message_id FROM sync_log_events e WHERE e.id IN (
    SELECT MAX(s.event_id) FROM sync_log s JOIN k ON s.source = k.source AND s.message_id = k.message_id
    WHERE s.event_id IS NOT NULL GROUP BY s.source, s.message_id) ORDER BY e.id FOR SHARE),
changed AS (UPDATE sync_log_events e SET body = k.body FROM kept JOIN k ON k.source = kept.source
    AND k.message_id = kept.message_id WHERE e.id = kept.id AND e.body <> k.body),
new AS (INSERT INTO sync_log_events (source, message_id, body) SELECT k.source, k.message_id, k.body FROM k
    WHERE NOT EXISTS (SELECT 1 FROM kept WHERE kept.source = k.source AND kept.message_id = k.message_id)
    RETURNING id, source, message_id),
ids AS (SELECT source, message_id, id, false AS fresh FROM kept
        UNION ALL SELECT source, message_id, id, true AS fresh FROM new)
"""
_EVENT_IDS = _EVENTS + "SELECT source, message_id, id, fresh FROM ids"
# A batch's events and outcome rows in one statement, one array per column ($4 on; the times are the batch's
# one `now`), each row given its event's id: one round trip, one parse and plan. It returns the events it
# appended that no row refers to: a row that another replica wrote meanwhile keeps that replica's copy of the
# event (schema.UPSERT_CONFLICT). ON CONFLICT may touch a row once per statement, so a batch with a key twice
# goes row by row (_EVENT_IDS, then upsert_statement) instead.
_TYPES = {"created": "boolean", "attempts": "int"}
_ARRAYS = len(COLUMNS) - 2  # every column but the two times
_RECORD = (_EVENTS + ", upserted AS ("
           f"INSERT INTO sync_log ({', '.join((*COLUMNS[:_ARRAYS], 'event_id', *COLUMNS[_ARRAYS:]))}) "
           f"SELECT r.*, ids.id, ${_ARRAYS + 4}::timestamptz, ${_ARRAYS + 4}::timestamptz FROM unnest("
           + ", ".join(f"${i + 4}::{_TYPES.get(c, 'text')}[]" for i, c in enumerate(COLUMNS[:_ARRAYS]))
           + f") AS r({', '.join(COLUMNS[:_ARRAYS])}) JOIN ids ON ids.source = r.source "
           f"AND ids.message_id = r.message_id {UPSERT_CONFLICT} RETURNING event_id) "
           "SELECT n.id FROM new n WHERE NOT EXISTS (SELECT 1 FROM upserted u WHERE u.event_id = n.id)")
# After a prune chunk, two statements: its rows' events that no outcome row refers to any more are locked, then
# deleted unless a row refers to them after all. The check of the first statement is as of its start; a record()
# that held an event and committed a row referring to it before the lock was taken is seen by the second (its
# own snapshot, taken under the lock). An event that a record() holds right now is skipped (its new row will
# show it); one locked here first makes that record() wait, then keep it afresh.
_NO_ROW = ("NOT EXISTS (SELECT 1 FROM sync_log s WHERE s.source = e.source AND s.message_id = e.message_id "
           "AND s.event_id = e.id)")
_LOCK_UNREFERENCED = (f"SELECT e.id FROM sync_log_events e WHERE e.id = ANY($1::bigint[]) AND {_NO_ROW} "
                      "FOR UPDATE OF e SKIP LOCKED")
_DELETE_UNREFERENCED = f"DELETE FROM sync_log_events e WHERE e.id = ANY($1::bigint[]) AND {_NO_ROW}"


# Intents in one statement each, one array per column (the keys' columns first, as the interface orders them).
_CREATE_INTENTS = ("INSERT INTO create_intents (source, message_id, action, object, matchers, created_at) "
                   "SELECT *, $6::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
                   "ON CONFLICT (source, message_id, action) DO NOTHING")
_SETTLE_CREATES = ("UPDATE create_intents c SET record_id = k.record_id FROM unnest($1::text[], $2::text[], "
                   "$3::text[], $4::text[]) AS k(source, message_id, action, record_id) WHERE c.source = k.source "
                   "AND c.message_id = k.message_id AND c.action = k.action")
_CREATES_GONE = ("DELETE FROM create_intents c USING unnest($1::text[], $2::text[], $3::text[]) "
                 "AS k(source, message_id, action) WHERE c.source = k.source AND c.message_id = k.message_id "
                 "AND c.action = k.action")
_KEY_INTENTS = ("INSERT INTO record_intents (connection, object, record_key, created_at) SELECT *, $4::timestamptz "
                "FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (connection, object, record_key) "
                "DO UPDATE SET record_id = NULL, created_at = excluded.created_at")
_SETTLE_KEYS = ("UPDATE record_intents r SET record_id = k.record_id FROM unnest($1::text[], $2::text[], $3::text[], "
                "$4::text[]) AS k(connection, object, record_key, record_id) WHERE r.connection = k.connection "
                "AND r.object = k.object AND r.record_key = k.record_key")
_KEYS_GONE = ("DELETE FROM record_intents r USING unnest($1::text[], $2::text[], $3::text[]) "
              "AS k(connection, object, record_key) WHERE r.connection = k.connection AND r.object = k.object "
              "AND r.record_key = k.record_key")

_VALUE_TIMES = ("INSERT INTO value_times (object, record_id, field, event_time) SELECT * FROM unnest($1::text[], "
                "$2::text[], $3::text[], $4::timestamptz[]) ON CONFLICT (object, record_id, field) DO UPDATE "
                "SET event_time = excluded.event_time WHERE excluded.event_time > value_times.event_time")
_WRITTEN_VALUES = ("INSERT INTO written_values (object, record_id, field, value, written_at) SELECT *, $5::timestamptz "
                   "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT (object, record_id, field) "
                   "DO UPDATE SET value = excluded.value, written_at = excluded.written_at")


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column (the arrays unnest takes)."""
    return [[row[i] for row in rows] for i in range(width)]


def _dollar(n: int) -> str:
    return f"${n}"


class PostgresSyncLog(SyncLog):
    """A sync log in a PostgreSQL database named by a `postgresql://` URL."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url = url
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "sync log is not open"
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self._sizes[0], max_size=self._sizes[1])
        try:
            async with self.pool.acquire() as conn:
                await migrate_postgres(conn)  # several replicas may start at once: it takes an advisory lock
        except BaseException:  # a schema too new, or a migration that failed: nothing is left open
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        now = utcnow()
        targeted = sorted({(o.event.source, o.event.message_id, o.action or "") for o in outcomes if o.target})
        events = event_rows(outcomes)
        event_columns = [[e[i] for e in events] for i in range(3)]
        rows = [outcome_row(o, now) for o in outcomes]
        async with self.pool.acquire() as conn, conn.transaction():
            if len({r[:4] for r in rows}) == len(rows):
                columns = [list(column) for column in zip(*rows, strict=True)]
                unreferenced = [r[0] for r in await conn.fetch(_RECORD, *event_columns, *columns[:_ARRAYS], now)]
            else:
                found = await conn.fetch(_EVENT_IDS, *event_columns)
                ids = {(r[0], r[1]): r[2] for r in found}
                rows = [(*row, ids[(row[0], row[1])]) for row in rows]
                await conn.executemany(upsert_statement([_dollar(i + 1) for i in range(len(WRITTEN_COLUMNS))]), rows)
                unreferenced = [r[2] for r in found if r[3]]  # appended here: those no row took go below
            if unreferenced:  # this transaction's own appends, seen by nobody else yet: no lock to take
                await conn.execute(_DELETE_UNREFERENCED, unreferenced)
            if targeted:
                await conn.executemany(SUPERSEDED.format("$1", "$2", "$3"), targeted)
            # The create intents these outcomes settle (an intent outlives its create until the outcome is kept).
            await conn.execute("DELETE FROM create_intents c USING unnest($1::text[], $2::text[], $3::text[]) "
                               "AS k(source, message_id, action) WHERE c.source = k.source "
                               "AND c.message_id = k.message_id AND c.action = k.action",
                               [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
            created = sorted({(o.object or "", o.record_id) for o in outcomes if o.created and o.record_id})
            if created:  # the record intents these rows saying created close
                await conn.execute("DELETE FROM record_intents r USING unnest($1::text[], $2::text[]) AS k(object, "
                                   "record_id) WHERE r.object = k.object AND r.record_id = k.record_id",
                                   [c[0] for c in created], [c[1] for c in created])

    async def record_intents(self, intents: Sequence[tuple[str, str, str, str, str]]) -> None:
        if intents:  # by key, and stable: of a key given twice, the first is kept (DO NOTHING)
            rows = sorted(intents, key=lambda i: (i[0], i[1], i[2]))
            await self.pool.execute(_CREATE_INTENTS, *_columns(rows, 5), utcnow())

    async def settle_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        await self._settle(_SETTLE_CREATES, _CREATES_GONE, settled)

    async def open_intents(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str | None]:
        rows = await self.pool.fetch("SELECT message_id, record_id FROM create_intents WHERE source = $1 "
                                     "AND action = $2 AND message_id = ANY($3::text[])", source, action,
                                     list(message_ids))
        return {r["message_id"]: r["record_id"] for r in rows}

    async def record_key_intents(self, intents: Sequence[tuple[str, str, str]]) -> None:
        if intents:  # each key once: ON CONFLICT DO UPDATE may touch a row once per statement
            await self.pool.execute(_KEY_INTENTS, *_columns(sorted(set(intents)), 3), utcnow())

    async def settle_key_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        await self._settle(_SETTLE_KEYS, _KEYS_GONE, settled)

    async def _settle(self, update: str, delete: str, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        """Intents keyed by their first three values: those created get their Id (the last one given for a
        key), then those certainly not created go; one statement each, in one transaction when both run."""
        made = {(a, b, c): r for a, b, c, r in settled if r}
        gone = list(dict.fromkeys((a, b, c) for a, b, c, r in settled if not r))
        statements = [(update, _columns([(*k, r) for k, r in made.items()], 4))] if made else []
        statements += [(delete, _columns(gone, 3))] if gone else []
        if len(statements) == 1:  # the usual case: no transaction of its own (two round trips fewer)
            await self.pool.execute(statements[0][0], *statements[0][1])
        elif statements:
            async with self.pool.acquire() as conn, conn.transaction():
                for sql, args in statements:
                    await conn.execute(sql, *args)

    async def open_key_intents(self, connection: str, object: str, keys: Sequence[str]
                               ) -> dict[str, tuple[str | None, datetime]]:
        rows = await self.pool.fetch("SELECT record_key, record_id, created_at FROM record_intents WHERE "
                                     "connection = $1 AND object = $2 AND record_key = ANY($3::text[])",
                                     connection, object, list(keys))
        return {r["record_key"]: (r["record_id"], r["created_at"]) for r in rows}

    async def rows(self, where: SyncLogFilter = ANY, *, limit: int = 100,
                   offset: int = 0) -> list[SyncLogRow]:
        clause, params = where_sql(where, _dollar)
        n = len(params)
        found = await self.pool.fetch(page_statement(clause, f"${n + 1}", f"${n + 2}"), *params, limit, offset)
        return [row_from_values(tuple(r)) for r in found]

    async def row(self, row_id: int) -> SyncLogRow | None:
        found = await self.pool.fetchrow(row_statement("$1"), row_id)
        return row_from_values(tuple(found)) if found else None

    async def counts(self, where: SyncLogFilter = ANY) -> dict[Status, int]:
        clause, params = where_sql(where, _dollar, with_status=False)
        found = await self.pool.fetch(f"SELECT status, COUNT(*) FROM sync_log {clause} GROUP BY status", *params)
        counts = {status: 0 for status in Status}
        counts.update({Status(r[0]): int(r[1]) for r in found})
        return counts

    async def created_records(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str]:
        rows = await self.pool.fetch(
            "SELECT message_id, record_id FROM sync_log WHERE source = $1 AND action = $2 "
            "AND message_id = ANY($3::text[]) AND status = 'succeeded' AND created", source, action, list(message_ids))
        return {r["message_id"]: r["record_id"] for r in rows if r["record_id"]}

    async def value_times(self, object: str, record_ids: Sequence[str], fields: Sequence[str]
                          ) -> dict[str, dict[str, datetime]]:
        rows = await self.pool.fetch(
            "SELECT record_id, field, event_time FROM value_times WHERE object = $1 AND record_id = ANY($2::text[]) "
            "AND field = ANY($3::text[])", object, list(record_ids), list(fields))
        out: dict[str, dict[str, datetime]] = {}
        for r in rows:
            out.setdefault(r["record_id"], {})[r["field"]] = r["event_time"]
        return out

    async def record_value_times(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        newest: dict[tuple[str, str, str], datetime] = {}  # each key once (ON CONFLICT touches a row once)
        for o, r, f, t in rows:
            if (o, r, f) not in newest or t > newest[(o, r, f)]:
                newest[(o, r, f)] = t
        if newest:
            await self.pool.execute(_VALUE_TIMES, *_columns([(*k, t) for k, t in sorted(newest.items())], 4))

    async def record_written_values(self, rows: Sequence[tuple[str, str, str, Any]], *,
                                    in_flight: WritesNote | None = None) -> None:
        if not rows and in_flight is None:
            return
        latest = {(o, r, f): v for o, r, f, v in rows}  # each key once, its last value
        values = [(*k, json.dumps(v, default=str)) for k, v in sorted(latest.items())]
        async with self.pool.acquire() as conn, conn.transaction():
            if values:
                await conn.execute(_WRITTEN_VALUES, *_columns(values, 4), utcnow())
            if in_flight is not None:
                await conn.executemany("DELETE FROM written_values WHERE object = $1 AND record_id = $2 AND "
                                       "field = $3", [list(key) for key in in_flight.rows()])

    async def begin_writes(self, objects: Mapping[str, Sequence[str]]) -> WritesNote:
        now = utcnow()
        note, rows = in_flight_rows(objects, now)
        await self.pool.executemany("INSERT INTO written_values (object, record_id, field, value, written_at) "
                                    "VALUES ($1, $2, $3, $4, $5)", [[*row, now] for row in rows])
        return note

    async def writes_in_flight(self, object: str) -> list[InFlight]:
        # the record_id range keeps this to the notes' rows of the primary key's index
        found = await self.pool.fetch("SELECT record_id, value FROM written_values WHERE object = $1 AND "
                                      "record_id >= $2 AND record_id < $3 AND field = $4", object.lower(),
                                      *IN_FLIGHT_IDS, IN_FLIGHT)
        return sorted((in_flight_note(r["record_id"], r["value"]) for r in found), key=lambda n: n.since)

    async def written_values(self, object: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = await self.pool.fetch("SELECT record_id, field, value FROM written_values WHERE object = $1 AND "
                                     "record_id = ANY($2::text[])", object, list(record_ids))
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            out.setdefault(r["record_id"], {})[r["field"]] = json.loads(r["value"])
        return out

    async def sync_back_states(self, source: str | None = None) -> list[SyncBackState]:
        rows = await self.pool.fetch("SELECT source, object, watermark, polled_at, last_error, published, echoes "
                                     "FROM sync_back_state WHERE $1::text IS NULL OR source = $1 "
                                     "ORDER BY source, object", source)
        return [SyncBackState(*tuple(r)) for r in rows]

    async def seen_records(self, source: str, object: str, record_ids: Sequence[str]) -> dict[str, SeenRecord]:
        rows = await self.pool.fetch("SELECT record_id, modstamp, vals FROM sync_back_records WHERE source = $1 "
                                     "AND object = $2 AND record_id = ANY($3::text[])", source, object,
                                     list(record_ids))
        return {r["record_id"]: SeenRecord(r["modstamp"], json.loads(r["vals"])) for r in rows}

    async def save_sync_back(self, progress: SyncBackProgress) -> None:
        p = progress
        async with self.pool.acquire() as conn, conn.transaction():
            if p.records:
                await conn.executemany(
                    "INSERT INTO sync_back_records (source, object, record_id, modstamp, vals) VALUES ($1, $2, $3, "
                    "$4, $5) ON CONFLICT (source, object, record_id) DO UPDATE SET modstamp = excluded.modstamp, "
                    "vals = excluded.vals WHERE excluded.modstamp >= sync_back_records.modstamp",
                    [[p.source, p.object, rid, stamp, json.dumps(vals, default=str, sort_keys=True)]
                     for rid, stamp, vals in p.records])
            await conn.execute(
                "INSERT INTO sync_back_state (source, object, watermark, polled_at, last_error, published, echoes) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source, object) DO UPDATE SET "
                "watermark = CASE WHEN excluded.watermark IS NULL OR (sync_back_state.watermark IS NOT NULL AND "
                "excluded.watermark < sync_back_state.watermark) THEN sync_back_state.watermark "
                "ELSE excluded.watermark END, polled_at = excluded.polled_at, last_error = excluded.last_error, "
                "published = sync_back_state.published + excluded.published, "
                "echoes = sync_back_state.echoes + excluded.echoes",
                p.source, p.object, p.watermark, utcnow(), p.error, p.published, p.echoes)

    async def dead_letter(self, source: str, reason: str, payload: str, error_code: str | None = None) -> int:
        return int(await self.pool.fetchval(
            "INSERT INTO dead_letters (source, reason, error_code, payload, created_at) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id", source, reason, error_code, payload, utcnow()))

    async def dead_letters(self, *, replayed: bool | None = False, limit: int = 1000) -> list[DeadLetter]:
        clause = {None: "", False: "WHERE replayed_at IS NULL", True: "WHERE replayed_at IS NOT NULL"}[replayed]
        found = await self.pool.fetch(
            "SELECT id, source, reason, error_code, payload, created_at, replayed_at FROM dead_letters "
            f"{clause} ORDER BY id LIMIT $1", limit)
        return [DeadLetter(*tuple(r)) for r in found]

    async def mark_replayed(self, ids: Sequence[int]) -> None:
        if ids:
            await self.pool.execute("UPDATE dead_letters SET replayed_at = $1 WHERE id = ANY($2::bigint[])",
                                    utcnow(), list(ids))

    async def prune_outcomes(self, before: datetime, *, failed: bool, limit: int) -> int:
        which = "status = 'failed'" if failed else "status <> 'failed'"
        # SKIP LOCKED: a row being replayed (or pruned by another replica) right now is left for the next run
        async with self.pool.acquire() as conn, conn.transaction():
            gone = await conn.fetch(f"DELETE FROM sync_log WHERE id IN (SELECT id FROM sync_log WHERE "
                                    f"updated_at < $1 AND {which} LIMIT $2 FOR UPDATE SKIP LOCKED) "
                                    "RETURNING event_id", before, limit)
            # a second statement, so it sees those rows gone (one statement's CTEs share one snapshot)
            ids = sorted({r[0] for r in gone if r[0] is not None})
            locked = [r[0] for r in await conn.fetch(_LOCK_UNREFERENCED, ids)] if ids else []
            if locked:
                await conn.execute(_DELETE_UNREFERENCED, locked)
        return len(gone)

    async def prune_dead_letters(self, before: datetime, *, limit: int) -> int:
        done = await self.pool.execute("DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE "
                                       "created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)", before, limit)
        return int(done.split()[-1])
