"""Both sync-log stores (SQLite and a real PostgreSQL) behave the same through the one interface."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.synclog import SyncLog, SyncLogFilter, open_sync_log
from destination.synclog.base import utcnow
from destination.synclog.sqlite import SqliteSyncLog


def event(n: int, email: str | None = None, source: str = "web") -> Event:
    body = {"type": "identify", "messageId": f"m-{n}", "userId": f"u{n}",
            "traits": {"email": email or f"user{n}@example.com"}}
    return Event(source, body)


async def test_every_outcome_is_stored_with_its_event_and_salesforce_error(log: SyncLog) -> None:
    ok = Outcome.succeeded(event(1), record_id="00Q8c0000000001AAA", created=True, action="leads",
                           object="Lead", operation="upsert")
    bad = Outcome.failed(event(2), "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                         ("LastName",), action="leads", object="Lead", operation="upsert")
    skip = Outcome.skipped(event(3), "NO_ACTION_MATCHED")
    await log.record([ok, bad, skip])

    rows = {r.message_id: r for r in await log.rows()}
    assert rows["m-1"].status is Status.SUCCEEDED and rows["m-1"].record_id == "00Q8c0000000001AAA"
    assert rows["m-1"].created is True and rows["m-1"].event["traits"]["email"] == "user1@example.com"
    assert rows["m-2"].error_code == "REQUIRED_FIELD_MISSING" and rows["m-2"].fields == ("LastName",)
    assert rows["m-2"].message == "Required fields are missing: [LastName]"
    assert rows["m-3"].status is Status.SKIPPED and rows["m-3"].reason == "NO_ACTION_MATCHED"
    assert rows["m-3"].action == ""
    assert await log.counts() == {Status.SUCCEEDED: 1, Status.FAILED: 1, Status.SKIPPED: 1}


async def test_a_replayed_event_updates_its_row_and_adds_attempts(log: SyncLog) -> None:
    e = event(1)
    await log.record([Outcome.failed(e, "UNABLE_TO_LOCK_ROW", "locked", action="leads", attempts=3)])
    await log.record([Outcome.succeeded(e, record_id="00Q8c0000000001AAA", created=False, action="leads")])
    rows = await log.rows()
    assert len(rows) == 1
    assert rows[0].status is Status.SUCCEEDED and rows[0].attempts == 4 and rows[0].error_code is None
    assert rows[0].first_seen <= rows[0].updated_at


async def test_one_batch_with_an_event_twice_keeps_one_row_per_event_and_its_write(log: SyncLog) -> None:
    """A redelivery inside one batch of 150 outcomes: the later 'nothing to change' does not hide the write."""
    first = Outcome.succeeded(event(1), record_id="00Q8c0000000001AAA", created=True, action="leads")
    again = Outcome.skipped(event(1), "NOTHING_TO_CHANGE", action="leads", record_id="00Q8c0000000001AAA")
    others = [Outcome.succeeded(event(n), record_id=f"00Q8c{n:013d}", created=True, action="leads")
              for n in range(2, 150)]
    await log.record([first, *others[:70], again, *others[70:]])
    rows = await log.rows(limit=500)
    assert len(rows) == 149
    assert [r.status for r in rows if r.message_id == "m-1"] == [Status.SUCCEEDED]


async def test_filters_select_by_status_object_source_error_and_search(log: SyncLog) -> None:
    await log.record([
        Outcome.succeeded(event(1, "Ann@Example.com"), record_id="001A", created=True, object="Account",
                          action="accounts"),
        Outcome.failed(event(2), "STRING_TOO_LONG", "too long", object="Lead", action="leads"),
        Outcome.failed(event(3, source="app"), "INVALID_EMAIL_ADDRESS", "bad", object="Lead", action="leads"),
    ])
    assert [r.message_id for r in await log.rows(SyncLogFilter(status=Status.FAILED, source="app"))] == ["m-3"]
    assert [r.message_id for r in await log.rows(SyncLogFilter(error_code="STRING_TOO_LONG"))] == ["m-2"]
    assert [r.message_id for r in await log.rows(SyncLogFilter(object="Account"))] == ["m-1"]
    assert [r.message_id for r in await log.rows(SyncLogFilter(search="ann@example.com"))] == ["m-1"]
    assert [r.message_id for r in await log.rows(SyncLogFilter(search="001A"))] == ["m-1"]
    assert await log.counts(SyncLogFilter(object="Lead")) == {Status.SUCCEEDED: 0, Status.FAILED: 2,
                                                               Status.SKIPPED: 0}
    later = utcnow() + timedelta(minutes=1)
    assert await log.rows(SyncLogFilter(since=later)) == []
    assert len(await log.rows(SyncLogFilter(until=later))) == 3
    assert len(await log.rows(limit=2)) == 2 and len(await log.rows(limit=2, offset=2)) == 1
    first = (await log.rows(SyncLogFilter(search="m-2")))[0]
    assert (await log.row(first.id)) == first and await log.row(10**9) is None


async def test_a_create_that_succeeded_is_found_by_message_id_so_it_is_not_sent_again(log: SyncLog) -> None:
    await log.record([Outcome.succeeded(event(1), record_id="a008c0000000001AAA", created=True, action="survey"),
                      Outcome.succeeded(event(2), record_id="a008c0000000002AAA", created=False, action="survey"),
                      Outcome.failed(event(3), "DUPLICATE_VALUE", "dup", action="survey")])
    assert await log.created_record("web", "m-1", "survey") == "a008c0000000001AAA"
    assert await log.created_record("web", "m-2", "survey") is None
    assert await log.created_record("web", "m-3", "survey") is None
    assert await log.created_record("other", "m-1", "survey") is None
    assert await log.created_records("web", "survey", ["m-1", "m-2", "m-3", "m-9"]) == {"m-1": "a008c0000000001AAA"}


async def test_create_intents_are_kept_until_settled_and_gone_once_the_outcome_is_recorded(log: SyncLog) -> None:
    intents = [("web", f"m-{n}", "survey", "Survey_Response__c", "[]") for n in (1, 2, 3)]
    await log.record_intents(intents)
    await log.record_intents([("web", "m-1", "survey", "Survey_Response__c", "[('X', 1)]")])  # kept as it was
    assert await log.open_intents("web", "survey", ["m-1", "m-2", "m-3", "m-9"]) == {"m-1": None, "m-2": None,
                                                                                  "m-3": None}
    await log.settle_intents([("web", "m-1", "survey", "a008c0000000001AAA"), ("web", "m-2", "survey", None)])
    assert await log.open_intents("web", "survey", ["m-1", "m-2", "m-3"]) == {"m-1": "a008c0000000001AAA",
                                                                            "m-3": None}
    assert await log.open_intents("other", "survey", ["m-1"]) == {}
    await log.record([Outcome.succeeded(event(1), record_id="a008c0000000001AAA", created=True, action="survey")])
    assert await log.open_intents("web", "survey", ["m-1", "m-3"]) == {"m-3": None}


async def test_record_intents_are_kept_by_key_until_a_row_saying_created_for_their_record_is_recorded(
        log: SyncLog) -> None:
    keys = [("default", "Lead", f'[["email", "p{n}@x.example"]]') for n in (1, 2, 3)]
    await log.record_key_intents(keys)
    opened = await log.open_key_intents("default", "Lead", [k for _, _, k in keys])
    assert {k: r for k, (r, _) in opened.items()} == {k: None for _, _, k in keys}
    await log.settle_key_intents([(*keys[0], "00Q8c0000000001AAA"), (*keys[1], None)])
    opened = await log.open_key_intents("default", "Lead", [k for _, _, k in keys])
    assert {k: r for k, (r, _) in opened.items()} == {keys[0][2]: "00Q8c0000000001AAA", keys[2][2]: None}
    await log.record_key_intents(keys[2:])  # a new create of the key renews its intent
    renewed = await log.open_key_intents("default", "Lead", [keys[2][2]])
    assert renewed[keys[2][2]][1] > opened[keys[2][2]][1] and renewed[keys[2][2]][0] is None
    assert await log.open_key_intents("other", "Lead", [keys[0][2]]) == {}
    # a row about that record that does not say created leaves the intent open; one saying created closes it
    await log.record([Outcome.succeeded(event(1), record_id="00Q8c0000000001AAA", created=False, action="leads",
                                        object="Lead", operation="upsert")])
    assert keys[0][2] in await log.open_key_intents("default", "Lead", [keys[0][2]])
    await log.record([Outcome.succeeded(event(2), record_id="00Q8c0000000001AAA", created=True, action="leads",
                                        object="Lead", operation="upsert")])
    assert list(await log.open_key_intents("default", "Lead", [k for _, _, k in keys])) == [keys[2][2]]


async def test_a_record_intent_recorded_while_rows_saying_created_empty_the_table_is_still_found(
        tmp_path: Path) -> None:
    """SQLite skips the intents query while its table is empty: a record() that empties it must not leave that
    flag false over an intent recorded meanwhile (fate model seed 1177: no claim after a crash)."""
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        assert isinstance(log, SqliteSyncLog)
        for n in range(20):
            record_id = f"00Q8c00000000{n:02d}AAA"
            await log.record_key_intents([("default", "Lead", f"old{n}")])
            await log.settle_key_intents([("default", "Lead", f"old{n}", record_id)])
            log._lock.acquire()  # both calls below wait for the table, in either order
            try:
                kept = asyncio.create_task(log.record([Outcome.succeeded(
                    event(n), record_id=record_id, created=True, action="leads", object="Lead")]))
                intended = asyncio.create_task(log.record_key_intents([("default", "Lead", f"new{n}")]))
                await asyncio.sleep(0.02)
            finally:
                log._lock.release()
            await asyncio.gather(kept, intended)
            assert list(await log.open_key_intents("default", "Lead", [f"old{n}", f"new{n}"])) == [f"new{n}"]
            await log.settle_key_intents([("default", "Lead", f"new{n}", None)])


async def test_a_create_intent_recorded_while_a_record_empties_the_table_is_removed_by_its_own_row(
        tmp_path: Path) -> None:
    """The same for create intents: an intent recorded while a record() empties the table must still be removed
    when its own outcome row is kept (it used to outlive its row: the flag was set before the insert ran)."""
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        assert isinstance(log, SqliteSyncLog)
        for n in range(0, 40, 2):
            await log.record_intents([("web", f"m-{n}", "leads", "Lead", "[]")])
            log._lock.acquire()  # both calls below wait for the table, in either order
            try:
                kept = asyncio.create_task(log.record([Outcome.succeeded(
                    event(n), record_id="00Q8c0000000001AAA", created=True, action="leads", object="Lead")]))
                intended = asyncio.create_task(log.record_intents([("web", f"m-{n + 1}", "leads", "Lead", "[]")]))
                await asyncio.sleep(0.02)
            finally:
                log._lock.release()
            await asyncio.gather(kept, intended)
            assert list(await log.open_intents("web", "leads", [f"m-{n}", f"m-{n + 1}"])) == [f"m-{n + 1}"]
            await log.record([Outcome.succeeded(event(n + 1), record_id="00Q8c0000000002AAA", created=True,
                                                action="leads", object="Lead")])
            assert await log.open_intents("web", "leads", [f"m-{n + 1}"]) == {}


async def test_dead_letters_keep_the_payload_until_replayed(log: SyncLog) -> None:
    first = await log.dead_letter("web", "REQUIRED_FIELD_MISSING: LastName", '{"type":"identify","messageId":"m-1"}',
                                  "REQUIRED_FIELD_MISSING")
    poison = await log.dead_letter("kafka:events", "invalid JSON", "{not json")
    pending = await log.dead_letters()
    assert [d.id for d in pending] == [first, poison]
    assert pending[0].event() == Event("web", {"type": "identify", "messageId": "m-1"})
    assert pending[1].event() is None and pending[1].reason == "invalid JSON"
    await log.mark_replayed([first])
    assert [d.id for d in await log.dead_letters()] == [poison]
    assert [d.id for d in await log.dead_letters(replayed=True)] == [first]
    assert len(await log.dead_letters(replayed=None)) == 2


async def test_the_sqlite_log_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    async with open_sync_log(url) as log:
        await log.record([Outcome.skipped(event(1), "INTEGRATION_DISABLED")])
    async with open_sync_log(url) as log:
        assert [r.reason for r in await log.rows()] == ["INTEGRATION_DISABLED"]


async def test_the_sqlite_created_records_lookup_does_not_grow_with_the_log(tmp_path: Path) -> None:
    """Counted in SQLite VM steps: the per-batch messageId check reads by key, not every succeeded row."""
    from destination.synclog.sqlite import SqliteSyncLog

    log = SqliteSyncLog(tmp_path / "sync.db")
    await log.open()
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    async def cost() -> int:
        assert log._db is not None
        log._db.set_progress_handler(count, 100)
        steps[0] = 0
        found = await log.created_records("web", "leads", [f"m-{n}" for n in range(100)] + [f"x-{n}" for n in range(100)])
        log._db.set_progress_handler(None, 0)
        assert len(found) == 100
        return steps[0]

    def created(n: int) -> Outcome:
        return Outcome.succeeded(event(n), record_id=f"00Q8c{n:013d}", created=True, action="leads")

    await log.record([created(n) for n in range(200)])
    small = await cost()
    await log.record([created(n) for n in range(200, 20_200)])
    assert await cost() < small * 2
    await log.close()


async def test_a_full_batch_settles_and_closes_the_record_intents_of_every_record_it_created(log: SyncLog) -> None:
    keys = [("default", "Lead", f'[["email", "b{n}@x.example"]]') for n in range(700)]  # past every chunk size
    await log.record_key_intents(keys)
    ids = [f"00Q8c{n:010d}AAA" for n in range(700)]
    await log.settle_key_intents([(*key, ids[n] if n < 650 else None) for n, key in enumerate(keys)])
    opened = await log.open_key_intents("default", "Lead", [k for _, _, k in keys])
    assert {k: r for k, (r, _) in opened.items()} == {keys[n][2]: ids[n] for n in range(650)}
    # the batch's rows saying created close their records' intents; the record not created keeps its own
    await log.record([Outcome.succeeded(event(n), record_id=ids[n], created=n != 3, action="leads", object="Lead",
                                        operation="upsert") for n in range(650)])
    assert list(await log.open_key_intents("default", "Lead", [k for _, _, k in keys])) == [keys[3][2]]
    assert (await log.counts())[Status.SUCCEEDED] == 650


async def test_intents_given_twice_in_one_call_keep_what_one_at_a_time_would(log: SyncLog) -> None:
    """A key twice in one call (each store writes a call in one statement per chunk): a create intent keeps the
    first matchers, a record intent is recorded once, a settle keeps the last Id and a 'not created' wins."""
    await log.record_intents([("web", "m-1", "survey", "Survey_Response__c", "first"),
                              ("web", "m-1", "survey", "Survey_Response__c", "second")])
    await log.settle_intents([("web", "m-1", "survey", "a008c0000000001AAA"),
                              ("web", "m-1", "survey", "a008c0000000002AAA")])
    assert await log.open_intents("web", "survey", ["m-1"]) == {"m-1": "a008c0000000002AAA"}
    keys = [("default", "Lead", f"k{n}") for n in range(3)]
    await log.record_key_intents([*keys, keys[0], keys[1]])
    await log.settle_key_intents([(*keys[0], "00Q8c0000000001AAA"), (*keys[0], "00Q8c0000000002AAA"),
                                  (*keys[1], "00Q8c0000000003AAA"), (*keys[1], None)])
    opened = await log.open_key_intents("default", "Lead", [k for _, _, k in keys])
    assert {k: r for k, (r, _) in opened.items()} == {"k0": "00Q8c0000000002AAA", "k2": None}
