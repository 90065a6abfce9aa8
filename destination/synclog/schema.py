"""Statements shared by the SQLite and PostgreSQL sync logs (portable SQL only); the tables themselves are
made by migrations.py."""

from __future__ import annotations

from .base import COLUMNS


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
