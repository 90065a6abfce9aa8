"""Statements shared by the SQLite and PostgreSQL sync logs (portable SQL only); the tables themselves are
made by migrations.py."""

from __future__ import annotations

from .base import COLUMNS, WRITTEN_COLUMNS


def upsert_statement(placeholder: list[str], rows: int = 1) -> str:
    """INSERT of `rows` outcomes (WRITTEN_COLUMNS; `placeholder` for one row; SQLite numbers `?` itself) that
    updates the existing row of a replayed (event, action, target).

    A redelivered event that finds nothing left to change (skipped) does not overwrite its earlier
    `succeeded` row: the event's terminal outcome stays the write that happened. A row that says the
    event created its record keeps saying so when a redelivery of that event succeeds without creating."""
    values = ", ".join([f"({', '.join(placeholder)})"] * rows)
    return f"INSERT INTO sync_log ({', '.join(WRITTEN_COLUMNS)}) VALUES {values} {UPSERT_CONFLICT}"


def _conflict() -> str:
    kept = ("source", "message_id", "action", "target", "first_seen", "attempts", "created", "event_id")
    updated = [c for c in WRITTEN_COLUMNS if c not in kept]
    sets = ", ".join(f"{c} = excluded.{c}" for c in updated)
    # A row keeps the event it refers to. Two PostgreSQL replicas keeping the same new event at once each
    # append it; the one whose row waited on the other's finds its own copy referred to by no row and removes
    # it (postgres.record). Taking the newer copy instead would leave the older one to no row, unfound.
    return (f"ON CONFLICT (source, message_id, action, target) DO UPDATE SET {sets}, "
            "event_id = COALESCE(sync_log.event_id, excluded.event_id), "
            "created = CASE WHEN sync_log.created AND excluded.status = 'succeeded' THEN sync_log.created "
            "ELSE excluded.created END, "
            "attempts = sync_log.attempts + excluded.attempts "
            "WHERE NOT (sync_log.status = 'succeeded' AND excluded.status = 'skipped')")


#: What upsert_statement does with a row whose (event, action, target) is already there.
UPSERT_CONFLICT = _conflict()


#: Rows of an (event, action) written before its records were known (target ''), once that (event, action)
#: has rows for its records: a replay of `on_many_matches: all` that reached them supersedes the earlier row.
SUPERSEDED = "DELETE FROM sync_log WHERE source = {0} AND message_id = {1} AND action = {2} AND target = ''"


#: The columns row_from_values reads: the outcome row `s` and its event's body from `e`.
_ROW = ", ".join(["s.id", *(f"s.{c}" for c in COLUMNS), "e.body"])
_EVENT_JOIN = "LEFT JOIN sync_log_events e ON e.id = s.event_id"


def page_statement(clause: str, limit: str, offset: str) -> str:
    """A page of rows under a WHERE `clause` (on sync_log's own columns), most recently updated first, each
    with its event: the page is chosen from the narrow table first, then only its rows look up their events."""
    return (f"SELECT {_ROW} FROM (SELECT * FROM sync_log {clause} ORDER BY updated_at DESC, id DESC "
            f"LIMIT {limit} OFFSET {offset}) s {_EVENT_JOIN} ORDER BY s.updated_at DESC, s.id DESC")


def row_statement(placeholder: str) -> str:
    """One row by id, with its event."""
    return f"SELECT {_ROW} FROM sync_log s {_EVENT_JOIN} WHERE s.id = {placeholder}"
