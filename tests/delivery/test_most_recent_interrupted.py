"""`most_recent` across batches (issue 14, the fate model's seed 1157). After an interrupted delivery: a
Bulk job that ran in the org while its delivery died (a crash, a shutdown, a cancelled batch) leaves a value
whose event time the sync log never learnt; its event is read again after the restart, and the newest event
must still win, whatever order the redelivery and the events of other partitions arrive in. And batches of
other batch keys writing the same field of the same record at once must not let the older event land last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery_support import ops_for
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.operations import RecordOp
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from destination.synclog import open_sync_log

ACCOUNTS = """    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.groupId}}
    mode: bulk
    fields: {Name: {path: $.traits.name, policy: most_recent}, External_Id__c: $.groupId}
"""
NOW = datetime.now(UTC)


def _group(name: str, hours_ago: float) -> dict[str, Any]:
    """A group call for workspace g0; its messageId follows the name, so a redelivery carries the same one."""
    when = (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")
    return {"type": "group", "messageId": f"group-{name}", "groupId": "g0", "traits": {"name": name},
            "timestamp": when}


def _names(emulator: Any) -> list[str]:
    return [a["Name"] for a in emulator.state.store.records("Account")]


@pytest.fixture
async def delivery(tls_emulator: Any, tmp_path: Path) -> AsyncIterator[Delivery]:
    async with SalesforceClient(connection_for(tls_emulator), backoff_initial=0.01, backoff_max=0.05) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        client.bulk.poll_initial = 0.02
        yield Delivery({"default": client}, sync_log=log, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01)


async def _deliver(delivery: Delivery, ops: Sequence[RecordOp]) -> list[Status]:
    return [o.status for o in await asyncio.wait_for(delivery.deliver(ops), 60)]


async def _interrupted(delivery: Delivery, emulator: Any, ops: list[RecordOp], name: str) -> None:
    """Deliver `ops` and cancel the delivery once its Bulk job has written `name` to the org: the write
    happened, and the delivery died before it learnt so (and before it recorded anything)."""
    bulk = delivery.clients["default"].bulk
    bulk.poll_initial = 30  # the next poll comes long after the job has run: the cancel lands while polling
    task = asyncio.create_task(delivery.deliver(ops))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while name not in _names(emulator):
        assert loop.time() < deadline and not task.done(), "the Bulk job never wrote the value"
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    bulk.poll_initial = 0.02


async def test_a_newer_event_wins_over_a_value_an_interrupted_delivery_created_without_its_time(
        delivery: Delivery, tls_emulator: Any) -> None:
    await _interrupted(delivery, tls_emulator, ops_for(ACCOUNTS, [_group("N21", hours_ago=3)]), "N21")
    assert _names(tls_emulator) == ["N21"]  # created, and written later than any event of the stream
    # after the restart: the interrupted event again, then a newer one (each its own batch)
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N21", hours_ago=3)])) == [Status.SKIPPED]
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N35", hours_ago=1)])) == [Status.SUCCEEDED]
    assert _names(tls_emulator) == ["N35"]


async def test_a_newer_event_in_the_same_batch_as_the_redelivered_one_wins_in_any_order(
        delivery: Delivery, tls_emulator: Any) -> None:
    await _interrupted(delivery, tls_emulator, ops_for(ACCOUNTS, [_group("N21", hours_ago=3)]), "N21")
    # the newer event from another partition is read before the redelivered one
    statuses = await _deliver(delivery, ops_for(ACCOUNTS, [_group("N35", hours_ago=1), _group("N21", hours_ago=3)]))
    assert statuses == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert _names(tls_emulator) == ["N35"]


async def test_an_older_event_of_another_partition_loses_to_the_newer_value_an_interrupted_delivery_wrote(
        delivery: Delivery, tls_emulator: Any) -> None:
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N10", hours_ago=4)])) == [Status.SUCCEEDED]
    await _interrupted(delivery, tls_emulator, ops_for(ACCOUNTS, [_group("N35", hours_ago=1)]), "N35")
    # after the restart: N35 again (the org holds it already), then an older event of another partition
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N35", hours_ago=1)])) == [Status.SKIPPED]
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N21", hours_ago=2)])) == [Status.SKIPPED]
    assert _names(tls_emulator) == ["N35"]


async def test_concurrent_batches_of_other_batch_keys_on_one_record_keep_the_newer_event(
        delivery: Delivery, tls_emulator: Any) -> None:
    assert await _deliver(delivery, ops_for(ACCOUNTS, [_group("N10", hours_ago=4)])) == [Status.SUCCEEDED]
    rest = ops_for(ACCOUNTS.replace("mode: bulk", "mode: rest"), [_group("N35", hours_ago=1)])
    bulk = ops_for(ACCOUNTS, [_group("N21", hours_ago=2)])  # slower to land: a job, then its processing
    assert rest[0].batch_key() != bulk[0].batch_key()  # the batcher may run them at the same time
    outcomes = await asyncio.wait_for(asyncio.gather(delivery.deliver(bulk), delivery.deliver(rest)), 60)
    assert [o.status for batch in outcomes for o in batch] in ([Status.SKIPPED, Status.SUCCEEDED],
                                                               [Status.SUCCEEDED, Status.SUCCEEDED])
    assert _names(tls_emulator) == ["N35"]
