"""Table definitions shared by the SQLite and PostgreSQL sync logs (portable SQL only)."""

from __future__ import annotations

from .base import COLUMNS


def create_statements(*, serial: str, timestamp: str, boolean: str) -> list[str]:
    """DDL with the dialect's id, timestamp and boolean types filled in."""
    return [
        f"""CREATE TABLE IF NOT EXISTS sync_log (
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
        f"""CREATE TABLE IF NOT EXISTS dead_letters (
            id {serial} PRIMARY KEY, source TEXT NOT NULL, reason TEXT NOT NULL, error_code TEXT,
            payload TEXT NOT NULL, created_at {timestamp} NOT NULL, replayed_at {timestamp})""",
        # A create's intent, recorded before it is sent: record_id NULL = fate unknown (reconcile by lookup
        # before resending), set = created. Removed when the event's outcome is recorded.
        f"""CREATE TABLE IF NOT EXISTS create_intents (
            source TEXT NOT NULL, message_id TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,
            matchers TEXT NOT NULL, record_id TEXT, created_at {timestamp} NOT NULL,
            PRIMARY KEY (source, message_id, action))""",
    ]


def upsert_statement(placeholder: list[str], rows: int = 1) -> str:
    """INSERT of `rows` outcomes (`placeholder` for one row; SQLite numbers `?` itself) that updates the
    existing row of a replayed (event, action).

    A redelivered event that finds nothing left to change (skipped) does not overwrite its earlier
    `succeeded` row: the event's terminal outcome stays the write that happened."""
    updated = [c for c in COLUMNS if c not in ("source", "message_id", "action", "first_seen", "attempts")]
    sets = ", ".join(f"{c} = excluded.{c}" for c in updated)
    values = ", ".join([f"({', '.join(placeholder)})"] * rows)
    return (f"INSERT INTO sync_log ({', '.join(COLUMNS)}) VALUES {values} "
            f"ON CONFLICT (source, message_id, action) DO UPDATE SET {sets}, "
            "attempts = sync_log.attempts + excluded.attempts "
            "WHERE NOT (sync_log.status = 'succeeded' AND excluded.status = 'skipped')")
