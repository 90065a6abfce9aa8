"""The sync log's schema, as an ordered list of versioned migrations applied at open (SQLite and PostgreSQL).

A database records the versions applied to it in `schema_version` (one row each). At open, every migration
newer than its version runs in its own transaction, which also records it; PostgreSQL takes an advisory
lock first and SQLite a write lock, so two processes starting at once migrate once (the second finds the
work done). A database made before versioning (no `schema_version`, but a `sync_log` table) is recognised
by its shape and recorded as version 1 or 2, then migrated from there.

To change the schema: append a Migration with the next version to MIGRATIONS (never edit a released one);
give `sqlite` statements too when SQLite needs other SQL than PostgreSQL (it cannot alter constraints, for
instance). Statements are templates: `{serial}`, `{timestamp}` and `{boolean}` become the dialect's types,
`{without_rowid}` SQLite's WITHOUT ROWID (a table that is its primary key's B-tree).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import asyncpg

Dialect = Literal["sqlite", "postgres"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"serial": "INTEGER", "timestamp": "TEXT", "boolean": "INTEGER", "without_rowid": " WITHOUT ROWID"},
    "postgres": {"serial": "BIGSERIAL", "timestamp": "TIMESTAMPTZ", "boolean": "BOOLEAN", "without_rowid": ""},
}


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its statements run in one transaction with the row that records it."""

    version: int
    description: str
    statements: tuple[str, ...]
    sqlite: tuple[str, ...] | None = None  # when SQLite needs other statements than PostgreSQL

    def sql(self, dialect: Dialect) -> list[str]:
        """The statements for a dialect, with its types filled in."""
        chosen = self.sqlite if dialect == "sqlite" and self.sqlite is not None else self.statements
        return [s.format(**_TYPES[dialect]) for s in chosen]


_SYNC_LOG_INDEXES = (
    "CREATE INDEX sync_log_status ON sync_log (status, updated_at)",
    "CREATE INDEX sync_log_record ON sync_log (record_id)",
    "CREATE INDEX sync_log_email ON sync_log (email)",
    "CREATE INDEX sync_log_updated ON sync_log (updated_at)",
)

#: The sync_log table keyed by (source, message_id, action, target) (version 2 on).
_SYNC_LOG_V2 = """CREATE TABLE sync_log (
    id {serial} PRIMARY KEY,
    source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',
    object TEXT, operation TEXT, record_id TEXT, created {boolean}, status TEXT NOT NULL,
    error_code TEXT, message TEXT, fields TEXT NOT NULL, reason TEXT,
    attempts INTEGER NOT NULL, warnings TEXT NOT NULL, email TEXT, event TEXT NOT NULL,
    first_seen {timestamp} NOT NULL, updated_at {timestamp} NOT NULL,
    UNIQUE (source, message_id, action, target))"""

_VALUE_TIMES = """CREATE TABLE IF NOT EXISTS value_times (
    object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL, event_time {timestamp} NOT NULL,
    PRIMARY KEY (object, record_id, field))"""

# A create's intent, recorded before it is sent: record_id NULL = fate unknown (reconcile by lookup before
# resending), set = created. Removed when the event's outcome is recorded.
_CREATE_INTENTS = """CREATE TABLE IF NOT EXISTS create_intents (
    source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,
    matchers TEXT NOT NULL, record_id TEXT, created_at {timestamp} NOT NULL,
    PRIMARY KEY (source, message_id, action))"""

#: sync_log's columns as version 2 made them (frozen: later versions change the table, not this step).
_V2_COLUMNS = ("source", "message_id", "action", "target", "object", "operation", "record_id", "created", "status",
               "error_code", "message", "fields", "reason", "attempts", "warnings", "email", "event",
               "first_seen", "updated_at")
_OLD_VALUES = ", ".join("''" if c == "target" else c for c in _V2_COLUMNS)

# Version 6: an event is kept once, however many outcome rows (actions, records) it has.
_EVENTS = """CREATE TABLE sync_log_events (
    source TEXT NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (source, message_id)){without_rowid}"""
# each event's body from its latest outcome row (a messageId's rows almost always carry the same event)
_MOVE_EVENTS = """INSERT INTO sync_log_events (source, message_id, body)
    SELECT s.source, s.message_id, s.event FROM sync_log s
    WHERE s.id = (SELECT MAX(t.id) FROM sync_log t WHERE t.source = s.source AND t.message_id = s.message_id)"""
_V6 = (
    _EVENTS,
    _MOVE_EVENTS,
    "ALTER TABLE sync_log DROP COLUMN event",
    # nothing reads by email alone: `search` ORs it with message_id, which no index leads, so that query
    # scans by updated_at whatever the email index says
    "DROP INDEX IF EXISTS sync_log_email",
)

# Version 7: events appended in id order and referred to by id. Keyed by (source, messageId), every new event
# went into a random page of that B-tree (messageIds are mostly UUIDs), and each page a commit touches is
# written whole to the WAL and again at the checkpoint: ~24 KB written per event against ~10 in id order
# (bench/synclog_write.py --ids random). The key's temporary index makes the backfill a join, not a scan.
_EVENTS_BY_ID = """CREATE TABLE sync_log_events_v7 (
    id {serial} PRIMARY KEY, source TEXT NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL)"""
_V7_SQLITE = (
    _EVENTS_BY_ID,
    "INSERT INTO sync_log_events_v7 (source, message_id, body) "
    "SELECT source, message_id, body FROM sync_log_events ORDER BY source, message_id",
    "CREATE INDEX sync_log_events_v7_key ON sync_log_events_v7 (source, message_id)",
    "ALTER TABLE sync_log ADD COLUMN event_id INTEGER",
    "UPDATE sync_log SET event_id = (SELECT e.id FROM sync_log_events_v7 e WHERE e.source = sync_log.source "
    "AND e.message_id = sync_log.message_id)",
    "DROP INDEX sync_log_events_v7_key",
    "DROP TABLE sync_log_events",
    "ALTER TABLE sync_log_events_v7 RENAME TO sync_log_events",
)
# PostgreSQL's table is a heap already (appended, the key a separate index): it gains the id the rows refer to,
# and the key's index goes once they do.
_V7_POSTGRES = (
    "ALTER TABLE sync_log_events ADD COLUMN id BIGSERIAL",
    "ALTER TABLE sync_log ADD COLUMN event_id BIGINT",
    "UPDATE sync_log s SET event_id = e.id FROM sync_log_events e WHERE e.source = s.source "
    "AND e.message_id = s.message_id",
    "ALTER TABLE sync_log_events DROP CONSTRAINT sync_log_events_pkey",
    "ALTER TABLE sync_log_events ADD PRIMARY KEY (id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sync log and dead letters (the schema before versioning: one row per event and action)", (
        """CREATE TABLE sync_log (
            id {serial} PRIMARY KEY,
            source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL,
            object TEXT, operation TEXT, record_id TEXT, created {boolean}, status TEXT NOT NULL,
            error_code TEXT, message TEXT, fields TEXT NOT NULL, reason TEXT,
            attempts INTEGER NOT NULL, warnings TEXT NOT NULL, email TEXT, event TEXT NOT NULL,
            first_seen {timestamp} NOT NULL, updated_at {timestamp} NOT NULL,
            UNIQUE (source, message_id, action))""",
        *_SYNC_LOG_INDEXES,
        """CREATE TABLE dead_letters (
            id {serial} PRIMARY KEY, source TEXT NOT NULL, reason TEXT NOT NULL, error_code TEXT,
            payload TEXT NOT NULL, created_at {timestamp} NOT NULL, replayed_at {timestamp})""",
    )),
    Migration(2, "rows keyed by (event, action, target): one per record under on_many_matches: all; "
                 "value_times for most_recent; create intents", (
        "ALTER TABLE sync_log ADD COLUMN target TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sync_log DROP CONSTRAINT IF EXISTS sync_log_source_message_id_action_key",
        "ALTER TABLE sync_log ADD CONSTRAINT sync_log_source_message_id_action_target_key "
        "UNIQUE (source, message_id, action, target)",
        _VALUE_TIMES,
        _CREATE_INTENTS,
    ), sqlite=(
        # SQLite cannot alter a UNIQUE constraint: the table is rebuilt (its indexes go with the old one)
        "ALTER TABLE sync_log RENAME TO sync_log_old",
        _SYNC_LOG_V2,
        f"INSERT INTO sync_log (id, {', '.join(_V2_COLUMNS)}) SELECT id, {_OLD_VALUES} FROM sync_log_old",
        "DROP TABLE sync_log_old",
        *_SYNC_LOG_INDEXES,
        _VALUE_TIMES,
        _CREATE_INTENTS,
    )),
    Migration(3, "retention: dead letters pruned by age", (
        "CREATE INDEX dead_letters_created ON dead_letters (created_at)",
    )),
    Migration(4, "two-way sync: values the push direction wrote, change-feed watermarks, last published versions", (
        # What the push direction last wrote to each field of a record (JSON text), for echo suppression; only
        # objects a source syncs back are recorded.
        """CREATE TABLE written_values (
            object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
            written_at {timestamp} NOT NULL, PRIMARY KEY (object, record_id, field))""",
        # Per (source, object): the change feed's watermark (a SystemModstamp in wire format), advanced only
        # after the changes up to it were published, with counters and the last error for `sync-back status`.
        """CREATE TABLE sync_back_state (
            source TEXT NOT NULL, object TEXT NOT NULL, watermark TEXT, polled_at {timestamp},
            last_error TEXT, published INTEGER NOT NULL DEFAULT 0, echoes INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, object))""",
        # The last published version of each record: its SystemModstamp (repeats inside the overlap window are
        # dropped by it) and its published values (JSON; a change's previous values and changed fields).
        """CREATE TABLE sync_back_records (
            source TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT NOT NULL, modstamp TEXT NOT NULL,
            vals TEXT NOT NULL, PRIMARY KEY (source, object, record_id))""",
    )),
    Migration(5, "record intents: an upsert's create kept by record key until a row saying created is kept", (
        # One per record an upsert is about to create (connection, object, its matcher values): record_id NULL
        # = fate unknown, set = created. Removed when an outcome saying created for that record is recorded.
        """CREATE TABLE record_intents (
            connection TEXT NOT NULL, object TEXT NOT NULL, record_key TEXT NOT NULL, record_id TEXT,
            created_at {timestamp} NOT NULL, PRIMARY KEY (connection, object, record_key))""",
        "CREATE INDEX record_intents_record ON record_intents (object, record_id)",
    )),
    Migration(6, "narrow outcome rows: each event kept once in sync_log_events, not on every outcome row; "
                 "the unused email index dropped", _V6),
    Migration(7, "events kept in id order, each outcome row referring to its event by id (no index on random "
                 "messageIds: a page write per event)", _V7_POSTGRES, sqlite=_V7_SQLITE),
)

LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at {timestamp} NOT NULL)"""

#: Held while a PostgreSQL database is migrated (the same key the DDL took before versioning).
ADVISORY_LOCK = 7426001


class SchemaTooNew(SystemExit):
    """The database was migrated by a newer release than this one, whose tables this one could misread: the
    process stops at open with the message (a SystemExit, like other start-up refusals)."""


def _baseline(has_sync_log: bool, has_target: bool) -> int:
    """The version of a database made before versioning, from its shape (0: nothing there yet)."""
    if not has_sync_log:
        return 0
    return 2 if has_target else 1


def _pending(current: int) -> list[Migration]:
    if current > LATEST:
        raise SchemaTooNew(f"the sync log's schema is at version {current}, newer than this release knows "
                           f"({LATEST}): run a release at least as new as the one that migrated it")
    return [m for m in MIGRATIONS if m.version > current]


def _check_order() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1)), "migrations are numbered 1, 2, 3, … in order"


_check_order()


def migrate_sqlite(db: sqlite3.Connection) -> int:
    """Bring a SQLite sync log (autocommit connection) to LATEST; returns the version it was at."""
    def begin() -> int:
        db.execute("BEGIN IMMEDIATE")  # the write lock: another process migrating waits here
        return int(db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    db.execute(_VERSION_TABLE.format(**_TYPES["sqlite"]))
    found = begin()
    if found == 0:
        has_sync_log = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_log'").fetchone()
        columns = {row[1] for row in db.execute("PRAGMA table_info(sync_log)")}
        found = _baseline(bool(has_sync_log), "target" in columns)
        if found:
            _record_sqlite(db, found, "found at open (made before schema versions)")
    db.execute("COMMIT")
    for migration in _pending(found):
        if begin() >= migration.version:  # another process applied it meanwhile
            db.execute("COMMIT")
            continue
        try:
            for statement in migration.sql("sqlite"):
                db.execute(statement)
            _record_sqlite(db, migration.version, migration.description)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return found


def _record_sqlite(db: sqlite3.Connection, version: int, description: str) -> None:
    db.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
               (version, description, datetime.now(UTC).isoformat()))


async def migrate_postgres(conn: asyncpg.Connection) -> int:
    """Bring a PostgreSQL sync log to LATEST under an advisory lock; returns the version it was at."""
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK)
    try:
        await conn.execute(_VERSION_TABLE.format(**_TYPES["postgres"]))
        found = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        if found == 0:
            has_sync_log = await conn.fetchval("SELECT to_regclass('sync_log') IS NOT NULL")
            has_target = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'sync_log' AND column_name = 'target')")
            found = _baseline(bool(has_sync_log), bool(has_target))
            if found:
                await _record_postgres(conn, found, "found at open (made before schema versions)")
        for migration in _pending(found):
            async with conn.transaction():
                for statement in migration.sql("postgres"):
                    await conn.execute(statement)
                await _record_postgres(conn, migration.version, migration.description)
        return found
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK)


async def _record_postgres(conn: asyncpg.Connection, version: int, description: str) -> None:
    await conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, now())",
                       version, description)
