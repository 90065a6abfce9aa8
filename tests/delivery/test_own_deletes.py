"""Delivery notes the deletes it made on synced-back objects (for the change feed's echo rule): a delete
Salesforce confirmed is noted under the record's 18-character Id — the one the delete log reports — even
when the app addressed it by its 15-character Id; a record a person had deleted already (ENTITY_IS_DELETED)
is their delete, not ours, and a delete on an object that is not synced back is not noted. A batch writing to
a synced-back object notes that it is in flight before the call and ends the note with its recording; one
writing to another object costs no sync-log round trip for this."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from delivery_support import ops_for
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from destination.synclog import open_sync_log
from destination.synclog.base import DELETED_BY_US, SyncLog

PERSON = "person@emulator.test"


def _deletes(obj: str) -> str:
    return f"""    object: {obj}
    operation: delete
    match: {{any: {{Id: $.properties.id}}}}
"""


@pytest.fixture
async def two_way(tls_emulator: Any, tmp_path: Path) -> AsyncIterator[tuple[Delivery, SyncLog]]:
    async with SalesforceClient(connection_for(tls_emulator), backoff_initial=0.01, backoff_max=0.05) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        yield (Delivery({"default": client}, sync_log=log, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01,
                        echo_objects=frozenset({"contact"})), log)


async def test_our_confirmed_deletes_of_synced_records_are_noted_and_no_one_elses(
        two_way: tuple[Delivery, SyncLog], tls_emulator: Any) -> None:
    delivery, log = two_way
    store = tls_emulator.state.store
    ours = store.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com"}).id
    theirs = store.insert("Contact", {"LastName": "Hopper", "Email": "grace@example.com"}).id
    account = store.insert("Account", {"Name": "Analytical Engines"}).id
    person = next(u.id for u in tls_emulator.state.org.users if u.username == PERSON)
    assert store.delete("Contact", theirs, user_id=person).success  # a person deleted Grace first

    contacts = ops_for(_deletes("Contact"), [{"type": "track", "properties": {"id": ours[:15]}},
                                             {"type": "track", "properties": {"id": theirs}}])
    accounts = ops_for(_deletes("Account"), [{"type": "track", "properties": {"id": account}}])
    outcomes = [*await asyncio.wait_for(delivery.deliver(contacts), 60),
                *await asyncio.wait_for(delivery.deliver(accounts), 60)]
    assert [o.status for o in outcomes] == [Status.SUCCEEDED] * 3
    assert any("already deleted" in w for w in outcomes[1].warnings)

    noted = await log.written_values("Contact", [ours, ours[:15], theirs])
    assert list(noted) == [ours] and set(noted[ours]) == {DELETED_BY_US}
    assert await log.written_values("Account", [account]) == {}


class CountedCalls:
    """The sync log, counting the calls delivery makes to it by method name."""

    def __init__(self, log: SyncLog) -> None:
        self.log = log
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.log, name)
        if not callable(found):
            return found

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await found(*args, **kwargs)
        return counted


async def test_a_synced_back_batch_notes_its_writes_in_flight_and_other_objects_cost_no_round_trip(
        two_way: tuple[Delivery, SyncLog], tls_emulator: Any) -> None:
    delivery, log = two_way
    counted = CountedCalls(log)
    delivery.sync_log = counted
    store = tls_emulator.state.store
    contact = store.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com"}).id
    account = store.insert("Account", {"Name": "Analytical Engines"}).id

    await asyncio.wait_for(delivery.deliver(ops_for(_deletes("Account"), [
        {"type": "track", "properties": {"id": account}}])), 60)
    assert "begin_writes" not in counted.calls and "record_written_values" not in counted.calls

    [outcome] = await asyncio.wait_for(delivery.deliver(ops_for(_deletes("Contact"), [
        {"type": "track", "properties": {"id": contact}}])), 60)
    assert outcome.status is Status.SUCCEEDED
    assert [c for c in counted.calls if c in ("begin_writes", "record_written_values")] == [
        "begin_writes", "record_written_values"]
    assert await log.writes_in_flight("Contact") == []  # ended with the recording
    assert set((await log.written_values("Contact", [contact]))[contact]) == {DELETED_BY_US}
