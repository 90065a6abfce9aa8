"""Table definitions shared by the SQLite and PostgreSQL sync logs (portable SQL only)."""

from __future__ import annotations

from .base import COLUMNS


def create_statements(*, serial: str, timestamp: str, boolean: str) -> list[str]:
    """DDL with the dialect's id, timestamp and boolean types filled in."""
    return [
        f"""CREATE TABLE IF NOT EXISTS sync_log (
            id {serial} PRIMARY KEY,
            source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',
            object TEXT, operation TEXT, record_id TEXT, created {boolean}, status TEXT NOT NULL,
            error_code TEXT, message TEXT, fields TEXT NOT NULL, reason TEXT,
            attempts INTEGER NOT NULL, warnings TEXT NOT NULL, email TEXT, event TEXT NOT NULL,
            first_seen {timestamp} NOT NULL, updated_at {timestamp} NOT NULL,
            UNIQUE (source, message_id, action, target))""",
        "CREATE INDEX IF NOT EXISTS sync_log_status ON sync_log (status, updated_at)",
        "CREATE INDEX IF NOT EXISTS sync_log_record ON sync_log (record_id)",
        "CREATE INDEX IF NOT EXISTS sync_log_email ON sync_log (email)",
        "CREATE INDEX IF NOT EXISTS sync_log_updated ON sync_log (updated_at)",
        f"""CREATE TABLE IF NOT EXISTS dead_letters (
            id {serial} PRIMARY KEY, source TEXT NOT NULL, reason TEXT NOT NULL, error_code TEXT,
            payload TEXT NOT NULL, created_at {timestamp} NOT NULL, replayed_at {timestamp})""",
        f"""CREATE TABLE IF NOT EXISTS value_times (
            object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL, event_time {timestamp} NOT NULL,
            PRIMARY KEY (object, record_id, field))""",
        # A create's intent, recorded before it is sent: record_id NULL = fate unknown (reconcile by lookup
        # before resending), set = created. Removed when the event's outcome is recorded.
        f"""CREATE TABLE IF NOT EXISTS create_intents (
            source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,
            matchers TEXT NOT NULL, record_id TEXT, created_at {timestamp} NOT NULL,
            PRIMARY KEY (source, message_id, action))""",
        # Two-way sync (destination/sync_back/). Added with CREATE TABLE IF NOT EXISTS: an existing log gains
        # them at its next open. What the push direction last wrote to each field of a record (JSON text),
        # for echo suppression; only objects a source syncs back are recorded.
        f"""CREATE TABLE IF NOT EXISTS written_values (
            object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
            written_at {timestamp} NOT NULL, PRIMARY KEY (object, record_id, field))""",
        # Per (source, object): the change feed's watermark (a SystemModstamp in wire format), advanced only
        # after the changes up to it were published, with counters and the last error for `sync-back status`.
        f"""CREATE TABLE IF NOT EXISTS sync_back_state (
            source TEXT NOT NULL, object TEXT NOT NULL, watermark TEXT, polled_at {timestamp},
            last_error TEXT, published INTEGER NOT NULL DEFAULT 0, echoes INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, object))""",
        # The last published version of each record: its SystemModstamp (repeats inside the overlap window are
        # dropped by it) and its published values (JSON; a change's previous values and changed fields).
        """CREATE TABLE IF NOT EXISTS sync_back_records (
            source TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT NOT NULL, modstamp TEXT NOT NULL,
            vals TEXT NOT NULL, PRIMARY KEY (source, object, record_id))""",
    ]


#: A sync log made before outcomes had a `target` (one row per record under `on_many_matches: all`):
#: its rows are copied into the current table (target '') once, at open.
_OLD_VALUES = ", ".join("''" if c == "target" else c for c in COLUMNS)
OLD_KEY_COPY = f"INSERT INTO sync_log (id, {', '.join(COLUMNS)}) SELECT id, {_OLD_VALUES} FROM sync_log_old"


def upsert_statement(placeholder: list[str], rows: int = 1) -> str:
    """INSERT of `rows` outcomes (`placeholder` for one row; SQLite numbers `?` itself) that updates the
    existing row of a replayed (event, action, target).

    A redelivered event that finds nothing left to change (skipped) does not overwrite its earlier
    `succeeded` row: the event's terminal outcome stays the write that happened. A row that says the
    event created its record keeps saying so when a redelivery of that event succeeds without creating."""
    updated = [c for c in COLUMNS if c not in ("source", "message_id", "action", "target", "first_seen", "attempts",
                                               "created")]
    sets = ", ".join(f"{c} = excluded.{c}" for c in updated)
    values = ", ".join([f"({', '.join(placeholder)})"] * rows)
    return (f"INSERT INTO sync_log ({', '.join(COLUMNS)}) VALUES {values} "
            f"ON CONFLICT (source, message_id, action, target) DO UPDATE SET {sets}, "
            "created = CASE WHEN sync_log.created AND excluded.status = 'succeeded' THEN sync_log.created "
            "ELSE excluded.created END, "
            "attempts = sync_log.attempts + excluded.attempts "
            "WHERE NOT (sync_log.status = 'succeeded' AND excluded.status = 'skipped')")


#: Rows of an (event, action) written before its records were known (target ''), once that (event, action)
#: has rows for its records: a replay of `on_many_matches: all` that reached them supersedes the earlier row.
SUPERSEDED = "DELETE FROM sync_log WHERE source = {0} AND message_id = {1} AND action = {2} AND target = ''"
