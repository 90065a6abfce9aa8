"""Both sync-log stores keep one row per (event, action, record) — a record per row under
`on_many_matches: all` — and keep the newest event time of `most_recent` values (SQLite and a real
PostgreSQL). A log made before that key is migrated: test_migrations.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.synclog import SyncLog, SyncLogFilter


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


async def test_value_times_given_twice_in_one_call_keep_the_newest(log: SyncLog) -> None:
    """Each store writes a call's rows in one statement: a record and field given twice keeps its newest time,
    in either order, as separate calls would."""
    newer = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    older = newer - timedelta(hours=1)
    await log.record_value_times([("Lead", "00Q8c0000000001AAA", "Description", newer),
                                  ("Lead", "00Q8c0000000001AAA", "Description", older),
                                  ("Lead", "00Q8c0000000001AAA", "Title", older),
                                  ("Lead", "00Q8c0000000001AAA", "Title", newer)])
    found = await log.value_times("Lead", ["00Q8c0000000001AAA"], ["Description", "Title"])
    assert found == {"00Q8c0000000001AAA": {"Description": newer, "Title": newer}}
