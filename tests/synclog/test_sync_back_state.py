"""The sync log keeps the change feed's state (both stores): the watermark never moves back, counters add
up, a record's published version is replaced only by a newer one, the push direction's written values."""

from __future__ import annotations

from destination.synclog import SyncLog
from destination.synclog.base import SyncBackProgress

T1, T2, T3 = "2026-12-02T10:00:00.000+0000", "2026-12-02T10:05:00.000+0000", "2026-12-02T10:09:00.000+0000"


async def test_watermark_advances_never_moves_back_and_counters_add_up(log: SyncLog) -> None:
    await log.save_sync_back(SyncBackProgress("app", "Contact", T2, [("003A", T2, {"title": "CTO"})], 1, 0))
    await log.save_sync_back(SyncBackProgress("app", "Contact", T1, [], 0, 2, error="boom"))
    await log.save_sync_back(SyncBackProgress("app", "Account", None, [], 0, 0))
    states = {s.object: s for s in await log.sync_back_states("app")}
    contact = states["Contact"]
    assert (contact.watermark, contact.published, contact.echoes, contact.last_error) == (T2, 1, 2, "boom")
    assert contact.polled_at is not None and states["Account"].watermark is None
    await log.save_sync_back(SyncBackProgress("app", "Contact", T3, [], 0, 0))
    assert [(s.watermark, s.last_error) for s in await log.sync_back_states("app") if s.object == "Contact"] == [
        (T3, None)]
    assert await log.sync_back_states("other") == []


async def test_a_published_version_is_replaced_only_by_a_newer_one(log: SyncLog) -> None:
    await log.save_sync_back(SyncBackProgress("app", "Contact", T2, [("003A", T2, {"title": "B"})]))
    await log.save_sync_back(SyncBackProgress("app", "Contact", T2, [("003A", T1, {"title": "A"})]))
    seen = await log.seen_records("app", "Contact", ["003A", "003B"])
    assert list(seen) == ["003A"] and (seen["003A"].modstamp, seen["003A"].values) == (T2, {"title": "B"})
    await log.save_sync_back(SyncBackProgress("app", "Contact", T3, [("003A", T3, {"title": "C"})]))
    assert (await log.seen_records("app", "Contact", ["003A"]))["003A"].values == {"title": "C"}


async def test_written_values_keep_the_latest_value_per_field(log: SyncLog) -> None:
    await log.record_written_values([("Contact", "003A", "Title", "CTO"), ("Contact", "003A", "Level__c", 3)])
    await log.record_written_values([("Contact", "003A", "Title", "CEO")])
    assert await log.written_values("Contact", ["003A", "003Z"]) == {"003A": {"Title": "CEO", "Level__c": 3}}


async def test_written_values_given_twice_in_one_call_keep_the_last(log: SyncLog) -> None:
    """Each store writes a call's rows in one statement: a field written twice keeps the later value."""
    await log.record_written_values([("Contact", "003A", "Title", "CTO"), ("Contact", "003A", "Title", "CEO"),
                                     *(("Contact", f"003B{n:03d}", "Title", n) for n in range(150))])
    found = await log.written_values("Contact", ["003A", *(f"003B{n:03d}" for n in range(150))])
    assert found["003A"] == {"Title": "CEO"} and [found[f"003B{n:03d}"]["Title"] for n in range(150)] == list(range(150))


async def test_an_in_flight_note_is_listed_per_object_until_the_recording_removes_it(log: SyncLog) -> None:
    note = await log.begin_writes({"Contact": ["003A00000000001AAA"], "Lead": []})
    other = await log.begin_writes({"contact": []})
    contact = await log.writes_in_flight("CONTACT")  # object names compare case-insensitively
    assert [(n.key, n.deletes) for n in contact] == [(note.key, frozenset({"003A00000000001"})),
                                                     (other.key, frozenset())]
    assert contact[0].since <= contact[1].since and [n.key for n in await log.writes_in_flight("Lead")] == [note.key]
    assert await log.written_values("Contact", ["003A00000000001AAA"]) == {}  # a note is not a written value

    await log.record_written_values([("Contact", "003A", "Title", "CTO")], in_flight=note)
    assert [n.key for n in await log.writes_in_flight("Contact")] == [other.key]
    assert await log.writes_in_flight("Lead") == []
    assert await log.written_values("Contact", ["003A"]) == {"003A": {"Title": "CTO"}}
    await log.record_written_values([], in_flight=other)  # a batch that wrote nothing still ends its note
    assert await log.writes_in_flight("contact") == []
